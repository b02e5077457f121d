/*
 * sender.h: the agent's run loop.
 *
 * One nng req0 socket (hubclient.h) dials every hub URL in the
 * background. A session starts with HELLO/WELCOME (log identity check),
 * then PUSH/ACK repeats while events are pending; an idle agent polls
 * PRAGMA data_version every poll_ms, and with nudges configured also its
 * "r:" subscription (nudgesub.h), which asks for a HELLO. Every failure
 * (timeout, send error, ERROR reply) ends the session and waits an
 * exponential backoff with full jitter (hubclient_backoff) before the
 * next HELLO. Blocking waits are cut into slices of at most 100 ms so
 * SIGTERM/SIGINT are seen quickly; the step in progress (an ack chunk) is
 * finished, never left half done.
 */
#ifndef AGENT_SENDER_H
#define AGENT_SENDER_H

#include <stddef.h>

#include "config.h"
#include "proto/err.h"

/*
 * sender_run opens the outbox and the socket and sends until a stop is
 * requested. Returns PROTO_OK on a clean stop; PROTO_EINVAL, PROTO_EDB or
 * PROTO_EIO with a message in err when it cannot start (bad URL, init not
 * run...). Errors while running are logged and retried, never returned.
 * conf must have its secret resolved.
 */
proto_err sender_run(const agent_config *conf, char *err, size_t errlen);

#endif /* AGENT_SENDER_H */
