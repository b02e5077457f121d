/*
 * sampler.h: the backlog sampler. A thread records every enabled branch's
 * queue length (summed over its tills) in branchsync.backlog_sample each
 * sample_interval_s, for the operator page's history chart, and prunes
 * samples older than a day about once a minute.
 *
 * It owns no connection: its statements run through the caller's
 * with_conn, so that they share the operator listener's connection and
 * its lock, and a failure is noted like a failed request.
 */
#ifndef HUB_SAMPLER_H
#define HUB_SAMPLER_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

typedef struct hub_sampler hub_sampler;

/* A unit of database work: runs on conn, PROTO_EDB with err on failure. */
typedef proto_err (*sampler_conn_fn)(
    PGconn *conn, void *arg, char *err, size_t errlen);

/*
 * A sampler_db_fn runs fn(conn, arg, err, errlen) on a connection it
 * holds for the call (opening it if needed) and notes the outcome, saying
 * what failed with "could not <what>". Returns what fn returned, or
 * PROTO_EDB with err if there is no connection.
 */
typedef proto_err (*sampler_db_fn)(void *owner, const char *what,
    sampler_conn_fn fn, void *arg, char *err, size_t errlen);

/*
 * sampler_start starts the thread, which samples at once and then every
 * interval_s seconds, through with_conn(owner, ...); owner must outlive
 * the sampler. PROTO_EIO with a reason in err if the thread cannot start.
 */
proto_err sampler_start(int64_t interval_s, sampler_db_fn with_conn,
    void *owner, hub_sampler **out, char *err, size_t errlen);

/*
 * sampler_stop wakes the thread, waits for a sample in progress to end,
 * and frees s; NULL does nothing.
 */
void sampler_stop(hub_sampler *s);

#endif /* HUB_SAMPLER_H */
