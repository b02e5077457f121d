/*
 * nudgesub.h: a sub0 socket on the hubs' nudge publishers.
 *
 * The hub publishes one-line topics (docs/protocol.md, "Nudges"):
 * "b:CODE\n" and "*\n" ask a branch to pull master data now, "r:CODE\n"
 * to say HELLO now (rejects were retried or discarded at the hub). The
 * downstream thread and the sender each hold a socket subscribed to the
 * topics they act on. A nudge only shortens a wait: one that is lost
 * costs at most pull_interval_ms or heartbeat_ms.
 */
#ifndef AGENT_NUDGESUB_H
#define AGENT_NUDGESUB_H

#include <nng/nng.h>
#include <stddef.h>

#include "config.h"
#include "proto/err.h"

/* Longest nudge accepted; topics are a branch code and two bytes. */
#define NUDGESUB_MAX_BYTES 1024

/*
 * nudgesub_open opens *out, subscribes it to each kind in kinds ('b' and
 * 'r' for "b:CODE\n" and "r:CODE\n" of conf's branch, '*' for "*\n"), and
 * dials every URL of conf->nudge in the background with the agent's
 * reconnect backoff and TLS options. on_connect, if not NULL, is called
 * with arg each time a connection to a publisher comes up (nudges sent
 * while it was down are lost). On error *out is closed and err says why.
 */
proto_err nudgesub_open(const agent_config *conf, const char *kinds,
    nng_pipe_cb on_connect, void *arg, nng_socket *out, char *err,
    size_t errlen);

#endif /* AGENT_NUDGESUB_H */
