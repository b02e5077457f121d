/*
 * capture.c: install the log, meta and guard tables and the per-table
 * capture triggers in the POS file.
 *
 * The trigger bodies are deliberately minimal: they run inside every POS
 * transaction, so each captured row costs one small INSERT (and, for
 * tables with is_synced, one indexed UPDATE that usually matches nothing
 * to change). Row values are read later, at send time.
 */
#include "capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "db.h"
#include "platform.h"
#include "sqlb.h"
#include "util.h"

#define SYNCED_COL "is_synced"

static const char *const kind_suffix[3] = {"ins", "upd", "del"};

/* Column names and pk positions of a table, in catalog order. */
typedef struct {
	char **names; /* column names */
	int *pk;      /* 1-based position in the PRIMARY KEY, or 0 */
	size_t n;     /* number of columns */
} col_list;

static void
col_list_fini(col_list *cl)
{
	for (size_t i = 0; i < cl->n; i++)
		free(cl->names[i]);
	free(cl->names);
	free(cl->pk);
	memset(cl, 0, sizeof *cl);
}

static proto_err
read_columns(
    sqlite3 *db, const char *table, col_list *cl, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	proto_err rv;
	int rc;

	/* Only a real table: a view has no triggers of this kind. */
	if ((rv = db_prepare(db,
	         "SELECT p.name, p.pk FROM sqlite_master m, "
	         "pragma_table_info(m.name) p WHERE m.type = 'table' AND "
	         "m.name = ?1 ORDER BY p.cid",
	         &st, err, errlen))
	    != PROTO_OK)
		return rv;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cl->names = xrealloc(cl->names, (cl->n + 1) * sizeof(char *));
		cl->pk = xrealloc(cl->pk, (cl->n + 1) * sizeof(int));
		cl->names[cl->n]
		    = xstrdup((const char *) sqlite3_column_text(st, 0));
		cl->pk[cl->n++] = sqlite3_column_int(st, 1);
	}
	if (rc != SQLITE_DONE)
		rv = db_fail(db, "could not read the catalog", err, errlen);
	else if (cl->n == 0) {
		snprintf(err, errlen, "table \"%s\" does not exist", table);
		rv = PROTO_EINVAL;
	}
	sqlite3_finalize(st);
	return rv;
}

static bool
is_synced_col(const char *name)
{
	return strcasecmp(name, SYNCED_COL) == 0;
}

/* Maps "key = a, b" onto column indexes (catalog spelling kept). */
static proto_err
key_from_conf(const col_list *cl, const agent_table_config *tc, size_t *idx,
    size_t *nkey, char *err, size_t errlen)
{
	char **items;
	size_t n = cfg_list_split(tc->key, &items);
	proto_err rv = PROTO_OK;

	*nkey = 0;
	for (size_t i = 0; i < n && rv == PROTO_OK; i++) {
		size_t j;
		for (j = 0; j < cl->n; j++)
			if (!strcasecmp(cl->names[j], items[i]))
				break;
		if (j == cl->n || is_synced_col(cl->names[j])) {
			snprintf(err, errlen,
			    "key column \"%s\" of table \"%s\" does not exist",
			    items[i], tc->name);
			rv = PROTO_EINVAL;
		}
		for (size_t k = 0; k < *nkey && rv == PROTO_OK; k++)
			if (idx[k] == j) {
				snprintf(err, errlen,
				    "key column \"%s\" of table \"%s\" is "
				    "listed twice",
				    items[i], tc->name);
				rv = PROTO_EINVAL;
			}
		if (rv == PROTO_OK)
			idx[(*nkey)++] = j;
	}
	cfg_list_free(items, n);
	if (rv == PROTO_OK && *nkey == 0) {
		snprintf(
		    err, errlen, "\"key\" of table \"%s\" is empty", tc->name);
		rv = PROTO_EINVAL;
	}
	return rv;
}

/* The declared PRIMARY KEY, in key order. */
static proto_err
key_from_pk(const col_list *cl, const char *table, size_t *idx, size_t *nkey,
    char *err, size_t errlen)
{
	*nkey = 0;
	for (int pos = 1;; pos++) {
		size_t j;
		for (j = 0; j < cl->n; j++)
			if (cl->pk[j] == pos)
				break;
		if (j == cl->n)
			break;
		idx[(*nkey)++] = j;
	}
	if (*nkey == 0) {
		snprintf(err, errlen,
		    "table \"%s\" has no PRIMARY KEY; set \"key\" in "
		    "[table %s]",
		    table, table);
		return PROTO_EINVAL;
	}
	return PROTO_OK;
}

