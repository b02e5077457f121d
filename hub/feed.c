/*
 * feed.c: install the change-feed triggers of the down tables and record
 * the rows that existed before (the backfill), as part of "migrate".
 *
 * Identifiers come only from the config and the catalog and are quoted;
 * the trigger arguments are string literals escaped by libpq; the backfill
 * passes names as parameters where SQL allows it.
 */
#include "feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "pgval.h"
#include "util.h"

/* put_literal appends s as an SQL string literal (PQescapeLiteral). */
static bool
put_literal(PGconn *conn, strbuf *b, const char *s)
{
	char *lit = PQescapeLiteral(conn, s, strlen(s));

	if (lit == NULL)
		return false;
	strbuf_puts(b, lit);
	PQfreemem(lit);
	return true;
}

/*
 * trigger_sql builds the CREATE OR REPLACE TRIGGER of down table t. The
 * arguments are what branchsync.feed() needs: branch-side name, scope
 * column ('' = all) and the key columns in key order.
 */
static bool
trigger_sql(PGconn *conn, const catalog_table *t, strbuf *b)
{
	bool ok;

	strbuf_puts(b,
	    "CREATE OR REPLACE TRIGGER branchsync_feed AFTER INSERT OR "
	    "UPDATE OR DELETE ON ");
	strbuf_puts(b, t->quoted);
	strbuf_puts(b, " FOR EACH ROW EXECUTE FUNCTION branchsync.feed(");
	ok = put_literal(conn, b, t->cfg->name);
	strbuf_puts(b, ", ");
	ok = ok
	    && put_literal(
	        conn, b, t->scope >= 0 ? t->cols[t->scope].name : "");
	for (size_t i = 0; i < t->nkey && ok; i++) {
		strbuf_puts(b, ", ");
		ok = put_literal(conn, b, t->send_names[i]);
	}
	strbuf_puts(b, ")");
	return ok;
}

/* put_keys appends "t.k1, t.k2, ..." for the key columns of t. */
static void
put_keys(const catalog_table *t, strbuf *b)
{
	for (size_t i = 0; i < t->nkey; i++) {
		strbuf_puts(b, i ? ", t." : "t.");
		strbuf_puts(b, t->cols[t->send[i]].quoted);
	}
}

/*
 * backfill_sql builds the INSERT recording existing rows: $1 is the
 * branch-side name, $2 the scope column name. ON CONFLICT DO NOTHING
 * keeps the records the trigger already wrote. ORDER BY the key so a new
 * branch receives (and inserts) the rows in key order.
 */
static void
backfill_sql(const catalog_table *t, strbuf *b)
{
	strbuf_puts(b,
	    "INSERT INTO branchsync.change(scope, tbl, key, op, row)"
	    " SELECT ");
	if (t->scope >= 0) {
		strbuf_puts(b, "coalesce(t.");
		strbuf_puts(b, t->cols[t->scope].quoted);
		strbuf_puts(b, ", 0)");
	} else
		strbuf_puts(b, "0");
	strbuf_puts(b, ", $1, jsonb_build_array(");
	put_keys(t, b);
	strbuf_puts(b, "), 1, to_jsonb(t) - $2 FROM ");
	strbuf_puts(b, t->quoted);
	strbuf_puts(b, " t ORDER BY ");
	put_keys(t, b);
	strbuf_puts(b, " ON CONFLICT DO NOTHING");
}

/* install_one installs the trigger of t and backfills its rows. */
static proto_err
install_one(PGconn *conn, const catalog_table *t, int64_t *backfilled,
    char *err, size_t errlen)
{
	const char *params[2] = {t->cfg->name, ""};
	strbuf b = {0};
	PGresult *res;
	proto_err rv;

	if (t->scope >= 0)
		params[1] = t->cols[t->scope].name;
	if (!trigger_sql(conn, t, &b)) {
		rv = db_result_error(NULL, conn, err, errlen);
		goto done;
	}
	if ((rv = db_exec(conn, b.p, 0, NULL, PGRES_COMMAND_OK, NULL, NULL,
	         err, errlen))
	    != PROTO_OK)
		goto done;
	strbuf_reset(&b);
	backfill_sql(t, &b);
	if ((rv = db_exec(conn, b.p, 2, params, PGRES_COMMAND_OK, &res, NULL,
	         err, errlen))
	    != PROTO_OK)
		goto done;
	*backfilled += strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
done:
	strbuf_fini(&b);
	return rv;
}

