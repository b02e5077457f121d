/*
 * request.h: the hub's first look at an agent's request, before any
 * database work: decoding within the workers' limits, the message type,
 * the header's shape, and the ERROR reply for what fails. server.c runs
 * it on every request (request_open, then once the MAC is checked
 * request_body; request_decode for version 1); tests/fuzz/
 * fuzz_hub_request.c runs the same code.
 */
#ifndef HUB_REQUEST_H
#define HUB_REQUEST_H

#include <stddef.h>

#include "proto/err.h"
#include "proto/msg.h"

/*
 * request_error_set makes reply an ERROR with code and message (borrowed:
 * it must outlive the reply's encoding). Errors that may clear up (a
 * database or resource problem) are marked retry; the rest are not.
 */
void request_error_set(proto_msg *reply, proto_err code, const char *message);

/* request_hdr returns the header of a HELLO, PUSH or PULL (borrowed from
 * m), or NULL for another type. */
const proto_agent_hdr *request_hdr(const proto_msg *m);

/*
 * request_open reads the envelope of the len bytes at data with lim
 * (proto_env_decode: no allocation, the body is not decoded) and checks
 * that a version 2 message is a HELLO, PUSH or PULL. Returns PROTO_OK
 * with *env set (version 1 too: see request_decode), borrowing data;
 * otherwise the error, logged as HUB-BAD-REQUEST, with reply made its
 * ERROR (the message in err).
 */
proto_err request_open(const void *data, size_t len, const proto_limits *lim,
    proto_env *env, proto_msg *reply, char *err, size_t errlen);

/*
 * request_body decodes the body of the version 2 request env under lim
 * and checks the header's shape (apply_check_hdr). Returns PROTO_OK with
 * the request in *out; otherwise the error, not logged (the caller knows
 * who sent it), with reply made its ERROR. Either way *out is NULL or a
 * message the caller frees with proto_msg_free after encoding the reply.
 */
proto_err request_body(const proto_env *env, const proto_limits *lim,
    proto_msg **out, proto_msg *reply, char *err, size_t errlen);

/*
 * request_decode decodes the len bytes at data, a version 1 message, with
 * lim and checks what needs no database: the message is a HELLO, PUSH or
 * PULL, and its header's shape passes apply_check_hdr. Returns PROTO_OK with
 * the request in *out; otherwise the error, logged as HUB-BAD-REQUEST, with
 * reply made its ERROR (the message in err). Either way *out is NULL or
 * a message the caller frees with proto_msg_free after encoding the
 * reply.
 */
proto_err request_decode(const void *data, size_t len, const proto_limits *lim,
    proto_msg **out, proto_msg *reply, char *err, size_t errlen);

#endif /* HUB_REQUEST_H */
