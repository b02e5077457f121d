/*
 * migrate.h: the hub's schema in PostgreSQL and its migrations.
 *
 * Objects in schema "branchsync" (migration 1):
 *
 *   schema_version(version, applied_at)       one row per migration applied
 *   branch(id, code, key_hash, enabled, ...)   key_hash = sha256(key text)
 *   watermark(branch_id, log_id, seq, tag)     last applied event per log
 *   branch_status(branch_id, last_seen, ...)   what agents last reported
 *   reject(id, branch_id, log_id, seq, tbl, key, row, reason, created_at)
 *
 * Migration 2 adds the change feed of down tables (see feed.h):
 *
 *   change(id, scope, tbl, key, op, row, changed_at)  one record per key
 *   feed()                                  the generic AFTER ROW trigger
 *   branch_status.last_pull, .pull_cursor   what the branch last pulled
 *
 * Migration 3 adds rejects' life cycle and conflicts (see apply.h):
 *
 *   reject.state (open|retry|resolved|discarded), .attempts,
 *   .resolved_at, .resolved_by; unique (branch_id, log_id, seq)
 *   conflict(id, branch_id, log_id, seq, tbl, key, type, server_row,
 *            local_row, created_at, resolution, resolved_at, resolved_by)
 *
 * Migration 4 adds what operators see (see overview.h):
 *
 *   branch_status.conflict_total               conflicts recorded
 *   branch_status.last_error, .last_error_at   last failed PUSH or PULL
 *   backlog_sample(branch_id, ts, queue_events) queue length history
 *
 * Migration 5 adds key rotation to branch: old_key_hash, accepted until
 * old_key_until, and key_changed_at. Migration 6 makes branchsync.feed()
 * SECURITY DEFINER (writers of down tables need no right on the feed).
 *
 * Migration 7 adds tills, several POS files (agents, logs) of one branch:
 *
 *   till(id, branch_id, code, key_hash, enabled, ...)  unique (branch_id,
 *            code); keys and rotation as for branch
 *   branch_status.till_id    0 = the branch's own key; primary key is now
 *                            (branch_id, till_id): one row per till
 *
 * Migration 8 revokes EXECUTE on branchsync.feed() from PUBLIC. Migration
 * 9 makes every change of branch or till NOTIFY "branchsync_keys", which
 * the hubs' key caches (authcache.h) LISTEN to:
 *
 *   keys_changed()            the AFTER STATEMENT trigger function
 *   branchsync_keys           its trigger on branch and on till
 */
#ifndef HUB_MIGRATE_H
#define HUB_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "proto/err.h"

/* The newest migration this hub knows; "run" requires exactly this. */
#define MIGRATE_SCHEMA_VERSION 9

/*
 * migrate_run applies the migrations not yet applied, each in its own
 * transaction under an advisory lock, so concurrent runs are safe.
 * *from and *to receive the versions before and after. PROTO_EDB on error.
 */
proto_err migrate_run(
    PGconn *conn, int *from, int *to, char *err, size_t errlen);

/*
 * migrate_check returns PROTO_OK if the database is migrated to
 * MIGRATE_SCHEMA_VERSION, PROTO_EINVAL with "run "branchsync-hub migrate"
 * first" if not, or PROTO_EDB.
 */
proto_err migrate_check(PGconn *conn, char *err, size_t errlen);

#endif /* HUB_MIGRATE_H */
