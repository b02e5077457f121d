/*
 * housekeep.h: what the hub deletes as it gets old. Resolved rejects and
 * conflicts (retried, discarded, or settled by an operator) stay for
 * retention_days, then go; open ones stay until someone settles them, so
 * nothing a branch sent is dropped unseen.
 */
#ifndef BS_HUB_HOUSEKEEP_H
#define BS_HUB_HOUSEKEEP_H

#include <stdint.h>

#include "config.h"

/*
 * housekeep_tick runs the deletions when they are due (at most once an
 * hour, the first a minute after start), on a connection of its own that
 * it closes again. Errors are logged (HUB-HOUSEKEEP) and retried at the
 * next tick. Call it from one thread, often (e.g. every second).
 */
void housekeep_tick(const hub_config *conf);

/*
 * housekeep_run deletes now: resolved rejects and conflicts older than
 * days days. Sets the counts deleted. For "branchsync-hub prune" and the
 * tick.
 */
proto_err housekeep_run(const char *conninfo, int64_t days, int64_t *rejects,
    int64_t *conflicts, char *err, size_t errlen);

#endif /* BS_HUB_HOUSEKEEP_H */
