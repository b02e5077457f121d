/*
 * feed.h: the change feed of down tables (head office -> branches).
 *
 * Every down table carries an AFTER ROW trigger "branchsync_feed" that
 * calls branchsync.feed() (migration 2) with the branch-side table name,
 * the scope column ('' = every branch) and the key columns. It keeps one
 * record per (scope, table, key) in branchsync.change:
 *
 *   id       bigint  increasing; an update moves the record to the end
 *   scope    int     0 = every branch, else branchsync.branch.id
 *   tbl      text    branch-side table name
 *   key      jsonb   [k1, k2, ...] key values
 *   op       int2    1 upsert, 2 delete (a tombstone)
 *   row      jsonb   to_jsonb(row) minus the scope column; NULL for op 2
 *
 * and NOTIFYs channel "branchsync_change" with the scope. A branch pulls
 * the records with id > its cursor, of scope 0 and of its own id, in id
 * order (see pull.h).
 */
#ifndef HUB_FEED_H
#define HUB_FEED_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "proto/err.h"

/*
 * feed_install runs in one transaction: for every down table of cat
 * (loaded with down_only or not) it creates or replaces the
 * branchsync_feed trigger and records every existing row that has no
 * change record yet (the backfill, so a branch pulling from 0 gets all
 * rows); it drops branchsync_feed triggers of tables no longer configured
 * down. Rerun-safe: a second run changes nothing. *backfilled and
 * *dropped receive the number of rows recorded and triggers dropped.
 * Returns PROTO_OK or PROTO_EDB with the reason in err (nothing changed).
 */
proto_err feed_install(PGconn *conn, const catalog *cat, int64_t *backfilled,
    int *dropped, char *err, size_t errlen);

#endif /* HUB_FEED_H */
