/*
 * applymap.c: apply's shape-to-SQL compiler. A PUSH names each table's
 * shape (name, columns, key count); this maps a shape onto an
 * allow-listed target table (the [table] sections and the catalog), or
 * gives the reason its events are rejected, builds the upsert, delete
 * and conflict detection statements for it once per connection (the
 * shape cache), and runs them over unnest() of text array literals.
 */
#include "apply_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* A branch can push any number of table shapes: their lines are limited. */
static log_limit table_reject_log = LOG_LIMIT_DEFAULT;

/*
 * The branch-side sync flag (see the agent's triggers) is not part of the
 * replicated row: if the target table lacks it, it is dropped silently.
 */
#define SYNC_FLAG_COLUMN "is_synced"

static void
map_free(apply_map *m)
{
	if (m == NULL)
		return;
	free(m->name);
	free(m->sig);
	free(m->reason);
	free(m->upsert_sql);
	free(m->delete_sql);
	free(m->detect_sql);
	for (uint32_t i = 0; m->names != NULL && i < m->ncols; i++)
		free(m->names[i]);
	free(m->names);
	free(m->idx);
	free(m->send);
	free(m);
}

void
applymap_cache_clear(apply_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ncache; i++)
		map_free(ctx->cache[i]);
	ctx->ncache = 0;
}

/*
 * map_detect builds the conflict detection statement of a shape whose
 * table has a conflict policy. Parameters: $1 branch, $2.. the sent
 * columns as for the upsert, then seqs, keys (jsonb), local rows (jsonb),
 * log_id, the branch-side table name and the name of the branch column
 * (left out of the server row). It runs before the upsert and
 * sees the rows as they were. It records each incoming row whose key
 * exists and that meets cond: the upsert will not write it (type
 * data_mismatch). With dup, it also records those that do not meet cond
 * as type duplicate (insert_only: the same row again), born resolved
 * (keep_server, by "branchsync") since both versions are equal. It
 * returns the seq, id and type of each.
 */
static void
map_detect(apply_map *m, const catalog_table *t, const char *sel,
    const char *alias, const char *join, const char *cond, bool dup,
    uint32_t nsend)
{
	/* A till table: the local row gets its till (the server row's, by
	 * the join), so keep_local and merge write that till's row. */
	char *local = t->till >= 0
	    ? xasprintf("u.bs_row || jsonb_build_object($%" PRIu32
	                "::text, bs_t.%s)",
	        nsend + 8, t->cols[t->till].quoted)
	    : xstrdup("u.bs_row");

	m->detect_sql = xasprintf(
	    "INSERT INTO branchsync.conflict(branch_id, log_id, seq, tbl,"
	    " key, type, server_row, local_row, resolution, resolved_at,"
	    " resolved_by) SELECT $1::int, $%" PRIu32 ", u.bs_seq, $%" PRIu32
	    ", u.bs_key, CASE WHEN bs_c.mis THEN 'data_mismatch' ELSE"
	    " 'duplicate' END, to_jsonb(bs_t) - $%" PRIu32 "::text, %s,"
	    " CASE WHEN NOT bs_c.mis THEN 'keep_server' END,"
	    " CASE WHEN NOT bs_c.mis THEN now() END,"
	    " CASE WHEN NOT bs_c.mis THEN 'branchsync' END"
	    " FROM unnest(%s, $%" PRIu32 "::bigint[], $%" PRIu32
	    "::jsonb[], $%" PRIu32 "::jsonb[]) AS u(%sbs_seq, bs_key, bs_row)"
	    " JOIN %s bs_t ON bs_t.%s = $1::int%s CROSS JOIN LATERAL"
	    " (SELECT %s AS mis) bs_c%s RETURNING seq, id, type",
	    nsend + 5, nsend + 6, nsend + 7, local, sel, nsend + 2, nsend + 3,
	    nsend + 4, alias, t->quoted, t->cols[t->branch].quoted, join, cond,
	    dup ? "" : " WHERE bs_c.mis");
	free(local);
}

