/*
 * request.c: decoding and shape checks of an agent's request, and the
 * ERROR reply (see request.h). Nothing here touches PostgreSQL or checks
 * a MAC, so that a fuzzer can run it on any input.
 */
#include "request.h"

#include <stdio.h>
#include <string.h>

#include "apply.h"
#include "log.h"

/* A peer can send any number of bad requests: their lines are limited. */
static log_limit bad_request_log = LOG_LIMIT_DEFAULT;

void
request_error_set(proto_msg *reply, proto_err code, const char *message)
{
	memset(reply, 0, sizeof *reply);
	reply->type = PROTO_ERROR;
	reply->u.error.code = code;
	reply->u.error.message = message;
	/* A database or resource problem may clear up; the rest will not. */
	reply->u.error.retry = code == PROTO_EDB || code == PROTO_ENOMEM
	    || code == PROTO_ETIMEDOUT || code == PROTO_EIO;
}

const proto_agent_hdr *
request_hdr(const proto_msg *m)
{
	if (m->type == PROTO_HELLO)
		return &m->u.hello.hdr;
	if (m->type == PROTO_PUSH)
		return &m->u.push.hdr;
	if (m->type == PROTO_PULL)
		return &m->u.pull.hdr;
	return NULL;
}

proto_err
request_open(const void *data, size_t len, const proto_limits *lim,
    proto_env *env, proto_msg *reply, char *err, size_t errlen)
{
	proto_err rv;

	rv = proto_env_decode(data, len, lim, env, err, errlen);
	if (rv != PROTO_OK) {
		log_limited(&bad_request_log, LOG_LVL_WARN, "HUB-BAD-REQUEST",
		    "could not decode request: %s", err);
		goto fail;
	}
	if (env->version == PROTO_VERSION && !proto_request_type(env->type)) {
		snprintf(err, errlen, "unexpected message type \"%s\"",
		    proto_type_name(env->type));
		log_limited(&bad_request_log, LOG_LVL_WARN, "HUB-BAD-REQUEST",
		    "%s", err);
		rv = PROTO_EPROTO;
		goto fail;
	}
	return PROTO_OK;
fail:
	request_error_set(reply, rv, err);
	return rv;
}

proto_err
request_body(const proto_env *env, const proto_limits *lim, proto_msg **out,
    proto_msg *reply, char *err, size_t errlen)
{
	proto_err rv;

	rv = proto_body_decode(env, lim, out, err, errlen);
	if (rv == PROTO_OK)
		rv = apply_check_hdr(request_hdr(*out), err, errlen);
	if (rv != PROTO_OK)
		request_error_set(reply, rv, err);
	return rv;
}

proto_err
request_decode(const void *data, size_t len, const proto_limits *lim,
    proto_msg **out, proto_msg *reply, char *err, size_t errlen)
{
	const proto_agent_hdr *hdr;
	proto_err rv;

	*out = NULL;
	rv = proto_msg_decode(data, len, lim, out, err, errlen);
	if (rv != PROTO_OK) {
		log_limited(&bad_request_log, LOG_LVL_WARN, "HUB-BAD-REQUEST",
		    "could not decode request: %s", err);
		goto fail;
	}
	if ((hdr = request_hdr(*out)) == NULL) {
		snprintf(err, errlen, "unexpected message type \"%s\"",
		    proto_type_name((*out)->type));
		log_limited(&bad_request_log, LOG_LVL_WARN, "HUB-BAD-REQUEST",
		    "%s", err);
		rv = PROTO_EPROTO;
		goto fail;
	}
	/* A header of the wrong shape is answered, not logged. */
	if ((rv = apply_check_hdr(hdr, err, errlen)) != PROTO_OK)
		goto fail;
	return PROTO_OK;
fail:
	request_error_set(reply, rv, err);
	return rv;
}
