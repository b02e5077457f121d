/* db.c: open, exec, prepare and bind, with errors mapped to PROTO_EDB. */
#include "db.h"

#include <stdbool.h>
#include <stdio.h>

proto_err
db_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what,
	    db != NULL ? sqlite3_errmsg(db) : "out of memory");
	return PROTO_EDB;
}

proto_err
db_open(const char *path, int64_t busy_timeout_ms, sqlite3 **out, char *err,
    size_t errlen)
{
	sqlite3 *db = NULL;
	/* NOMUTEX: each connection is used by one thread at a time (the
	 * sender's, the downstream thread's, a command's), so SQLite's
	 * per-call locking of it is pure cost. */
	int rc = sqlite3_open_v2(
	    path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);

	*out = NULL;
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "could not open database \"%s\": %s",
		    path, db != NULL ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close_v2(db);
		return PROTO_EDB;
	}
	sqlite3_busy_timeout(db, (int) busy_timeout_ms);
	sqlite3_extended_result_codes(db, 1);
	*out = db;
	return PROTO_OK;
}

/*
 * In WAL mode synchronous=NORMAL cannot corrupt the file; it may only lose
 * the last transactions at a power cut. For the agent's own writes (acks,
 * marks) that is harmless: a lost ack is resent and the hub reports it as
 * a duplicate. It spares every ack chunk a WAL fsync, which also shortens
 * how long the POS may wait on the agent. The POS keeps its own setting on
 * its own connection. In rollback-journal mode NORMAL could corrupt the
 * file on power loss, so the setting is left alone there.
 */
void
db_tune(sqlite3 *db)
{
	sqlite3_stmt *st;
	bool wal = false;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL)
	    != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		wal = !sqlite3_stricmp(
		    (const char *) sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	if (wal)
		sqlite3_exec(
		    db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
}

proto_err
db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return PROTO_OK;
	snprintf(err, errlen, "could not run \"%.60s\": %s", sql,
	    msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return PROTO_EDB;
}

proto_err
db_prepare(
    sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
	if (sqlite3_prepare_v3(
	        db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL)
	    == SQLITE_OK)
		return PROTO_OK;
	snprintf(err, errlen, "could not prepare \"%.60s\": %s", sql,
	    sqlite3_errmsg(db));
	*st = NULL;
	return PROTO_EDB;
}

int
db_step_nowait(sqlite3 *db, sqlite3_stmt *st, int64_t busy_ms)
{
	int rc;

	sqlite3_busy_timeout(db, 0);
	rc = sqlite3_step(st);
	sqlite3_busy_timeout(db, (int) busy_ms);
	return rc;
}

proto_err
db_begin_nowait(
    sqlite3 *db, int64_t busy_ms, bool *got, char *err, size_t errlen)
{
	proto_err rv;

	*got = false;
	sqlite3_busy_timeout(db, 0);
	rv = db_exec(db, "BEGIN IMMEDIATE", err, errlen);
	sqlite3_busy_timeout(db, (int) busy_ms);
	if (rv == PROTO_OK)
		*got = true;
	else if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_BUSY)
		rv = PROTO_OK;
	return rv;
}

void
db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

proto_err
db_tx_steps(sqlite3 *db, const char *const *sql, size_t n,
    void (*bind)(sqlite3_stmt *st, const void *arg), const void *arg,
    int64_t *changes, const char *what, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = db_exec(db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	for (size_t i = 0; i < n && rv == PROTO_OK; i++) {
		sqlite3_stmt *st;
		if ((rv = db_prepare(db, sql[i], &st, err, errlen))
		    != PROTO_OK)
			break;
		bind(st, arg);
		if (sqlite3_step(st) != SQLITE_DONE)
			rv = db_fail(db, what, err, errlen);
		else if (i == 0 && changes != NULL)
			*changes = sqlite3_changes(db);
		sqlite3_finalize(st);
	}
	if (rv == PROTO_OK)
		rv = db_exec(db, "COMMIT", err, errlen);
	if (rv != PROTO_OK)
		db_rollback(db);
	return rv;
}

void
db_bind_value(sqlite3_stmt *st, int idx, const proto_value *v)
{
	switch (v->type) {
	case PROTO_NIL:
		sqlite3_bind_null(st, idx);
		break;
	case PROTO_BOOL:
		sqlite3_bind_int(st, idx, v->u.b);
		break;
	case PROTO_INT:
		sqlite3_bind_int64(st, idx, v->u.i);
		break;
	case PROTO_FLOAT:
		sqlite3_bind_double(st, idx, v->u.f);
		break;
	case PROTO_STR:
		sqlite3_bind_text(
		    st, idx, v->u.s, (int) v->len, SQLITE_STATIC);
		break;
	case PROTO_BIN:
		sqlite3_bind_blob(
		    st, idx, v->u.p, (int) v->len, SQLITE_STATIC);
		break;
	}
}

proto_err
db_schema_version(sqlite3 *db, int64_t *v, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;

	if ((rv = db_prepare(db, "PRAGMA schema_version", &st, err, errlen))
	    != PROTO_OK)
		return rv;
	if (sqlite3_step(st) == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	else
		rv = db_fail(
		    db, "could not read the schema version", err, errlen);
	sqlite3_finalize(st);
	return rv;
}