/*
 * Marks the columns of "exclude = a, b" in skip. They stay local: never
 * sent, and a write touching only them (or is_synced) is not captured.
 * A key column cannot be excluded: the key identifies the row.
 */
static proto_err
exclude_from_conf(const col_list *cl, const agent_table_config *tc,
    const size_t *idx, size_t nkey, bool *skip, char *err, size_t errlen)
{
	char **items = NULL;
	size_t n = 0;
	proto_err rv = PROTO_OK;

	if (tc->exclude != NULL)
		n = cfg_list_split(tc->exclude, &items);

	for (size_t i = 0; i < n && rv == PROTO_OK; i++) {
		size_t j;
		for (j = 0; j < cl->n; j++)
			if (!strcasecmp(cl->names[j], items[i]))
				break;
		if (j == cl->n) {
			snprintf(err, errlen,
			    "excluded column \"%s\" of table \"%s\" does "
			    "not exist",
			    items[i], tc->name);
			rv = PROTO_EINVAL;
			break;
		}
		for (size_t k = 0; k < nkey && rv == PROTO_OK; k++)
			if (idx[k] == j) {
				snprintf(err, errlen,
				    "key column \"%s\" of table \"%s\" "
				    "cannot be excluded",
				    items[i], tc->name);
				rv = PROTO_EINVAL;
			}
		skip[j] = true;
	}
	if (items != NULL)
		cfg_list_free(items, n);
	return rv;
}

/*
 * rowid_name: the first of rowid, _rowid_ and oid that no column of the
 * table takes, if the table has a rowid (a WITHOUT ROWID table does not).
 */
static const char *
rowid_name(sqlite3 *db, const char *table, const col_list *cl)
{
	static const char *const names[] = {"rowid", "_rowid_", "oid"};
	const char *name = NULL;
	sqlite3_stmt *st;
	strbuf b = {0};

	for (size_t i = 0; i < ARRAY_LEN(names) && name == NULL; i++) {
		name = names[i];
		for (size_t j = 0; j < cl->n; j++)
			if (!strcasecmp(cl->names[j], names[i]))
				name = NULL;
	}
	if (name == NULL)
		return NULL;
	strbuf_printf(&b, "SELECT %s FROM ", name);
	sqlb_ident(&b, table);
	if (sqlite3_prepare_v2(db, b.p, -1, &st, NULL) != SQLITE_OK)
		name = NULL;
	sqlite3_finalize(st);
	strbuf_fini(&b);
	return name;
}

static void
fill_table(capture_table *t, const col_list *cl, const size_t *idx,
    size_t nkey, const bool *skip)
{
	t->cols = xcalloc(cl->n, sizeof(char *));
	t->upd_cols = xcalloc(cl->n, sizeof(char *));
	t->nkey = nkey;
	for (size_t i = 0; i < nkey; i++)
		t->cols[t->ncols++] = xstrdup(cl->names[idx[i]]);
	for (size_t j = 0; j < cl->n; j++) {
		bool is_key = false;
		if (is_synced_col(cl->names[j])) {
			t->has_synced = true;
			continue;
		}
		if (skip[j])
			continue;
		t->upd_cols[t->nupd++] = xstrdup(cl->names[j]);
		for (size_t i = 0; i < nkey; i++)
			is_key |= idx[i] == j;
		if (!is_key)
			t->cols[t->ncols++] = xstrdup(cl->names[j]);
	}
}

proto_err
capture_describe(sqlite3 *db, const agent_table_config *tc, capture_table *t,
    char *err, size_t errlen)
{
	col_list cl = {0};
	size_t *idx = NULL, nkey = 0;
	bool *skip = NULL;
	proto_err rv;

	memset(t, 0, sizeof *t);
	if ((rv = read_columns(db, tc->name, &cl, err, errlen)) != PROTO_OK)
		goto done;
	idx = xcalloc(cl.n, sizeof *idx);
	if (tc->key != NULL)
		rv = key_from_conf(&cl, tc, idx, &nkey, err, errlen);
	else
		rv = key_from_pk(&cl, tc->name, idx, &nkey, err, errlen);
	if (rv != PROTO_OK)
		goto done;
	skip = xcalloc(cl.n, sizeof *skip);
	if ((rv = exclude_from_conf(&cl, tc, idx, nkey, skip, err, errlen))
	    != PROTO_OK)
		goto done;
	t->name = xstrdup(tc->name);
	fill_table(t, &cl, idx, nkey, skip);
	t->rowid = rowid_name(db, tc->name, &cl);
done:
	free(skip);
	free(idx);
	col_list_fini(&cl);
	return rv;
}