void
applymap_till_sql(const catalog_table *t, const char *prefix, char **col,
    char **val, char **cond)
{
	const catalog_col *c = t->till >= 0 ? &t->cols[t->till] : NULL;

	if (c == NULL) {
		*col = xstrdup("");
		*val = xstrdup("");
		*cond = xstrdup("");
		return;
	}
	*col = xasprintf(", %s", c->quoted);
	*val = xasprintf(", current_setting('branchsync.%s')::%s",
	    t->till_int ? "till_id" : "till", c->type);
	*cond = xasprintf(" AND %s%s = %s", prefix, c->quoted, *val + 2);
}

/* map_sql builds the upsert and delete statements of a checked shape. */
static void
map_sql(apply_map *m, const catalog_table *t, const proto_table *pt)
{
	strbuf ins = {0}, sel = {0}, key = {0}, upd = {0}, del = {0};
	strbuf alias = {0}, join = {0}, tv = {0}, uv = {0};
	hub_conflict_policy policy = t->cfg->policy;
	const char *lww = NULL;
	char *cond = NULL, *tcol, *tval, *tcond;
	uint32_t p = 2;

	applymap_till_sql(t, "bs_t.", &tcol, &tval, &tcond);
	strbuf_puts(&join, tcond);

	for (uint32_t i = 0; i < pt->ncols; i++) {
		const catalog_col *c;
		char tmp[24], u[24];
		if (!m->send[i])
			continue;
		c = &t->cols[m->idx[i]];
		snprintf(
		    tmp, sizeof tmp, "%s$%" PRIu32 "::", p > 2 ? ", " : "", p);
		snprintf(u, sizeof u, "u.c%" PRIu32, p);
		strbuf_puts(&alias, u + 2);
		strbuf_puts(&alias, ", ");
		p++;
		strbuf_puts(&ins, ", ");
		strbuf_puts(&ins, c->quoted);
		strbuf_puts(&sel, tmp);
		strbuf_puts(&sel, c->type);
		strbuf_puts(&sel, "[]");
		/* An incoming row loses only to a stored non-NULL newer one.
		 */
		if (policy == HUB_CONFLICT_LWW
		    && !strcmp(c->name, t->cfg->conflict_column)) {
			lww = c->quoted;
			cond = xasprintf("bs_t.%s IS NOT NULL AND NOT "
			                 "coalesce(bs_t.%s <= %s, false)",
			    c->quoted, c->quoted, u);
		}
		if (i < pt->nkey) {
			strbuf_puts(&key, i > 0 ? ", " : "");
			strbuf_puts(&key, c->quoted);
			strbuf_puts(&join, " AND bs_t.");
			strbuf_puts(&join, c->quoted);
			strbuf_puts(&join, " = ");
			strbuf_puts(&join, u);
			if (i + 1 == pt->nkey)
				strbuf_put(&del, sel.p, sel.len);
		} else {
			strbuf_puts(
			    &upd, upd.len > 0 ? ", " : " DO UPDATE SET ");
			strbuf_puts(&upd, c->quoted);
			strbuf_puts(&upd, " = EXCLUDED.");
			strbuf_puts(&upd, c->quoted);
			strbuf_puts(&tv, tv.len > 0 ? ", bs_t." : "bs_t.");
			strbuf_puts(&tv, c->quoted);
			strbuf_puts(&uv, uv.len > 0 ? ", " : "");
			strbuf_puts(&uv, u);
		}
	}
	/* Insert-only: every existing key is a conflict, equal or not. */
	if (policy == HUB_CONFLICT_INSERT_ONLY)
		cond = tv.len > 0
		    ? xasprintf("(%s) IS DISTINCT FROM (%s)", tv.p, uv.p)
		    : xstrdup("false");
	if (policy == HUB_CONFLICT_LWW && lww != NULL && upd.len > 0) {
		strbuf_puts(&upd, " WHERE bs_t.");
		strbuf_puts(&upd, lww);
		strbuf_puts(&upd, " IS NULL OR bs_t.");
		strbuf_puts(&upd, lww);
		strbuf_puts(&upd, " <= EXCLUDED.");
		strbuf_puts(&upd, lww);
	}
	if (policy == HUB_CONFLICT_INSERT_ONLY)
		strbuf_reset(&upd);
	if (cond != NULL)
		map_detect(m, t, sel.p, alias.p, join.p, cond,
		    policy == HUB_CONFLICT_INSERT_ONLY, m->nsend);
	/* Columns not sent get their defaults on insert, stay on update. */
	m->upsert_sql = xasprintf("INSERT INTO %s AS bs_t (%s%s%s) SELECT "
	                          "$1::int%s, * FROM unnest(%s) ON CONFLICT "
	                          "(%s%s, %s)%s",
	    t->quoted, t->cols[t->branch].quoted, tcol, ins.p, tval, sel.p,
	    t->cols[t->branch].quoted, tcol, key.p,
	    upd.len > 0 ? upd.p : " DO NOTHING");
	free(cond);
	strbuf_fini(&alias);
	strbuf_fini(&join);
	strbuf_fini(&tv);
	strbuf_fini(&uv);
	free(tcol);
	free(tval);
	free(tcond);
	applymap_till_sql(t, "", &tcol, &tval, &tcond);
	m->delete_sql = xasprintf("DELETE FROM %s WHERE %s = $1::int%s "
	                          "AND (%s) IN (SELECT * FROM unnest(%s))",
	    t->quoted, t->cols[t->branch].quoted, tcond, key.p, del.p);
	free(tcol);
	free(tval);
	free(tcond);
	strbuf_fini(&ins);
	strbuf_fini(&sel);
	strbuf_fini(&key);
	strbuf_fini(&upd);
	strbuf_fini(&del);
}

