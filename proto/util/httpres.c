/*
 * httpres.c: answers of the daemons' HTTP listeners (see httpres.h).
 */
#include "httpres.h"

#include <nng/supplemental/http/http.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/*
 * What a browser may do with an answer: nothing but show it. The page
 * loads only its own script and style (no inline code, no other origin)
 * and may not be framed; no answer is sniffed into another type.
 */
static const char csp[] = "default-src 'none'; script-src 'self'; "
                          "style-src 'self'; img-src 'self'; "
                          "connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

void
http_respond(nng_aio *aio, uint16_t status, const char *type, const void *body,
    size_t len)
{
	nng_http_res *res;
	int rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if ((rv = nng_http_res_set_status(res, status)) != 0
	    || (rv = nng_http_res_set_header(res, "Content-Type", type)) != 0
	    || (rv = nng_http_res_set_header(res, "Cache-Control", "no-store"))
	        != 0
	    || (rv = nng_http_res_set_header(
	            res, "X-Content-Type-Options", "nosniff"))
	        != 0
	    || (rv = nng_http_res_set_header(
	            res, "Content-Security-Policy", csp))
	        != 0
	    || (rv = nng_http_res_set_header(
	            res, "Referrer-Policy", "no-referrer"))
	        != 0
	    || (status == NNG_HTTP_STATUS_METHOD_NOT_ALLOWED
	        && (rv = nng_http_res_set_header(res, "Allow", "GET, HEAD"))
	            != 0)
	    || (status == NNG_HTTP_STATUS_UNAUTHORIZED
	        && (rv = nng_http_res_set_header(res, "WWW-Authenticate",
	                "Basic realm=\"branchsync\", charset=\"UTF-8\""))
	            != 0)
	    || (rv = nng_http_res_copy_data(res, body, len)) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

void
http_respond_text(nng_aio *aio, uint16_t status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	else if ((size_t) n > sizeof msg - 2)
		n = (int) sizeof msg - 2;
	msg[n++] = '\n';
	http_respond(aio, status, HTTP_TYPE_TEXT, msg, (size_t) n);
}

/* ip_literal: an IPv4 address in dotted form, or "[...]" (IPv6). */
static bool
ip_literal(const char *h, size_t n)
{
	int dots = 0;

	if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
		return true;
	if (n == 0 || h[0] == '.' || h[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '.') {
			if (h[i + 1] == '.')
				return false;
			dots++;
		} else if (h[i] < '0' || h[i] > '9')
			return false;
	}
	return dots == 3;
}

bool
http_host_allowed(const char *host, char *const *names, size_t nnames)
{
	size_t n;
	const char *colon;

	if (host == NULL || host[0] == '\0')
		return false;
	n = strlen(host);
	/* "name:port", "1.2.3.4:port", "[::1]:port": drop the port */
	colon = strrchr(host, ':');
	if (colon != NULL && host[0] != '[') {
		n = (size_t) (colon - host);
	} else if (host[0] == '[' && colon != NULL && colon > host
	    && colon[-1] == ']') {
		n = (size_t) (colon - host);
	}
	/*
	 * A browser led by DNS rebinding sends the attacker's name, never
	 * an address: any address is fine, and so is "localhost".
	 */
	if (ip_literal(host, n)
	    || (n == 9 && !strncasecmp(host, "localhost", 9)))
		return true;
	for (size_t i = 0; i < nnames; i++)
		if (strlen(names[i]) == n && !strncasecmp(host, names[i], n))
			return true;
	return false;
}

bool
http_check_host(nng_aio *aio, char *const *names, size_t nnames)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	const char *host = nng_http_req_get_header(req, "Host");

	if (http_host_allowed(host, names, nnames))
		return true;
	http_respond_text(aio, NNG_HTTP_STATUS_FORBIDDEN,
	    "host \"%.200s\" is not one this listener answers for",
	    host != NULL ? host : "");
	return false;
}
