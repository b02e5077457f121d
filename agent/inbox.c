/*
 * inbox.c: apply one CHANGES page to the POS file.
 *
 * For each table of a page a small plan maps the page's columns onto the
 * POS table's columns (read from the catalog for every page, so a column
 * the POS gained since the last page is used at once) and holds the two
 * statements of that table: an upsert of the received columns and a
 * delete by key. Plans are built before the write transaction starts, so
 * the POS write lock is held only while rows are written.
 */
#include "inbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "capture.h"
#include "db.h"
#include "log.h"
#include "sqlb.h"
#include "util.h"

#define SYNCED_COL "is_synced"

struct inbox {
	sqlite3 *db;              /* the POS file (borrowed) */
	const agent_config *conf; /* configuration (borrowed) */
	char **warned;            /* "table\ncolumn" or "table": logged once */
	size_t nwarned;           /* number of warned */
};

/* How one table of a page is applied. */
typedef struct {
	bool skip;            /* not configured down: changes are skipped */
	int *param;           /* per page column: upsert parameter, 0 none */
	sqlite3_stmt *upsert; /* INSERT ... ON CONFLICT DO UPDATE */
	sqlite3_stmt *del;    /* DELETE ... WHERE key */
} plan;

/* Returns true the first time it sees what, so a warning is logged once. */
static bool
first_time(inbox *ib, const char *table, const char *col)
{
	char *key;
	size_t n = strlen(table) + (col ? strlen(col) : 0) + 2;

	key = xmalloc(n);
	snprintf(key, n, "%s%s%s", table, col ? "\n" : "", col ? col : "");
	for (size_t i = 0; i < ib->nwarned; i++) {
		if (!strcmp(ib->warned[i], key)) {
			free(key);
			return false;
		}
	}
	ib->warned = xrealloc(ib->warned, (ib->nwarned + 1) * sizeof(char *));
	ib->warned[ib->nwarned++] = key;
	return true;
}

static const agent_table_config *
down_table(const inbox *ib, const char *name)
{
	const agent_table_config *tc = agent_config_find(ib->conf, name);

	return tc != NULL && tc->down ? tc : NULL;
}

/* Index of name in the local columns (case-insensitive, as SQLite), or
 * -1. */
static int
local_col(const capture_table *t, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (!strcasecmp(t->cols[i], name))
			return (int) i;
	return -1;
}

/* The page's key columns must be the local key columns, in any order. */
static proto_err
check_key(
    const capture_table *t, const proto_table *pt, char *err, size_t errlen)
{
	bool ok = pt->nkey == t->nkey;

	for (uint32_t i = 0; ok && i < pt->nkey; i++) {
		int j = local_col(t, pt->cols[i]);
		ok = j >= 0 && (size_t) j < t->nkey;
	}
	if (ok)
		return PROTO_OK;
	snprintf(err, errlen,
	    "the hub's key of table \"%s\" (%" PRIu32 " columns, first "
	    "\"%s\") differs from the local key (%zu columns, first \"%s\")",
	    t->name, pt->nkey, pt->cols[0], t->nkey, t->cols[0]);
	return PROTO_EINVAL;
}

/* Appends "c" = excluded."c" for the non-key upsert columns. */
static void
add_update_set(
    strbuf *b, const capture_table *t, const proto_table *pt, const plan *p)
{
	const char *sep = " DO UPDATE SET ";

	for (uint32_t i = pt->nkey; i < pt->ncols; i++) {
		if (p->param[i] == 0)
			continue;
		strbuf_printf(b, "%s", sep);
		sqlb_ident(b, pt->cols[i]);
		strbuf_printf(b, " = excluded.");
		sqlb_ident(b, pt->cols[i]);
		sep = ", ";
	}
	if (t->has_synced) {
		strbuf_printf(b, "%s" SYNCED_COL " = 1", sep);
		sep = ", ";
	}
	if (sep[0] == ' ') /* nothing to update: only key columns */
		strbuf_printf(b, " DO NOTHING");
}

