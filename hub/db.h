/*
 * db.h: PostgreSQL plumbing of the hub: connecting, running statements with
 * exact status checks, schema migrations, branch keys and authentication.
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
 * Error text written into err is one line: the server's primary message
 * followed by "(SQLSTATE xxxxx)" when there is one.
 */
#ifndef HUB_DB_H
#define HUB_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/err.h"

/* The newest migration this hub knows; "run" requires exactly this. */
#define DB_SCHEMA_VERSION 7

/* Advisory lock key serializing concurrent "migrate" runs ("bsmi"). */
#define DB_MIGRATE_LOCK "1651731817"

/*
 * The change feed's ids are drawn when a transaction writes, not when it
 * commits: a pull that saw id 101 committed while id 100 was still in
 * flight would move the branch's cursor past 100 for good. So every writer
 * of branchsync.change holds this advisory lock shared until it commits,
 * and a pull reads its page holding it exclusively: every id below what it
 * sees is then committed. Writers wait at most for one page query.
 */
#define DB_FEED_LOCK "1651730019"

/* A branch key: 32 random bytes written as 64 hex digits. */
#define DB_KEY_BYTES 32
#define DB_KEY_HEX   (2 * DB_KEY_BYTES)

/*
 * db_connect opens a connection. Returns PROTO_OK and sets *out (the
 * caller closes it with PQfinish), or PROTO_EDB with the reason in err.
 */
proto_err db_connect(
    const char *conninfo, PGconn **out, char *err, size_t errlen);

/*
 * db_connect_retry calls db_connect until it succeeds, logging
 * "disconnected; retrying in N s" and sleeping between attempts. Returns
 * PROTO_OK, or PROTO_ECLOSED if a termination signal arrived first.
 */
proto_err db_connect_retry(const char *conninfo, PGconn **out);

/*
 * db_result_error writes the error of res (or of conn when res is NULL)
 * into err: first line of the message plus the SQLSTATE. Returns PROTO_EDB.
 */
proto_err db_result_error(
    const PGresult *res, PGconn *conn, char *err, size_t errlen);

/*
 * db_exec runs sql with text parameters (params may be NULL when nparams
 * is 0) and checks that the result status is exactly want. On PROTO_OK,
 * *out (if out is not NULL) holds the result and the caller PQclears it;
 * otherwise the result is already cleared, *out is NULL and err says why.
 * If sqlstate is not NULL it receives the SQLSTATE ("" if none), size 6.
 */
proto_err db_exec(PGconn *conn, const char *sql, int nparams,
    const char *const *params, ExecStatusType want, PGresult **out,
    char *sqlstate, char *err, size_t errlen);

/*
 * db_lost reports whether conn is unusable (connection broken), as opposed
 * to a statement that merely failed.
 */
bool db_lost(PGconn *conn);

/* db_transient reports whether a SQLSTATE is worth retrying as is. */
bool db_transient(const char *sqlstate);

/*
 * db_migrate applies the migrations not yet applied, each in its own
 * transaction under an advisory lock, so concurrent runs are safe.
 * *from and *to receive the versions before and after. PROTO_EDB on error.
 */
proto_err db_migrate(
    PGconn *conn, int *from, int *to, char *err, size_t errlen);

/*
 * db_check_schema returns PROTO_OK if the database is migrated to
 * DB_SCHEMA_VERSION, PROTO_EINVAL with "run "branchsync-hub migrate"
 * first" if not, or PROTO_EDB.
 */
proto_err db_check_schema(PGconn *conn, char *err, size_t errlen);

/*
 * db_branch_add creates branch code with a new random key, written as 64
 * hex digits and a NUL into key (size DB_KEY_HEX + 1); only its sha256 is
 * stored. PROTO_EINVAL if the code is invalid or already exists, PROTO_EIO
 * if no random bytes, PROTO_EDB otherwise.
 */
proto_err db_branch_add(
    PGconn *conn, const char *code, char *key, char *err, size_t errlen);

/*
 * db_branch_rotate_key gives branch code a new key (written like
 * db_branch_add's). With overlap_s > 0 the previous key stays valid for
 * that long and until receives when it expires ("YYYY-MM-DD HH:MM:SS
 * UTC"); with 0 it stops at once and until is "". PROTO_EINVAL for an
 * unknown branch.
 */
proto_err db_branch_rotate_key(PGconn *conn, const char *code,
    int64_t overlap_s, char *key, char *until, size_t untillen, char *err,
    size_t errlen);

/* db_branch_set_enabled enables or disables a branch (PROTO_EINVAL: none). */
proto_err db_branch_set_enabled(
    PGconn *conn, const char *code, bool enabled, char *err, size_t errlen);

/*
 * db_till_add registers till code till under branch with a new key,
 * written like db_branch_add's (only its sha256 is stored). PROTO_EINVAL
 * for an invalid code, an unknown branch or a till that exists.
 */
proto_err db_till_add(PGconn *conn, const char *branch, const char *till,
    char *key, char *err, size_t errlen);

/* db_till_rotate_key is db_branch_rotate_key for one till of a branch. */
proto_err db_till_rotate_key(PGconn *conn, const char *branch,
    const char *till, int64_t overlap_s, char *key, char *until,
    size_t untillen, char *err, size_t errlen);

/* db_till_set_enabled enables or disables a till (PROTO_EINVAL: none). */
proto_err db_till_set_enabled(PGconn *conn, const char *branch,
    const char *till, bool enabled, char *err, size_t errlen);

/* Who a credential belongs to. */
typedef struct {
	int branch_id; /* branchsync.branch.id */
	int till_id;   /* branchsync.till.id, 0 for the branch's own key */
	bool old_key;  /* the previous key (rotate-key overlap) matched */
} db_who;

/*
 * db_auth checks a credential in constant time: with till NULL, the
 * branch code and key against the branch's key hash; with a till code,
 * against the hash of that till of that branch (a till's key works for
 * no other till or branch, the branch's key for no till). During a
 * rotation's overlap the previous key matches too. Returns PROTO_OK with
 * *who set, PROTO_EAUTH (unknown branch or till, wrong key:
 * "authentication failed"; right key of a disabled branch or till: says
 * so) or PROTO_EDB.
 */
proto_err db_auth(PGconn *conn, const char *code, const char *till,
    const char *key, db_who *who, char *err, size_t errlen);

#endif /* HUB_DB_H */