/*
 * map_dup returns why pushed column i names a column twice (its own name
 * or, after the renames, its target column), or NULL.
 */
static char *
map_dup(const apply_map *m, const proto_table *pt, uint32_t i)
{
	for (uint32_t j = 0; j < i; j++) {
		if (!strcmp(pt->cols[j], pt->cols[i]))
			return xasprintf(
			    "duplicate column \"%s\"", pt->cols[i]);
		if (!strcmp(m->names[j], m->names[i]))
			return xasprintf("columns \"%s\" and \"%s\" are both "
			                 "stored in column \"%s\"",
			    pt->cols[j], pt->cols[i], m->names[i]);
	}
	return NULL;
}

/* map_missing says that pushed column i has no target column. */
static char *
map_missing(const apply_map *m, const catalog_table *t, const proto_table *pt,
    uint32_t i)
{
	if (strcmp(m->names[i], pt->cols[i]) != 0)
		return xasprintf(
		    "column \"%s\" (for \"%s\") does not exist in "
		    "table %s",
		    m->names[i], pt->cols[i], t->quoted);
	return xasprintf("column \"%s\" does not exist in table %s",
	    pt->cols[i], t->quoted);
}

/*
 * map_columns decides per pushed column whether it is sent, and to which
 * target column (m->names, the renames already applied); NULL if ok.
 * Only the table's branch column is refused: the hub sets it.
 */
static char *
map_columns(apply_map *m, const catalog_table *t, const proto_table *pt)
{
	for (uint32_t i = 0; i < pt->ncols; i++) {
		int idx = catalog_col_find(t, m->names[i]);
		char *why;
		if ((why = map_dup(m, pt, i)) != NULL)
			return why;
		if (idx == t->branch)
			return xasprintf(
			    "column \"%s\" is set by the hub", m->names[i]);
		if (t->till >= 0 && idx == t->till)
			return xasprintf("column \"%s\" is set by the hub "
			                 "(till_column)",
			    m->names[i]);
		if (idx < 0 && i >= pt->nkey
		    && !strcmp(pt->cols[i], SYNC_FLAG_COLUMN))
			continue;
		if (idx < 0)
			return map_missing(m, t, pt, i);
		if ((i < pt->nkey) != t->cols[idx].in_pk)
			break;
		m->idx[i] = idx;
		m->send[i] = true;
		m->nsend++;
	}
	if (pt->nkey + 1 + (t->till >= 0) != t->npk || m->nsend < pt->nkey)
		return xasprintf("key columns do not match the primary key of "
		                 "table %s minus %s%s",
		    t->quoted, t->cols[t->branch].quoted,
		    t->till >= 0 ? " and the till_column" : "");
	return NULL;
}