/* INSERT INTO "T"(cols) VALUES (?1..) ON CONFLICT(key) DO UPDATE SET .. */
static char *
upsert_sql(const capture_table *t, const proto_table *pt, const plan *p)
{
	strbuf b = {0};
	int n = 0;

	strbuf_printf(&b, "INSERT INTO ");
	sqlb_ident(&b, t->name);
	for (uint32_t i = 0; i < pt->ncols; i++) {
		if (p->param[i] == 0)
			continue;
		strbuf_printf(&b, "%s", n++ ? ", " : "(");
		sqlb_ident(&b, pt->cols[i]);
	}
	if (t->has_synced)
		strbuf_printf(&b, ", " SYNCED_COL);
	strbuf_printf(&b, ") VALUES (");
	for (int i = 1; i <= n; i++)
		strbuf_printf(&b, "%s?%d", i > 1 ? ", " : "", i);
	strbuf_printf(&b, "%s) ON CONFLICT(", t->has_synced ? ", 1" : "");
	for (uint32_t i = 0; i < pt->nkey; i++) {
		strbuf_printf(&b, "%s", i ? ", " : "");
		sqlb_ident(&b, pt->cols[i]);
	}
	strbuf_printf(&b, ")");
	add_update_set(&b, t, pt, p);
	return strbuf_take(&b);
}

static char *
delete_sql(const capture_table *t, const proto_table *pt)
{
	strbuf b = {0};

	strbuf_printf(&b, "DELETE FROM ");
	sqlb_ident(&b, t->name);
	for (uint32_t i = 0; i < pt->nkey; i++) {
		strbuf_printf(&b, "%s", i ? " AND " : " WHERE ");
		sqlb_ident(&b, pt->cols[i]);
		strbuf_printf(&b, " = ?%" PRIu32, i + 1);
	}
	return strbuf_take(&b);
}

/* Maps page columns to parameters; unknown columns are logged once. */
static void
map_columns(inbox *ib, const capture_table *t, const proto_table *pt, plan *p)
{
	int n = 0;

	p->param = xcalloc(pt->ncols, sizeof(int));
	for (uint32_t i = 0; i < pt->ncols; i++) {
		if (!strcasecmp(pt->cols[i], SYNCED_COL))
			continue; /* ours to set, never the center's */
		if (local_col(t, pt->cols[i]) < 0) {
			if (first_time(ib, pt->name, pt->cols[i]))
				log_warn("AGENT-DOWN-COLUMN",
				    "table \"%s\" has no column \"%s\"; "
				    "its received values are ignored",
				    pt->name, pt->cols[i]);
			continue;
		}
		p->param[i] = ++n;
	}
}

static proto_err
plan_build(inbox *ib, const proto_table *pt, plan *p, char *err, size_t errlen)
{
	const agent_table_config *tc = down_table(ib, pt->name);
	capture_table t;
	char *sql = NULL;
	proto_err rv;

	if (tc == NULL) {
		p->skip = true;
		if (first_time(ib, pt->name, NULL))
			log_warn("AGENT-DOWN-TABLE",
			    "table \"%s\" is not configured with direction "
			    "= down; its changes are skipped",
			    pt->name);
		return PROTO_OK;
	}
	if ((rv = capture_describe(ib->db, tc, &t, err, errlen)) != PROTO_OK)
		return rv;
	if ((rv = check_key(&t, pt, err, errlen)) != PROTO_OK)
		goto done;
	map_columns(ib, &t, pt, p);
	sql = upsert_sql(&t, pt, p);
	if ((rv = db_prepare(ib->db, sql, &p->upsert, err, errlen))
	    != PROTO_OK)
		goto done;
	free(sql);
	sql = delete_sql(&t, pt);
	rv = db_prepare(ib->db, sql, &p->del, err, errlen);
done:
	free(sql);
	capture_table_fini(&t);
	return rv;
}

static void
plans_free(plan *ps, uint32_t n)
{
	for (uint32_t i = 0; ps != NULL && i < n; i++) {
		sqlite3_finalize(ps[i].upsert);
		sqlite3_finalize(ps[i].del);
		free(ps[i].param);
	}
	free(ps);
}

