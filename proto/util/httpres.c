/*
 * httpres.c: answers of the daemons' HTTP listeners (see httpres.h).
 */
#include "httpres.h"

#include <nng/supplemental/http/http.h>
#include <stdarg.h>
#include <stdio.h>

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
	    || (status == NNG_HTTP_STATUS_METHOD_NOT_ALLOWED
	        && (rv = nng_http_res_set_header(res, "Allow", "GET, HEAD"))
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
