/* err.c: names of the project-wide error codes. */
#include "proto/err.h"

static const char *const err_names[PROTO_ERR_COUNT] = {
    [PROTO_OK] = "success",
    [PROTO_ENOMEM] = "out of memory",
    [PROTO_EINVAL] = "invalid argument",
    [PROTO_EPROTO] = "protocol error",
    [PROTO_ETIMEDOUT] = "timed out",
    [PROTO_ECLOSED] = "closed",
    [PROTO_EDB] = "database error",
    [PROTO_EIO] = "I/O error",
    [PROTO_EAUTH] = "authentication failed",
    [PROTO_ETOOBIG] = "limit exceeded",
    [PROTO_EVERSION] = "unsupported protocol version",
    [PROTO_ENONCE] = "nonce required",
};

const char *
proto_strerror(int err)
{
	if (err < 0 || err >= PROTO_ERR_COUNT)
		return "unknown error";
	return err_names[err];
}
