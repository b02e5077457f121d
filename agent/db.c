/* db.c: open, exec and prepare with errors mapped to PROTO_EDB. */
#include "db.h"

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
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);

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

void
db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}
