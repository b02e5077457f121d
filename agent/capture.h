/*
 * capture.h: the SQLite objects that capture POS writes.
 *
 * capture_install creates, in the POS file, the log, meta and guard tables
 * and three small triggers per upstream table (see the spec: each appends
 * (table, op, key, random tag) to _branchsync_log inside the POS
 * transaction). It is idempotent: it builds the trigger SQL from the
 * table's current columns, compares it with sqlite_master and touches only
 * what differs, so a table that gained a column gets a fresh UPDATE OF list.
 *
 * capture_describe reads one table's layout from the catalog; outbox uses
 * it to read rows at send time.
 */
#ifndef AGENT_CAPTURE_H
#define AGENT_CAPTURE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "proto/err.h"

#define CAPTURE_SCHEMA_VERSION 2

/*
 * The log's index by row: finds a row's later entries in one probe when a
 * batch is read (outbox.c), for one more index entry per captured write.
 * Created by init and, for files made before it existed, by outbox_open
 * (run, status, rejects).
 */
#define CAPTURE_LOG_KEY_INDEX                                                 \
	"CREATE INDEX IF NOT EXISTS _branchsync_log_key ON "                  \
	"_branchsync_log(tbl, k)"

/* One upstream table as found in the POS file's catalog. */
typedef struct {
	char *name;        /* table name, as in the catalog */
	char **cols;       /* sent columns: key first, is_synced left out */
	size_t ncols;      /* number of sent columns */
	size_t nkey;       /* the first nkey of cols are the key */
	char **upd_cols;   /* catalog order, without is_synced: UPDATE OF */
	size_t nupd;       /* number of upd_cols */
	bool has_synced;   /* the table has an is_synced column */
	const char *rowid; /* the name that reads its rowid (static), NULL
	                      for a WITHOUT ROWID table */
} capture_table;

/* What capture_install changed. */
typedef struct {
	int created; /* triggers created (new or refreshed) */
	int dropped; /* triggers dropped (refreshed or unconfigured) */
	bool wal;    /* journal_mode is WAL afterwards */
} capture_result;

/*
 * capture_describe fills t with the layout of table tc->name in db. Key
 * columns come from tc->key, else from the declared PRIMARY KEY. Errors:
 * PROTO_EINVAL (no such table or column, no key) and PROTO_EDB, with a
 * message in err. On success free t with capture_table_fini; on error t
 * is left empty.
 */
proto_err capture_describe(sqlite3 *db, const agent_table_config *tc,
    capture_table *t, char *err, size_t errlen);

/* capture_table_fini frees what capture_describe stored in t. */
void capture_table_fini(capture_table *t);

/*
 * capture_trigger_sql returns the CREATE TRIGGER text of kind 0 (insert),
 * 1 (update) or 2 (delete) for t, exactly as sqlite_master stores it, and
 * the trigger's name in *name. The caller frees both.
 */
char *capture_trigger_sql(const capture_table *t, int kind, char **name);

/*
 * capture_key_sql returns the SQL expression the triggers store as a log
 * entry's key (column k of _branchsync_log), over the columns of the row
 * named rec (e.g. "NEW", or a table alias): the value of a one-column
 * key, json_array(...) of a composite one. The caller frees it. Whatever
 * finds or writes log entries by row uses this, so keys always match.
 */
char *capture_key_sql(const capture_table *t, const char *rec);

/*
 * capture_install creates or refreshes all capture objects for the up
 * tables of conf in one BEGIN IMMEDIATE transaction, and with wal first
 * switches the file to journal_mode=WAL. Drops our triggers of tables that
 * are no longer configured as up (down tables get none). Adds the meta
 * rows schema, log_id, acked_seq, acked_tag and down_cursor if missing.
 * Returns PROTO_OK and fills *res (may be NULL), or PROTO_EINVAL /
 * PROTO_EDB with a message in err; on error nothing changed (except
 * possibly the journal mode).
 */
proto_err capture_install(sqlite3 *db, const agent_config *conf, bool wal,
    capture_result *res, char *err, size_t errlen);

/*
 * capture_stale counts the triggers of the configured tables whose SQL
 * differs from what capture_install would create now (e.g. a table gained
 * a column since init). Returns PROTO_OK and sets *nstale, or an error.
 */
proto_err capture_stale(sqlite3 *db, const capture_table *tables,
    size_t ntables, int *nstale, char *err, size_t errlen);

#endif /* AGENT_CAPTURE_H */