/* is_down tells whether schema.relname is a down table of cat. */
static bool
is_down(const catalog *cat, const char *schema, const char *relname)
{
	for (size_t i = 0; i < cat->ntables; i++) {
		const hub_table_config *c = cat->tables[i].cfg;
		if (c->down && !strcmp(c->schema, schema)
		    && !strcmp(c->relname, relname))
			return true;
	}
	return false;
}

/* drop_stale drops branchsync_feed triggers of tables no longer down. */
static proto_err
drop_stale(
    PGconn *conn, const catalog *cat, int *dropped, char *err, size_t errlen)
{
	PGresult *res;
	proto_err rv;

	rv = db_exec(conn,
	    "SELECT n.nspname, c.relname FROM pg_trigger g"
	    " JOIN pg_class c ON c.oid = g.tgrelid"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE g.tgname = 'branchsync_feed' AND NOT g.tgisinternal",
	    0, NULL, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	for (int i = 0; rv == PROTO_OK && i < PQntuples(res); i++) {
		const char *schema = PQgetvalue(res, i, 0);
		const char *rel = PQgetvalue(res, i, 1);
		char *qs, *qr, *sql;
		if (is_down(cat, schema, rel))
			continue;
		qs = catalog_quote(schema);
		qr = catalog_quote(rel);
		sql = xasprintf(
		    "DROP TRIGGER branchsync_feed ON %s.%s", qs, qr);
		rv = db_exec(conn, sql, 0, NULL, PGRES_COMMAND_OK, NULL, NULL,
		    err, errlen);
		if (rv == PROTO_OK) {
			log_info("HUB-FEED-DROP",
			    "dropped the feed trigger of \"%s.%s\"", schema,
			    rel);
			(*dropped)++;
		}
		free(sql);
		free(qr);
		free(qs);
	}
	PQclear(res);
	return rv;
}

proto_err
feed_install(PGconn *conn, const catalog *cat, int64_t *backfilled,
    int *dropped, char *err, size_t errlen)
{
	proto_err rv;

	*backfilled = 0;
	*dropped = 0;
	/* Same lock as the migrations: concurrent "migrate" runs queue. */
	if ((rv = db_exec(conn,
	         "BEGIN; SELECT pg_advisory_xact_lock(" DB_MIGRATE_LOCK "),"
	         " pg_advisory_xact_lock_shared(" DB_FEED_LOCK ")",
	         0, NULL, PGRES_TUPLES_OK, NULL, NULL, err, errlen))
	    != PROTO_OK)
		goto fail;
	for (size_t i = 0; i < cat->ntables; i++) {
		if (!cat->tables[i].cfg->down)
			continue;
		rv = install_one(
		    conn, &cat->tables[i], backfilled, err, errlen);
		if (rv != PROTO_OK)
			goto fail;
	}
	if ((rv = drop_stale(conn, cat, dropped, err, errlen)) != PROTO_OK)
		goto fail;
	/*
	 * Branches pull the backfilled rows now rather than at their timer.
	 * ANALYZE: with the statistics of the empty table the planner reads
	 * a whole scope and sorts it for every page (measured: 3x slower for
	 * 50,000 rows) instead of walking the (scope, id) index.
	 */
	if (*backfilled > 0
	    && (rv = db_exec(conn,
	            "SELECT pg_notify('branchsync_change', '0');"
	            " ANALYZE branchsync.change",
	            0, NULL, PGRES_COMMAND_OK, NULL, NULL, err, errlen))
	        != PROTO_OK)
		goto fail;
	return db_exec(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, NULL,
	    err, errlen);
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return rv;
}