void
capture_table_fini(capture_table *t)
{
	for (size_t i = 0; i < t->ncols; i++)
		free(t->cols[i]);
	for (size_t i = 0; i < t->nupd; i++)
		free(t->upd_cols[i]);
	free(t->cols);
	free(t->upd_cols);
	free(t->name);
	memset(t, 0, sizeof *t);
}

/*
 * The key as the trigger stores it: the value itself (any type, NULL
 * included), or for a composite key json_array(...) of the parts. JSON
 * cannot hold a BLOB, and json_array() would fail the POS's statement, so
 * a BLOB part is stored as {"b": "<hex>"} (see outbox.c, which decodes
 * it). No value SQLite accepts in a key makes this expression fail.
 */
static void
add_key_expr(strbuf *b, const capture_table *t, const char *rec)
{
	if (t->nkey == 1) {
		strbuf_printf(b, "%s.", rec);
		sqlb_ident(b, t->cols[0]);
		return;
	}
	strbuf_printf(b, "json_array(");
	for (size_t i = 0; i < t->nkey; i++) {
		strbuf_printf(b, "%sCASE WHEN typeof(%s.", i ? ", " : "", rec);
		sqlb_ident(b, t->cols[i]);
		strbuf_printf(
		    b, ") = 'blob' THEN json_object('b', hex(%s.", rec);
		sqlb_ident(b, t->cols[i]);
		strbuf_printf(b, ")) ELSE %s.", rec);
		sqlb_ident(b, t->cols[i]);
		strbuf_printf(b, " END");
	}
	strbuf_printf(b, ")");
}

/*
 * The capture time, in epoch seconds, for the outbox age warning. Written
 * by the trigger: SQLite cannot add a column with a non-constant DEFAULT
 * to an existing table.
 */
#define TS_EXPR "CAST(strftime('%%s', 'now') AS INTEGER)"

/*
 * INSERT INTO _branchsync_log ... VALUES ('T', op, key, random(), ts[, r]);
 * r, the row's rowid when it was written, lets the agent read and mark
 * the row without a search by key (outbox.c checks the key still
 * matches: a rowid can be reused or renumbered).
 */
static void
add_log_insert(strbuf *b, const capture_table *t, int op, const char *rec)
{
	bool r = t->rowid != NULL && op != 3;

	strbuf_printf(b,
	    "  INSERT INTO _branchsync_log(tbl, op, k, tag, ts%s) "
	    "VALUES (",
	    r ? ", r" : "");
	sqlb_lit(b, t->name);
	strbuf_printf(b, ", %d, ", op);
	add_key_expr(b, t, rec);
	strbuf_printf(b, ", random(), " TS_EXPR);
	if (r)
		strbuf_printf(b, ", %s.%s", rec, t->rowid);
	strbuf_printf(b, ");\n");
}

/* A captured write marks the row unsynced, unless it already is. */
static void
add_unsync(strbuf *b, const capture_table *t)
{
	if (!t->has_synced)
		return;
	strbuf_printf(b, "  UPDATE ");
	sqlb_ident(b, t->name);
	strbuf_printf(b, " SET is_synced = 0 WHERE NEW.is_synced IS NOT 0");
	/* IS: a NULL key part (SQLite allows one) still finds its row. */
	for (size_t i = 0; i < t->nkey; i++) {
		strbuf_printf(b, " AND ");
		sqlb_ident(b, t->cols[i]);
		strbuf_printf(b, " IS NEW.");
		sqlb_ident(b, t->cols[i]);
	}
	strbuf_printf(b, ";\n");
}

/* Update trigger: a changed key first logs a delete of the old key. */
static void
add_upd_body(strbuf *b, const capture_table *t)
{
	strbuf_printf(
	    b, "  INSERT INTO _branchsync_log(tbl, op, k, tag, ts) SELECT ");
	sqlb_lit(b, t->name);
	strbuf_printf(b, ", 3, ");
	add_key_expr(b, t, "OLD");
	strbuf_printf(b, ", random(), " TS_EXPR " WHERE ");
	for (size_t i = 0; i < t->nkey; i++) {
		strbuf_printf(b, "%sOLD.", i ? " OR " : "");
		sqlb_ident(b, t->cols[i]);
		strbuf_printf(b, " IS NOT NEW.");
		sqlb_ident(b, t->cols[i]);
	}
	strbuf_printf(b, ";\n");
	add_log_insert(b, t, 2, "NEW");
	add_unsync(b, t);
}

