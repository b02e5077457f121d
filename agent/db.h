/*
 * db.h: small SQLite helpers shared by capture, inbox and outbox.
 *
 * Every SQLite failure is mapped to PROTO_EDB here, with "what: sqlite
 * message" in the caller's error buffer.
 */
#ifndef AGENT_DB_H
#define AGENT_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/msg.h"

/*
 * db_open opens an existing SQLite file read-write (never creates one)
 * with the given busy timeout, for use by one thread at a time (no
 * per-connection mutex). On PROTO_OK *out belongs to the caller
 * (sqlite3_close_v2); on PROTO_EDB *out is NULL and err says why.
 */
proto_err db_open(const char *path, int64_t busy_timeout_ms, sqlite3 **out,
    char *err, size_t errlen);

/*
 * db_tune sets synchronous=NORMAL on this connection when the file is in
 * WAL mode (safe there, see db.c), and leaves it alone otherwise.
 */
void db_tune(sqlite3 *db);

/* db_exec runs one or more statements without results. */
proto_err db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);

/*
 * db_prepare compiles sql into *st, which the caller finalizes. Returns
 * PROTO_OK or PROTO_EDB.
 */
proto_err db_prepare(
    sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen);

/* db_fail writes "what: <sqlite message>" into err and returns PROTO_EDB. */
proto_err db_fail(sqlite3 *db, const char *what, char *err, size_t errlen);

/*
 * db_tx_steps runs the n statements of sql once each, in order, in one
 * BEGIN IMMEDIATE transaction; bind(st, arg) binds each one's
 * parameters. *changes (may be NULL) gets the rows the first one
 * changed. On an error it rolls back and err says "what: <message>".
 */
proto_err db_tx_steps(sqlite3 *db, const char *const *sql, size_t n,
    void (*bind)(sqlite3_stmt *st, const void *arg), const void *arg,
    int64_t *changes, const char *what, char *err, size_t errlen);

/*
 * db_bind_value binds v to parameter idx of st: NIL as NULL, BOOL and INT
 * as integers, FLOAT as a real, STR as text and BIN as a blob. Text and
 * blobs are bound SQLITE_STATIC: v's memory must outlive the statement's
 * use of the binding (until the step, reset or clear_bindings).
 */
void db_bind_value(sqlite3_stmt *st, int idx, const proto_value *v);

/*
 * db_schema_version reads PRAGMA schema_version (SQLite counts every
 * schema change of the file in it) into *v. PROTO_OK or PROTO_EDB.
 */
proto_err db_schema_version(sqlite3 *db, int64_t *v, char *err, size_t errlen);

/* db_rollback rolls back an open transaction, ignoring errors. */
void db_rollback(sqlite3 *db);

/*
 * Writes the agent can make later (a status row, a compaction) must not
 * hold up the sender behind a POS transaction for up to the busy timeout.
 * db_step_nowait steps st without waiting for a lock another connection
 * holds (SQLITE_BUSY: try later); db_begin_nowait begins a write
 * transaction if the lock is free (*got), else does nothing and returns
 * PROTO_OK. Both leave the busy timeout at busy_ms.
 */
int db_step_nowait(sqlite3 *db, sqlite3_stmt *st, int64_t busy_ms);
proto_err db_begin_nowait(
    sqlite3 *db, int64_t busy_ms, bool *got, char *err, size_t errlen);

#endif /* AGENT_DB_H */
