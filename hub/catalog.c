/*
 * catalog.c: load and check the allow-listed target tables.
 *
 * Types are read with format_type(atttypid, NULL), i.e. without typmod:
 * "$2::varchar(20)[]" would silently truncate values as an explicit cast
 * does, while the assignment to the column still enforces the typmod and
 * raises an error for a value that does not fit.
 */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "util.h"

char *
catalog_quote(const char *name)
{
	size_t n = strlen(name), j = 0;
	char *q = xmalloc(2 * n + 3);

	q[j++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '"')
			q[j++] = '"';
		q[j++] = name[i];
	}
	q[j++] = '"';
	q[j] = '\0';
	return q;
}

const catalog_table *
catalog_find(const catalog *cat, const char *name)
{
	for (size_t i = 0; i < cat->ntables; i++)
		if (!strcmp(cat->tables[i].cfg->name, name))
			return &cat->tables[i];
	return NULL;
}

int
catalog_col_find(const catalog_table *t, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (!strcmp(t->cols[i].name, name))
			return (int) i;
	return -1;
}

/* fill_cols copies the columns of one query result into t. */
static void
fill_cols(catalog_table *t, PGresult *res)
{
	t->ncols = (size_t) PQntuples(res);
	t->cols = xcalloc(t->ncols, sizeof *t->cols);
	for (size_t i = 0; i < t->ncols; i++) {
		catalog_col *c = &t->cols[i];
		c->name = xstrdup(PQgetvalue(res, (int) i, 0));
		c->quoted = catalog_quote(c->name);
		c->type = xstrdup(PQgetvalue(res, (int) i, 1));
		c->in_pk = PQgetvalue(res, (int) i, 2)[0] == 't';
		c->pk_pos = atoi(PQgetvalue(res, (int) i, 3));
		if (c->in_pk)
			t->npk++;
	}
}

/* is_integer tells whether a format_type name is an integer type. */
static bool
is_integer(const char *type)
{
	return !strcmp(type, "smallint") || !strcmp(type, "integer")
	    || !strcmp(type, "bigint");
}

/* add_send appends column i to the sending order of t. */
static void
add_send(catalog_table *t, size_t i)
{
	t->send[t->nsend] = i;
	t->send_names[t->nsend++] = t->cols[i].name;
}

/*
 * layout_down fixes the columns a down table sends: key columns (PK minus
 * scope) in key order, then the rest, never the scope column, which only
 * says who receives the row and means nothing at the branch.
 */
static void
layout_down(catalog_table *t)
{
	t->send = xcalloc(t->ncols, sizeof *t->send);
	t->send_names = xcalloc(t->ncols, sizeof *t->send_names);
	for (int pos = 1; pos <= (int) t->npk; pos++)
		for (size_t i = 0; i < t->ncols; i++)
			if (t->cols[i].pk_pos == pos && (int) i != t->scope)
				add_send(t, i);
	t->nkey = t->nsend;
	for (size_t i = 0; i < t->ncols; i++)
		if (!t->cols[i].in_pk && (int) i != t->scope)
			add_send(t, i);
}

/* check_down verifies a down table and fixes its sending layout. */
static proto_err
check_down(catalog_table *t, char *err, size_t errlen)
{
	const hub_table_config *cfg = t->cfg;

	t->scope = -1;
	if (cfg->scope != NULL
	    && (t->scope = catalog_col_find(t, cfg->scope)) < 0) {
		snprintf(err, errlen,
		    "table \"%s.%s\" has no scope column \"%s\"", cfg->schema,
		    cfg->relname, cfg->scope);
		return PROTO_EINVAL;
	}
	if (t->scope >= 0 && !is_integer(t->cols[t->scope].type)) {
		snprintf(err, errlen,
		    "scope column \"%s\" of table \"%s.%s\" is %s, not an "
		    "integer type",
		    cfg->scope, cfg->schema, cfg->relname,
		    t->cols[t->scope].type);
		return PROTO_EINVAL;
	}
	layout_down(t);
	if (t->nkey == 0) {
		snprintf(err, errlen,
		    "table \"%s.%s\" needs a primary key (with a column "
		    "besides the scope column) to be sent to branches",
		    cfg->schema, cfg->relname);
		return PROTO_EINVAL;
	}
	return PROTO_OK;
}

/*
 * check_till finds an up table's till_column: a primary key column of an
 * integer type (it receives the till's id) or a text type (its code).
 */