char *
capture_trigger_sql(const capture_table *t, int kind, char **name)
{
	static const char *const events[3] = {"INSERT", "UPDATE", "DELETE"};
	strbuf b = {0};

	strbuf_printf(&b, "_branchsync_%s_%s", t->name, kind_suffix[kind]);
	*name = strbuf_take(&b);
	strbuf_printf(&b, "CREATE TRIGGER ");
	sqlb_ident(&b, *name);
	strbuf_printf(&b, " AFTER %s ", events[kind]);
	for (size_t i = 0; kind == 1 && i < t->nupd; i++) {
		strbuf_printf(&b, "%s", i ? ", " : "OF ");
		sqlb_ident(&b, t->upd_cols[i]);
		strbuf_printf(&b, "%s", i + 1 == t->nupd ? " " : "");
	}
	strbuf_printf(&b, "ON ");
	sqlb_ident(&b, t->name);
	strbuf_printf(&b,
	    "\nWHEN NOT EXISTS (SELECT 1 FROM _branchsync_guard) "
	    "BEGIN\n");
	if (kind == 0) {
		add_log_insert(&b, t, 1, "NEW");
		add_unsync(&b, t);
	} else if (kind == 1) {
		add_upd_body(&b, t);
	} else {
		add_log_insert(&b, t, 3, "OLD");
	}
	strbuf_printf(&b, "END");
	return strbuf_take(&b);
}

/*
 * The log. k has no NOT NULL: a single-column key may be NULL (SQLite
 * allows it in a TEXT PRIMARY KEY), and the POS's write must not fail.
 */
#define LOG_COLUMNS                                                           \
	"(seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, op INTEGER NOT NULL, "  \
	"k, tag INTEGER NOT NULL, err TEXT, retry INTEGER, ts INTEGER, "      \
	"r INTEGER)"

static const char base_sql[]
    = "CREATE TABLE IF NOT EXISTS _branchsync_log" LOG_COLUMNS
      ";\n" CAPTURE_LOG_KEY_INDEX ";\n"
      "CREATE TABLE IF NOT EXISTS _branchsync_meta(name TEXT PRIMARY KEY, "
      "value) WITHOUT ROWID;\n"
      "CREATE TABLE IF NOT EXISTS _branchsync_guard(x INTEGER);\n"
      "INSERT OR IGNORE INTO _branchsync_meta(name, value) VALUES "
      "('schema', 2), ('acked_seq', 0), ('acked_tag', 0), "
      "('down_cursor', 0);\n";

/* A trigger by name and SQL, wanted or found. */
typedef struct {
	char *name; /* trigger name */
	char *sql;  /* CREATE TRIGGER text */
	bool keep;  /* found with identical SQL: leave alone */
} trig;

typedef struct {
	trig *v;  /* the triggers */
	size_t n; /* how many */
} trig_list;

static void
trig_list_fini(trig_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].sql);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void
trig_push(trig_list *l, char *name, char *sql)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = (trig) {name, sql, false};
}

/* Builds the wanted triggers of every configured table. */
static proto_err
wanted_triggers(sqlite3 *db, const agent_config *conf, trig_list *want,
    char *err, size_t errlen)
{
	for (size_t i = 0; i < conf->ntables; i++) {
		capture_table t;
		proto_err rv;
		/* Down tables are written by the agent only: no capture. */
		if (conf->tables[i].down)
			continue;
		if ((rv = capture_describe(
		         db, &conf->tables[i], &t, err, errlen))
		    != PROTO_OK)
			return rv;
		for (int kind = 0; kind < 3; kind++) {
			char *name,
			    *sql = capture_trigger_sql(&t, kind, &name);
			trig_push(want, name, sql);
		}
		capture_table_fini(&t);
	}
	return PROTO_OK;
}

static proto_err
existing_triggers(sqlite3 *db, trig_list *have, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;
	int rc;

	if ((rv = db_prepare(db,
	         "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
	         "AND name LIKE '\\_branchsync\\_%' ESCAPE '\\'",
	         &st, err, errlen))
	    != PROTO_OK)
		return rv;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *sql = (const char *) sqlite3_column_text(st, 1);
		trig_push(have,
		    xstrdup((const char *) sqlite3_column_text(st, 0)),
		    xstrdup(sql != NULL ? sql : ""));
	}
	if (rc != SQLITE_DONE)
		rv = db_fail(db, "could not read triggers", err, errlen);
	sqlite3_finalize(st);
	return rv;
}

