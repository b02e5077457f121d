/*
 * nudge.h: tell agents to pull now.
 *
 * The feed trigger NOTIFYs channel "branchsync_change" with the scope of
 * each change (feed.h). With "publish" configured, a thread with its own
 * PostgreSQL connection LISTENs on that channel and publishes on an nng
 * pub0 socket, for a branch scope, one topic per credential of the branch
 * (its own key, each till's, and a rotated key's previous one during its
 * overlap): "b:" + a tag of that key (proto_nudge_topic) + "\n"; for
 * scope 0 (every branch) "*\n". A subscriber learns no branch code and
 * cannot tell which branch a tag belongs to without one of its keys. After it
 * (re)connects it publishes
 * "*\n" once, since notifications sent while it was away are lost. A
 * nudge is only a hint: agents also pull on a timer.
 */
#ifndef HUB_NUDGE_H
#define HUB_NUDGE_H

#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "authcache.h"
#include "config.h"
#include "proto/err.h"

typedef struct nudge nudge;

/*
 * nudge_start opens the pub0 socket on conf's publish URLs and starts the
 * LISTEN thread. With no publish URL it sets *out to NULL and returns
 * PROTO_OK. tls is the listeners' TLS configuration, required when a
 * publish URL is tls+tcp:// (the listeners take their own references).
 * Returns PROTO_EIO (socket, listen or thread failure) with the reason in
 * err. conf is borrowed and must outlive the nudge.
 */
proto_err nudge_start(const hub_config *conf, nng_tls_config *tls,
    authcache *keys, nudge **out, char *err, size_t errlen);

/*
 * nudge_stop stops the thread, closes the socket and frees n (within about
 * 500 ms). nudge_stop(NULL) does nothing.
 */
void nudge_stop(nudge *n);

#endif /* HUB_NUDGE_H */