/* map_lww checks that a last_writer_wins shape sends its column. */
static char *
map_lww(const apply_map *m, const catalog_table *t, const proto_table *pt)
{
	if (t->cfg->policy != HUB_CONFLICT_LWW)
		return NULL;
	for (uint32_t i = 0; i < pt->ncols; i++)
		if (m->send[i]
		    && !strcmp(
		        t->cols[m->idx[i]].name, t->cfg->conflict_column))
			return NULL;
	return xasprintf("conflict_column \"%s\" of table %s is not sent "
	                 "by the branch",
	    t->cfg->conflict_column, t->quoted);
}

/* map_new maps one pushed table shape; sig is its signature. */
static apply_map *
map_new(apply_ctx *ctx, const proto_table *pt, const char *sig)
{
	apply_map *m = xcalloc(1, sizeof *m);
	const catalog_table *t = catalog_find(ctx->cat, pt->name);
	const hub_table_config *cfg = hub_config_find(ctx->conf, pt->name);

	m->name = xstrdup(pt->name);
	m->sig = xstrdup(sig);
	m->ncols = pt->ncols;
	m->nkey = pt->nkey;
	m->send = xcalloc(pt->ncols, sizeof *m->send);
	m->names = xcalloc(pt->ncols, sizeof *m->names);
	m->idx = xcalloc(pt->ncols, sizeof *m->idx);
	for (uint32_t i = 0; i < pt->ncols; i++) {
		m->names[i] = xstrdup(hub_config_center_col(cfg, pt->cols[i]));
		m->idx[i] = -1;
	}
	/* A down table flows to branches only: a PUSH must not write it. */
	if (t == NULL || t->cfg->down)
		m->reason = xasprintf("table \"%s\" is not replicated by this "
		                      "hub",
		    pt->name);
	else if ((m->reason = map_columns(m, t, pt)) == NULL
	    && (m->reason = map_lww(m, t, pt)) == NULL) {
		m->t = t;
		map_sql(m, t, pt);
	}
	if (m->reason != NULL)
		log_limited(&table_reject_log, LOG_LVL_WARN,
		    "HUB-TABLE-REJECT", "table \"%s\": %s", pt->name,
		    m->reason);
	return m;
}

/* map_get returns the cached mapping of a pushed table, making it if new. */
static apply_map *
map_get(apply_ctx *ctx, const proto_table *pt)
{
	strbuf *sig = &ctx->scratch;
	char tmp[16];
	apply_map *m;

	strbuf_reset(sig);
	for (uint32_t i = 0; i < pt->ncols; i++) {
		strbuf_puts(sig, pt->cols[i]);
		strbuf_putc(sig, '\n');
	}
	snprintf(tmp, sizeof tmp, "%" PRIu32, pt->nkey);
	strbuf_puts(sig, tmp);
	for (size_t i = 0; i < ctx->ncache; i++) {
		m = ctx->cache[i];
		if (!strcmp(m->name, pt->name) && !strcmp(m->sig, sig->p))
			return m;
	}
	/* apply_push cleared a full cache before mapping this push. */
	assert(ctx->ncache < MAP_CACHE_MAX);
	m = map_new(ctx, pt, sig->p);
	ctx->cache[ctx->ncache++] = m;
	return m;
}