static trig *
trig_find(trig_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return &l->v[i];
	return NULL;
}

/* Drops differing or unwanted triggers, then creates the missing ones. */
static proto_err
sync_triggers(sqlite3 *db, trig_list *want, trig_list *have,
    capture_result *res, char *err, size_t errlen)
{
	proto_err rv;

	for (size_t i = 0; i < have->n; i++) {
		trig *w = trig_find(want, have->v[i].name);
		strbuf b = {0};
		if (w != NULL && !strcmp(w->sql, have->v[i].sql)) {
			w->keep = true;
			continue;
		}
		strbuf_printf(&b, "DROP TRIGGER ");
		sqlb_ident(&b, have->v[i].name);
		rv = db_exec(db, b.p, err, errlen);
		strbuf_fini(&b);
		if (rv != PROTO_OK)
			return rv;
		res->dropped++;
	}
	for (size_t i = 0; i < want->n; i++) {
		if (want->v[i].keep)
			continue;
		if ((rv = db_exec(db, want->v[i].sql, err, errlen))
		    != PROTO_OK)
			return rv;
		res->created++;
	}
	return PROTO_OK;
}

/*
 * Columns added to _branchsync_log after its first release, with their
 * declarations: a log created by an older agent gets them at init. They
 * are NULL in old entries (retry: not being retried; ts: unknown age; r:
 * the row is found by its key).
 */
static const char *const added_cols[][2] = {
    {"retry", "retry INTEGER"},
    {"ts", "ts INTEGER"},
    {"r", "r INTEGER"},
};

static proto_err
add_log_columns(sqlite3 *db, char *err, size_t errlen)
{
	proto_err rv;

	for (size_t i = 0; i < ARRAY_LEN(added_cols); i++) {
		char sql[128];
		if (sqlite3_table_column_metadata(db, NULL, "_branchsync_log",
		        added_cols[i][0], NULL, NULL, NULL, NULL, NULL)
		    == SQLITE_OK)
			continue;
		snprintf(sql, sizeof sql,
		    "ALTER TABLE _branchsync_log ADD COLUMN %s",
		    added_cols[i][1]);
		if ((rv = db_exec(db, sql, err, errlen)) != PROTO_OK)
			return rv;
	}
	return PROTO_OK;
}

/* Drops every capture trigger; capture_install recreates them. */
static proto_err
drop_all_triggers(sqlite3 *db, capture_result *res, char *err, size_t errlen)
{
	trig_list have = {0};
	proto_err rv;

	if ((rv = existing_triggers(db, &have, err, errlen)) != PROTO_OK)
		return rv;
	for (size_t i = 0; i < have.n && rv == PROTO_OK; i++) {
		strbuf b = {0};
		strbuf_printf(&b, "DROP TRIGGER ");
		sqlb_ident(&b, have.v[i].name);
		rv = db_exec(db, b.p, err, errlen);
		strbuf_fini(&b);
		res->dropped++;
	}
	trig_list_fini(&have);
	return rv;
}

/*
 * Logs made before schema 2 declared k NOT NULL, so a NULL key failed the
 * POS's write. SQLite cannot drop a constraint: the log is copied into a
 * new table (same seqs, nothing lost) inside capture_install's
 * transaction. The triggers that write it are dropped first, since a
 * trigger naming a missing table would fail the RENAME, and come back
 * when capture_install creates the wanted ones.
 */
static proto_err
relax_log_key(sqlite3 *db, capture_result *res, char *err, size_t errlen)
{
	static const char rebuild[]
	    = "CREATE TABLE _branchsync_log_new" LOG_COLUMNS ";\n"
	      "INSERT INTO _branchsync_log_new(seq, tbl, op, k, tag, err, "
	      "retry, ts) SELECT seq, tbl, op, k, tag, err, retry, ts FROM "
	      "_branchsync_log;\n"
	      "DROP TABLE _branchsync_log;\n"
	      "ALTER TABLE _branchsync_log_new RENAME TO "
	      "_branchsync_log;\n" CAPTURE_LOG_KEY_INDEX ";\n"
	      "UPDATE _branchsync_meta SET value = 2 WHERE name = 'schema'";
	sqlite3_stmt *st;
	proto_err rv;
	bool strict = false;

	if ((rv = db_prepare(db,
	         "SELECT \"notnull\" FROM pragma_table_info("
	         "'_branchsync_log') WHERE name = 'k'",
	         &st, err, errlen))
	    != PROTO_OK)
		return rv;
	if (sqlite3_step(st) == SQLITE_ROW)
		strict = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	if (!strict)
		return PROTO_OK;
	if ((rv = drop_all_triggers(db, res, err, errlen)) != PROTO_OK)
		return rv;
	return db_exec(db, rebuild, err, errlen);
}

