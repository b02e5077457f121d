/*
 * httpres.h: answers of the daemons' small HTTP listeners (nng's HTTP
 * server): the agent's /status and /metrics, the hub's operator page.
 */
#ifndef BS_HTTPRES_H
#define BS_HTTPRES_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/compiler.h"

#define HTTP_TYPE_TEXT "text/plain; charset=utf-8"
#define HTTP_TYPE_JSON "application/json"
#define HTTP_TYPE_PROM "text/plain; version=0.0.4; charset=utf-8"
#define HTTP_TYPE_HTML "text/html; charset=utf-8"
#define HTTP_TYPE_CSS  "text/css; charset=utf-8"
#define HTTP_TYPE_JS   "text/javascript; charset=utf-8"

/*
 * http_respond completes a handler's aio with status, Content-Type type,
 * "Cache-Control: no-store", "X-Content-Type-Options: nosniff", a
 * Content-Security-Policy that lets a page load only its own script and
 * style, "Referrer-Policy: no-referrer" and a copy of body; a 405 also
 * says "Allow: GET, HEAD", a 401 asks for Basic authentication. On an
 * allocation failure the aio fails (nng closes the connection).
 */
void http_respond(nng_aio *aio, uint16_t status, const char *type,
    const void *body, size_t len);

/* http_respond_text answers one line of text (cut at 1 KiB). */
void http_respond_text(nng_aio *aio, uint16_t status, const char *fmt, ...)
    BS_PRINTF(3, 4);

/*
 * http_host_allowed tells whether a request's Host header (with or without
 * a port) is one the listener answers for: any IP address, "localhost",
 * or one of the nnames names (case-insensitive). A missing Host is not.
 * This defeats DNS rebinding: a page of another site that resolves its
 * own name to the listener still sends that name.
 */
bool http_host_allowed(const char *host, char *const *names, size_t nnames);

/*
 * http_check_host answers 403 and returns false when the Host of the
 * handler's request is not allowed (http_host_allowed).
 */
bool http_check_host(nng_aio *aio, char *const *names, size_t nnames);

#endif /* BS_HTTPRES_H */