/* Applies one change with its table's plan. */
static proto_err
apply_change(inbox *ib, const proto_table *pt, const plan *p,
    const proto_event *c, char *err, size_t errlen)
{
	sqlite3_stmt *st = c->op == PROTO_OP_DELETE ? p->del : p->upsert;
	uint32_t want = c->op == PROTO_OP_DELETE ? pt->nkey : pt->ncols;
	proto_err rv = PROTO_OK;

	if (c->nvals != want
	    || (c->op != PROTO_OP_DELETE && c->op != PROTO_OP_UPSERT)) {
		snprintf(err, errlen,
		    "change %" PRId64 " of table \"%s\" is "
		    "malformed",
		    c->seq, pt->name);
		return PROTO_EPROTO;
	}
	for (uint32_t i = 0; i < c->nvals; i++) {
		int param
		    = c->op == PROTO_OP_DELETE ? (int) i + 1 : p->param[i];
		if (param > 0)
			db_bind_value(st, param, &c->vals[i]);
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		char what[300];
		snprintf(what, sizeof what,
		    "could not apply change %" PRId64 " of table \"%s\"",
		    c->seq, pt->name);
		rv = db_fail(ib->db, what, err, errlen);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rv;
}

static proto_err
meta_set(sqlite3 *db, const char *sql, int64_t v, const char *s, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;

	if ((rv = db_prepare(db, sql, &st, err, errlen)) != PROTO_OK)
		return rv;
	sqlite3_bind_int64(st, 1, v);
	if (s != NULL)
		sqlite3_bind_text(st, 2, s, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_fail(
		    db, "could not update _branchsync_meta", err, errlen);
	sqlite3_finalize(st);
	return rv;
}

/* Stores the page's cursor (and ends a finished reload) in the txn. */
static proto_err
store_cursor(sqlite3 *db, const proto_changes *page, const char *reload,
    char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = meta_set(db,
	         "INSERT OR REPLACE INTO _branchsync_meta(name, value) "
	         "VALUES ('last_pull', ?1)",
	         (int64_t) time(NULL), NULL, err, errlen))
	    != PROTO_OK)
		return rv;
	if (reload == NULL)
		return meta_set(db,
		    "INSERT OR REPLACE INTO _branchsync_meta(name, value) "
		    "VALUES ('down_cursor', ?1)",
		    page->cursor, NULL, err, errlen);
	/* Only if no new "reload" replaced this one meanwhile. */
	if (page->more)
		return meta_set(db,
		    "UPDATE _branchsync_meta SET value = ?1 WHERE name = "
		    "'reload_cursor' AND EXISTS (SELECT 1 FROM "
		    "_branchsync_meta WHERE name = 'reload_table' AND value = "
		    "?2)",
		    page->cursor, reload, err, errlen);
	return meta_set(db,
	    "DELETE FROM _branchsync_meta WHERE name IN ('reload_table', "
	    "'reload_cursor') AND EXISTS (SELECT 1 FROM "
	    "_branchsync_meta WHERE name = 'reload_table' AND value = ?2)",
	    page->cursor, reload, err, errlen);
}