static proto_err
check_till(catalog_table *t, char *err, size_t errlen)
{
	const hub_table_config *cfg = t->cfg;
	const char *type;
	int c;

	if (cfg->till_column == NULL)
		return PROTO_OK;
	if ((c = catalog_col_find(t, cfg->till_column)) < 0
	    || !t->cols[c].in_pk) {
		snprintf(err, errlen,
		    "till_column \"%s\" of table \"%s.%s\" must be a "
		    "column of its primary key",
		    cfg->till_column, cfg->schema, cfg->relname);
		return PROTO_EINVAL;
	}
	type = t->cols[c].type;
	t->till_int = !strcmp(type, "integer") || !strcmp(type, "bigint")
	    || !strcmp(type, "smallint");
	if (!t->till_int && strcmp(type, "text") != 0
	    && strcmp(type, "character varying") != 0) {
		snprintf(err, errlen,
		    "till_column \"%s\" of table \"%s.%s\" must be of an "
		    "integer or text type, not %s",
		    cfg->till_column, cfg->schema, cfg->relname, type);
		return PROTO_EINVAL;
	}
	t->till = c;
	return PROTO_OK;
}

/* check_table verifies the shape the apply (or the feed) relies on. */
static proto_err
check_table(catalog_table *t, char *err, size_t errlen)
{
	const hub_table_config *cfg = t->cfg;
	int b;

	if (t->ncols == 0) {
		snprintf(err, errlen,
		    "table \"%s.%s\" (for \"%s\") does not "
		    "exist",
		    cfg->schema, cfg->relname, cfg->name);
		return PROTO_EINVAL;
	}
	if (cfg->down)
		return check_down(t, err, errlen);
	if ((b = catalog_col_find(t, cfg->branch_column)) < 0) {
		snprintf(err, errlen,
		    "table \"%s.%s\" has no branch column \"%s\"", cfg->schema,
		    cfg->relname, cfg->branch_column);
		return PROTO_EINVAL;
	}
	if (!is_integer(t->cols[b].type)) {
		snprintf(err, errlen,
		    "branch column \"%s\" of table \"%s.%s\" is %s, not an "
		    "integer type",
		    cfg->branch_column, cfg->schema, cfg->relname,
		    t->cols[b].type);
		return PROTO_EINVAL;
	}
	if (!t->cols[b].in_pk
	    || t->npk < 2 + (cfg->till_column != NULL ? 1u : 0u)) {
		snprintf(err, errlen,
		    "primary key of table \"%s.%s\" must be "
		    "(%s, %s<local key columns>)",
		    cfg->schema, cfg->relname, t->cols[b].quoted,
		    cfg->till_column != NULL ? "<till_column>, " : "");
		return PROTO_EINVAL;
	}
	t->branch = b;
	if (check_till(t, err, errlen) != PROTO_OK)
		return PROTO_EINVAL;
	if (cfg->policy == HUB_CONFLICT_LWW
	    && catalog_col_find(t, cfg->conflict_column) < 0) {
		snprintf(err, errlen,
		    "table \"%s.%s\" has no conflict_column \"%s\"",
		    cfg->schema, cfg->relname, cfg->conflict_column);
		return PROTO_EINVAL;
	}
	return PROTO_OK;
}

