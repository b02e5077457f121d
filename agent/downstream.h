/*
 * downstream.h: the agent's master-data thread (center -> branch).
 *
 * When the configuration has down tables, "run" starts one thread beside
 * the sender. It has its own SQLite connection, its own req0 socket
 * dialing every hub URL, and a sub0 socket dialing the hub's nudge URLs,
 * subscribed to "b:<branch>\n" and "*\n". It pulls at start, on a nudge
 * (or when a nudge connection comes up, since nudges sent meanwhile are
 * lost), when "branchsync-agent reload" asked for it, and every
 * pull_interval_ms as the backstop. A pull asks PULL(cursor) pages until
 * CHANGES says more = false; each page is applied with inbox_apply in one
 * transaction together with its cursor. A reload in progress is pulled
 * first. Failures back off like the sender (hubclient_backoff) and never
 * move the cursor.
 */
#ifndef AGENT_DOWNSTREAM_H
#define AGENT_DOWNSTREAM_H

#include <stddef.h>

#include "config.h"
#include "proto/err.h"

typedef struct downstream downstream;

/*
 * downstream_start opens the POS file, checks that init was run and that
 * every down table exists with a key, opens the sockets and starts the
 * thread. With no down table configured it does nothing and sets *out to
 * NULL. conf (with its secret resolved) must outlive the thread. Errors:
 * PROTO_EINVAL (bad URL, init not run, table missing), PROTO_EDB,
 * PROTO_EIO, with a message in err. Stop with downstream_stop.
 */
proto_err downstream_start(
    const agent_config *conf, downstream **out, char *err, size_t errlen);

/*
 * downstream_stop asks the thread to stop (it also stops on
 * plat_stop_requested), waits for it (a page being applied is finished or
 * rolled back), closes everything and frees ds. downstream_stop(NULL) does
 * nothing.
 */
void downstream_stop(downstream *ds);

#endif /* AGENT_DOWNSTREAM_H */