proto_err
applymap_tables_get(
    apply_ctx *ctx, const proto_push *p, char *err, size_t errlen)
{
	if (p->ntables > MAP_CACHE_MAX) {
		snprintf(err, errlen, "too many tables in batch");
		return PROTO_EPROTO;
	}
	if (ctx->ncache + p->ntables > MAP_CACHE_MAX)
		applymap_cache_clear(ctx);
	ARRAY_GROW(ctx->pmaps, ctx->pmaps_cap, (size_t) p->ntables);
	for (uint32_t t = 0; t < p->ntables; t++)
		ctx->pmaps[t] = map_get(ctx, &p->tables[t]);
	return PROTO_OK;
}

char *
applymap_event_reason(apply_ctx *ctx, const proto_push *p, uint32_t e)
{
	const proto_event *ev = &p->events[e];
	const apply_map *m = ctx->pmaps[ev->table];

	if (m->reason != NULL)
		return xstrdup(m->reason);
	/* SQLite allows NULL in a TEXT PRIMARY KEY; a key here may not. */
	for (uint32_t i = 0; i < m->nkey; i++)
		if (ev->vals[i].type == PROTO_NIL)
			return xasprintf("key column \"%s\" is NULL",
			    p->tables[ev->table].cols[i]);
	for (uint32_t i = 0; i < ev->nvals; i++)
		if (pgval_has_nul(&ev->vals[i]))
			return xasprintf("value of column \"%s\" contains a "
			                 "NUL byte",
			    p->tables[ev->table].cols[i]);
	return NULL;
}

void
applymap_arrays_open(apply_ctx *ctx, size_t k)
{
	if (k > ctx->narrays) {
		ctx->arrays = xrealloc(ctx->arrays, k * sizeof *ctx->arrays);
		memset(ctx->arrays + ctx->narrays, 0,
		    (k - ctx->narrays) * sizeof *ctx->arrays);
		ctx->narrays = k;
	}
	ARRAY_GROW(ctx->params, ctx->params_cap, k + 8);
	for (size_t j = 0; j < k; j++) {
		strbuf_reset(&ctx->arrays[j]);
		strbuf_putc(&ctx->arrays[j], '{');
	}
}

void
applymap_arrays_close(apply_ctx *ctx, size_t k, size_t first)
{
	for (size_t j = 0; j < k; j++) {
		strbuf_putc(&ctx->arrays[j], '}');
		ctx->params[first + j] = ctx->arrays[j].p;
	}
}

void
applymap_text_put(strbuf *a, const char *s)
{
	proto_value v = {.type = PROTO_STR, .len = (uint32_t) strlen(s)};

	v.u.s = s;
	pgval_array_elem(a, &v);
}

void
applymap_event_json(strbuf *b, const apply_map *m, const proto_event *ev,
    bool row, bool sent_only)
{
	bool first = true;

	strbuf_reset(b);
	strbuf_putc(b, row ? '{' : '[');
	for (uint32_t i = 0; i < (row ? ev->nvals : m->nkey); i++) {
		if (sent_only && !m->send[i])
			continue;
		if (!first)
			strbuf_putc(b, ',');
		first = false;
		if (row) {
			pgval_json_str(b, m->names[i], strlen(m->names[i]));
			strbuf_putc(b, ':');
		}
		pgval_json(b, &ev->vals[i]);
	}
	strbuf_putc(b, row ? '}' : ']');
}

/*
 * fill_conflict_arrays fills arrays k, k + 1, k + 2 with the seqs, keys
 * and rows of the events, for a detection statement.
 */
static void
fill_conflict_arrays(apply_ctx *ctx, const proto_push *p, uint32_t ti,
    const uint32_t *evs, size_t n, size_t k)
{
	const apply_map *m = ctx->pmaps[ti];
	strbuf *a = &ctx->arrays[k];

	for (size_t r = 0; r < n; r++) {
		const proto_event *ev = &p->events[evs[r]];
		proto_value seq = {.type = PROTO_INT, .u.i = ev->seq};
		for (int j = 0; r > 0 && j < 3; j++)
			strbuf_putc(&a[j], ',');
		pgval_array_elem(&a[0], &seq);
		applymap_event_json(&ctx->scratch, m, ev, false, false);
		applymap_text_put(&a[1], ctx->scratch.p);
		applymap_event_json(&ctx->scratch, m, ev, true, true);
		applymap_text_put(&a[2], ctx->scratch.p);
	}
}