/* load_table reads one target table's columns and primary key. */
static proto_err
load_table(PGconn *conn, catalog_table *t, char *err, size_t errlen)
{
	const char *params[2] = {t->cfg->schema, t->cfg->relname};
	PGresult *res;
	proto_err rv;
	char *qs, *qr;

	rv = db_exec(conn,
	    "SELECT a.attname, format_type(a.atttypid, NULL),"
	    " a.attnum = ANY (coalesce((SELECT i.indkey::int2[]"
	    "  FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),"
	    "  '{}')),"
	    /* int2vector subscripts start at 0: make the position 1-based. */
	    " coalesce((SELECT array_position(i.indkey::int2[], a.attnum)"
	    "  - array_lower(i.indkey::int2[], 1) + 1"
	    "  FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),"
	    "  0)"
	    " FROM pg_class c"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " JOIN pg_attribute a ON a.attrelid = c.oid"
	    " WHERE n.nspname = $1 AND c.relname = $2"
	    " AND c.relkind IN ('r', 'p') AND a.attnum > 0"
	    " AND NOT a.attisdropped ORDER BY a.attnum",
	    2, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	fill_cols(t, res);
	PQclear(res);
	qs = catalog_quote(t->cfg->schema);
	qr = catalog_quote(t->cfg->relname);
	t->quoted = xasprintf("%s.%s", qs, qr);
	free(qs);
	free(qr);
	return check_table(t, err, errlen);
}

/* table_by_target finds the up table whose target is schema.relname. */
static int
table_by_target(const catalog *cat, const char *schema, const char *relname)
{
	for (size_t i = 0; i < cat->ntables; i++) {
		const hub_table_config *c = cat->tables[i].cfg;
		if (!c->down && cat->tables[i].ncols > 0
		    && !strcmp(c->schema, schema)
		    && !strcmp(c->relname, relname))
			return (int) i;
	}
	return -1;
}

/*
 * load_fks reads the foreign keys of up table t that reference up tables
 * of the catalog, one result row per column pair in key order.
 */
static proto_err
load_fks(
    PGconn *conn, catalog *cat, catalog_table *t, char *err, size_t errlen)
{
	const char *params[2] = {t->cfg->schema, t->cfg->relname};
	PGresult *res;
	proto_err rv;
	int n;

	rv = db_exec(conn,
	    "SELECT k.oid, pn.nspname, pc.relname, ca.attname, pa.attname"
	    " FROM pg_constraint k"
	    " JOIN pg_class c ON c.oid = k.conrelid"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " JOIN pg_class pc ON pc.oid = k.confrelid"
	    " JOIN pg_namespace pn ON pn.oid = pc.relnamespace"
	    " CROSS JOIN LATERAL unnest(k.conkey, k.confkey)"
	    "  WITH ORDINALITY AS u(ck, pk, i)"
	    " JOIN pg_attribute ca ON ca.attrelid = k.conrelid"
	    "  AND ca.attnum = u.ck"
	    " JOIN pg_attribute pa ON pa.attrelid = k.confrelid"
	    "  AND pa.attnum = u.pk"
	    " WHERE k.contype = 'f' AND n.nspname = $1 AND c.relname = $2"
	    " ORDER BY k.oid, u.i",
	    2, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	n = PQntuples(res);
	for (int r = 0; r < n;) {
		const char *oid = PQgetvalue(res, r, 0);
		int parent = table_by_target(
		    cat, PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
		int end = r;
		catalog_fk fk = {0};
		bool ok = parent >= 0;
		while (end < n && !strcmp(PQgetvalue(res, end, 0), oid))
			end++;
		fk.cols = xcalloc((size_t) (end - r), sizeof *fk.cols);
		fk.pcols = xcalloc((size_t) (end - r), sizeof *fk.pcols);
		for (int i = r; i < end && ok; i++) {
			int cc = catalog_col_find(t, PQgetvalue(res, i, 3));
			int pcol = catalog_col_find(
			    &cat->tables[parent], PQgetvalue(res, i, 4));
			ok = cc >= 0 && pcol >= 0;
			fk.cols[fk.n] = (size_t) cc;
			fk.pcols[fk.n++] = (size_t) pcol;
		}
		if (ok) {
			fk.parent = (size_t) parent;
			t->fks
			    = xrealloc(t->fks, (t->nfks + 1) * sizeof *t->fks);
			t->fks[t->nfks++] = fk;
		} else {
			free(fk.cols);
			free(fk.pcols);
		}
		r = end;
	}
	PQclear(res);
	return PROTO_OK;
}

proto_err
catalog_load(PGconn *conn, const hub_config *conf, bool down_only,
    catalog **out, char *err, size_t errlen)
{
	catalog *cat = xcalloc(1, sizeof *cat);
	proto_err rv = PROTO_OK;

	*out = NULL;
	cat->tables = xcalloc(conf->ntables, sizeof *cat->tables);
	cat->ntables = conf->ntables;
	for (size_t i = 0; i < conf->ntables && rv == PROTO_OK; i++) {
		cat->tables[i].cfg = &conf->tables[i];
		cat->tables[i].scope = -1;
		cat->tables[i].till = -1;
		if (!down_only || conf->tables[i].down)
			rv = load_table(conn, &cat->tables[i], err, errlen);
	}
	for (size_t i = 0; i < cat->ntables && rv == PROTO_OK && !down_only;
	     i++)
		if (!cat->tables[i].cfg->down)
			rv = load_fks(conn, cat, &cat->tables[i], err, errlen);
	if (rv != PROTO_OK) {
		catalog_free(cat);
		return rv;
	}
	*out = cat;
	return PROTO_OK;
}

void
catalog_free(catalog *cat)
{
	if (cat == NULL)
		return;
	for (size_t i = 0; i < cat->ntables; i++) {
		catalog_table *t = &cat->tables[i];
		for (size_t j = 0; j < t->ncols; j++) {
			free(t->cols[j].name);
			free(t->cols[j].quoted);
			free(t->cols[j].type);
		}
		free(t->cols);
		free(t->quoted);
		free(t->send);
		free(t->send_names);
		for (size_t j = 0; j < t->nfks; j++) {
			free(t->fks[j].cols);
			free(t->fks[j].pcols);
		}
		free(t->fks);
	}
	free(cat->tables);
	free(cat);
}