static proto_err
insert_log_id(sqlite3 *db, char *err, size_t errlen)
{
	uint8_t raw[16];
	char hex[33];
	sqlite3_stmt *st;
	proto_err rv;

	if (plat_rand_bytes(raw, sizeof raw) != PROTO_OK) {
		snprintf(err, errlen, "could not read random bytes");
		return PROTO_EIO;
	}
	hex_encode(raw, sizeof raw, hex);
	if ((rv = db_prepare(db,
	         "INSERT OR IGNORE INTO _branchsync_meta(name, value) "
	         "VALUES ('log_id', ?1)",
	         &st, err, errlen))
	    != PROTO_OK)
		return rv;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_fail(db, "could not store the log id", err, errlen);
	sqlite3_finalize(st);
	return rv;
}

static proto_err
set_wal(sqlite3 *db, bool *is_wal, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;

	if ((rv = db_prepare(
	         db, "PRAGMA journal_mode = WAL", &st, err, errlen))
	    != PROTO_OK)
		return rv;
	if (sqlite3_step(st) == SQLITE_ROW)
		*is_wal = !strcasecmp(
		    (const char *) sqlite3_column_text(st, 0), "wal");
	else
		rv = db_fail(db, "could not switch to WAL", err, errlen);
	sqlite3_finalize(st);
	if (rv == PROTO_OK && !*is_wal) {
		snprintf(err, errlen,
		    "could not switch to WAL (database in "
		    "use or on an unsupported file system)");
		rv = PROTO_EDB;
	}
	return rv;
}

proto_err
capture_install(sqlite3 *db, const agent_config *conf, bool wal,
    capture_result *res, char *err, size_t errlen)
{
	capture_result dummy;
	trig_list want = {0}, have = {0};
	proto_err rv;

	if (res == NULL)
		res = &dummy;
	memset(res, 0, sizeof *res);
	if (wal && (rv = set_wal(db, &res->wal, err, errlen)) != PROTO_OK)
		return rv;
	/* IMMEDIATE: take the write lock first, so the catalog we compare
	 * with cannot change before we commit. */
	if ((rv = db_exec(db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	if ((rv = db_exec(db, base_sql, err, errlen)) != PROTO_OK
	    || (rv = add_log_columns(db, err, errlen)) != PROTO_OK
	    || (rv = relax_log_key(db, res, err, errlen)) != PROTO_OK
	    || (rv = insert_log_id(db, err, errlen)) != PROTO_OK
	    || (rv = wanted_triggers(db, conf, &want, err, errlen)) != PROTO_OK
	    || (rv = existing_triggers(db, &have, err, errlen)) != PROTO_OK
	    || (rv = sync_triggers(db, &want, &have, res, err, errlen))
	        != PROTO_OK
	    || (rv = db_exec(db, "COMMIT", err, errlen)) != PROTO_OK)
		db_rollback(db);
	trig_list_fini(&want);
	trig_list_fini(&have);
	return rv;
}

proto_err
capture_stale(sqlite3 *db, const capture_table *tables, size_t ntables,
    int *nstale, char *err, size_t errlen)
{
	trig_list have = {0};
	proto_err rv;

	*nstale = 0;
	if ((rv = existing_triggers(db, &have, err, errlen)) != PROTO_OK)
		return rv;
	for (size_t i = 0; i < ntables; i++) {
		for (int kind = 0; kind < 3; kind++) {
			char *name,
			    *sql
			    = capture_trigger_sql(&tables[i], kind, &name);
			trig *h = trig_find(&have, name);
			if (h == NULL || strcmp(h->sql, sql))
				(*nstale)++;
			free(name);
			free(sql);
		}
	}
	trig_list_fini(&have);
	return PROTO_OK;
}

char *
capture_key_sql(const capture_table *t, const char *rec)
{
	strbuf b = {0};

	add_key_expr(&b, t, rec);
	return strbuf_take(&b);
}