/*
 * detect runs the conflict detection statement of table ti (arrays are
 * filled) and records a CONFLICT outcome per row it returns.
 */
static proto_err
detect(apply_ctx *ctx, const proto_push *p, uint32_t ti, size_t k,
    char *sqlstate, char *err, size_t errlen)
{
	const apply_map *m = ctx->pmaps[ti];
	bool lww = m->t->cfg->policy == HUB_CONFLICT_LWW;
	PGresult *res;
	proto_err rv;

	ctx->params[k + 1] = p->hdr.log_id;
	ctx->params[k + 2] = p->tables[ti].name;
	ctx->params[k + 3] = m->t->cols[m->t->branch].name;
	/* map_detect's till parameter, for a till table only. */
	ctx->params[k + 4]
	    = m->t->till >= 0 ? m->t->cols[m->t->till].name : NULL;
	rv = db_exec(ctx->conn, m->detect_sql, (int) k + 4 + (m->t->till >= 0),
	    ctx->params, PGRES_TUPLES_OK, &res, sqlstate, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	for (int i = 0; i < PQntuples(res); i++) {
		uint32_t e = apply_event_find(
		    p, strtoll(PQgetvalue(res, i, 0), NULL, 10));
		if (e >= p->nevents)
			continue;
		/* A duplicate is recorded only: the row is there, as sent. */
		if (strcmp(PQgetvalue(res, i, 2), "duplicate") == 0)
			log_debug("HUB-CONFLICT",
			    "conflict %s (duplicate): seq %s writes an "
			    "existing row with equal values",
			    PQgetvalue(res, i, 1), PQgetvalue(res, i, 0));
		else
			apply_conflict_add(ctx, e,
			    xasprintf("conflict %s (data_mismatch): %s",
			        PQgetvalue(res, i, 1),
			        lww ? "the server row is newer; kept"
			            : "a different row exists; server row "
			              "kept"));
	}
	PQclear(res);
	return PROTO_OK;
}

proto_err
applymap_rows_exec(apply_ctx *ctx, const proto_push *p, uint32_t ti,
    const uint32_t *evs, size_t n, bool del, char *sqlstate, char *err,
    size_t errlen)
{
	const apply_map *m = ctx->pmaps[ti];
	size_t k = del ? m->nkey : m->nsend;
	uint32_t ncols = del ? m->nkey : m->ncols;
	bool det = !del && m->detect_sql != NULL;
	proto_err rv;

	applymap_arrays_open(ctx, det ? k + 3 : k);
	for (size_t r = 0; r < n; r++) {
		const proto_event *ev = &p->events[evs[r]];
		size_t j = 0;
		for (uint32_t i = 0; i < ncols; i++) {
			strbuf *a;
			if (!m->send[i])
				continue;
			a = &ctx->arrays[j++];
			if (r > 0)
				strbuf_putc(a, ',');
			pgval_array_elem(a, &ev->vals[i]);
		}
	}
	if (det)
		fill_conflict_arrays(ctx, p, ti, evs, n, k);
	applymap_arrays_close(ctx, det ? k + 3 : k, 1);
	ctx->params[0] = ctx->branch;
	if (det
	    && (rv = detect(ctx, p, ti, k + 3, sqlstate, err, errlen))
	        != PROTO_OK)
		return rv;
	return db_exec(ctx->conn, del ? m->delete_sql : m->upsert_sql,
	    (int) k + 1, ctx->params, PGRES_COMMAND_OK, NULL, sqlstate, err,
	    errlen);
}
