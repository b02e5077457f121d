/*
 * request.h: the hub's first look at an agent's request, before any
 * database work: decoding within the workers' limits, the message type,
 * the header's shape, and the ERROR reply for what fails. server.c runs
 * it on every request; tests/fuzz/fuzz_hub_request.c runs the same code.
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
 * request_decode decodes the len bytes at data with lim and checks what
 * needs no database: the message is a HELLO, PUSH or PULL, and its
 * header's shape passes apply_check_hdr. Returns PROTO_OK with the
 * request in *out; otherwise the error, logged as HUB-BAD-REQUEST, with
 * reply made its ERROR (the message in err). Either way *out is NULL or
 * a message the caller frees with proto_msg_free after encoding the
 * reply.
 */
proto_err request_decode(const void *data, size_t len, const proto_limits *lim,
    proto_msg **out, proto_msg *reply, char *err, size_t errlen);

#endif /* HUB_REQUEST_H */
