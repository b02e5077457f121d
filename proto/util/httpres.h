/*
 * httpres.h: answers of the daemons' small HTTP listeners (nng's HTTP
 * server): the agent's /status and /metrics, the hub's operator page.
 */
#ifndef BS_HTTPRES_H
#define BS_HTTPRES_H

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/compiler.h"

#define HTTP_TYPE_TEXT "text/plain; charset=utf-8"
#define HTTP_TYPE_JSON "application/json"
#define HTTP_TYPE_PROM "text/plain; version=0.0.4; charset=utf-8"
#define HTTP_TYPE_HTML "text/html; charset=utf-8"

/*
 * http_respond completes a handler's aio with status, Content-Type type,
 * "Cache-Control: no-store" and a copy of body; a 405 also says
 * "Allow: GET, HEAD". On an allocation failure the aio fails (nng closes
 * the connection).
 */
void http_respond(nng_aio *aio, uint16_t status, const char *type,
    const void *body, size_t len);

/* http_respond_text answers one line of text (cut at 1 KiB). */
void http_respond_text(nng_aio *aio, uint16_t status, const char *fmt, ...)
    BS_PRINTF(3, 4);

#endif /* BS_HTTPRES_H */