/* The write transaction: guard on, changes, cursor, guard off, commit. */
static proto_err
apply_txn(inbox *ib, const proto_changes *page, const plan *ps,
    const char *reload, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = db_exec(ib->db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	if ((rv = db_exec(ib->db, "INSERT INTO _branchsync_guard VALUES (1)",
	         err, errlen))
	    != PROTO_OK)
		goto fail;
	for (uint32_t i = 0; i < page->nchanges; i++) {
		const proto_event *c = &page->changes[i];
		if (ps[c->table].skip)
			continue;
		if ((rv = apply_change(ib, &page->tables[c->table],
		         &ps[c->table], c, err, errlen))
		    != PROTO_OK)
			goto fail;
	}
	if ((rv = store_cursor(ib->db, page, reload, err, errlen)) != PROTO_OK
	    || (rv = db_exec(
	            ib->db, "DELETE FROM _branchsync_guard", err, errlen))
	        != PROTO_OK
	    || (rv = db_exec(ib->db, "COMMIT", err, errlen)) != PROTO_OK)
		goto fail;
	return PROTO_OK;
fail:
	db_rollback(ib->db);
	return rv;
}

proto_err
inbox_apply(inbox *ib, const proto_changes *page, const char *reload,
    char *err, size_t errlen)
{
	plan *ps = xcalloc(page->ntables + 1, sizeof *ps);
	proto_err rv = PROTO_OK;

	for (uint32_t i = 0; i < page->nchanges; i++) {
		if (page->changes[i].table >= page->ntables) {
			snprintf(err, errlen,
			    "change %" PRId64 " names no table",
			    page->changes[i].seq);
			rv = PROTO_EPROTO;
			goto done;
		}
	}
	for (uint32_t i = 0; i < page->ntables && rv == PROTO_OK; i++)
		rv = plan_build(ib, &page->tables[i], &ps[i], err, errlen);
	if (rv == PROTO_OK)
		rv = apply_txn(ib, page, ps, reload, err, errlen);
done:
	plans_free(ps, page->ntables);
	return rv;
}

proto_err
inbox_open(sqlite3 *db, const agent_config *conf, inbox **out, char *err,
    size_t errlen)
{
	proto_err rv = PROTO_OK;

	*out = NULL;
	for (size_t i = 0; i < conf->ntables && rv == PROTO_OK; i++) {
		capture_table t;
		if (!conf->tables[i].down)
			continue;
		if ((rv = capture_describe(
		         db, &conf->tables[i], &t, err, errlen))
		    == PROTO_OK)
			capture_table_fini(&t);
	}
	if (rv != PROTO_OK)
		return rv;
	*out = xcalloc(1, sizeof **out);
	(*out)->db = db;
	(*out)->conf = conf;
	return PROTO_OK;
}

void
inbox_close(inbox *ib)
{
	if (ib == NULL)
		return;
	for (size_t i = 0; i < ib->nwarned; i++)
		free(ib->warned[i]);
	free(ib->warned);
	free(ib);
}

/* Copies one meta row of the state query into st. */
static void
state_row(inbox_state *st, const char *name, sqlite3_stmt *q)
{
	int64_t v = sqlite3_column_int64(q, 1);
	const char *s = (const char *) sqlite3_column_text(q, 1);

	if (!strcmp(name, "down_cursor"))
		st->down_cursor = v;
	else if (!strcmp(name, "last_pull"))
		st->last_pull = v;
	else if (!strcmp(name, "reload_cursor"))
		st->reload_cursor = v;
	else if (!strcmp(name, "queue_events"))
		st->queue_events = v > 0 ? v : 0;
	else if (!strcmp(name, "reload_table") && s != NULL)
		snprintf(st->reload_table, sizeof st->reload_table, "%s", s);
	else if (!strcmp(name, "log_id") && s != NULL)
		snprintf(st->log_id, sizeof st->log_id, "%s", s);
	else if (!strcmp(name, "down_last_error") && s != NULL)
		snprintf(st->last_error, sizeof st->last_error, "%s", s);
}

proto_err
inbox_state_read(sqlite3 *db, inbox_state *st, char *err, size_t errlen)
{
	sqlite3_stmt *q;
	proto_err rv;
	int rc;

	memset(st, 0, sizeof *st);
	/* One statement, so one read transaction: a consistent state. */
	if ((rv = db_prepare(db,
	         "SELECT name, value FROM _branchsync_meta WHERE name IN "
	         "('down_cursor', 'last_pull', 'reload_table', "
	         "'reload_cursor', 'log_id', 'down_last_error') UNION ALL "
	         "SELECT "
	         "'queue_events', (SELECT coalesce(max(seq), 0) FROM "
	         "_branchsync_log) - (SELECT coalesce(value, 0) FROM "
	         "_branchsync_meta WHERE name = 'acked_seq')",
	         &q, err, errlen))
	    != PROTO_OK)
		return rv;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		state_row(st, (const char *) sqlite3_column_text(q, 0), q);
	if (rc != SQLITE_DONE)
		rv = db_fail(
		    db, "could not read _branchsync_meta", err, errlen);
	sqlite3_finalize(q);
	return rv;
}

proto_err
inbox_reload_request(sqlite3 *db, const char *table, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = db_exec(db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	if ((rv = meta_set(db,
	         "INSERT OR REPLACE INTO _branchsync_meta(name, value) "
	         "VALUES ('reload_table', ?2), ('reload_cursor', ?1)",
	         0, table, err, errlen))
	        != PROTO_OK
	    || (rv = db_exec(db, "COMMIT", err, errlen)) != PROTO_OK)
		db_rollback(db);
	return rv;
}

proto_err
inbox_note_error(sqlite3 *db, const char *why, char *err, size_t errlen)
{
	return meta_set(db,
	    "INSERT OR REPLACE INTO _branchsync_meta(name, value) "
	    "VALUES ('down_last_error', ?2)",
	    0, why, err, errlen);
}
