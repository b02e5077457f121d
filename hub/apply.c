/*
 * apply.c: the PUSH apply algorithm.
 *
 *   1. Check that seqs strictly increase (else PROTO_EPROTO).
 *   2. Map each pushed table shape (name, columns, nkey) to an allow-listed
 *      target table: cached per connection, with the SQL built for it.
 *   3. BEGIN; create and lock the (branch, log_id) watermark row. Events at
 *      or below it were applied before: counted as duplicates, except
 *      those with an open or retry reject in branchsync.reject (an
 *      operator's retry, or a resend after a lost ACK): they are applied
 *      again, on the slow path, and their reject is resolved or updated.
 *   4. Reject up front events of tables or columns the hub does not allow,
 *      events with a NULL key value (SQLite allows NULL in a TEXT PRIMARY
 *      KEY; the target's primary key does not) and str values holding NUL
 *      (text parameters cannot carry them).
 *   5. Collapse the rest to the last event per (table, key): final state
 *      wins, and INSERT ... ON CONFLICT DO UPDATE may not touch the same
 *      row twice in one statement anyway.
 *   6. Fast path: per table in order of first appearance one upsert of all
 *      its rows from unnest() of text array literals, then per table in
 *      reverse order one delete. Deferred FKs are checked at COMMIT. A
 *      table with conflict = insert_only or last_writer_wins first runs
 *      one more statement that records in branchsync.conflict the rows
 *      the upsert will not write (different content, or older).
 *   7. On a data error (not a lost connection, not a serialization or
 *      resource error), roll back and redo the batch in a new transaction
 *      with constraints IMMEDIATE, one event per SAVEPOINT; failing events
 *      go to branchsync.reject and come back as REJECTED outcomes; one that
 *      fails a foreign key whose parent row was rejected says so; one that
 *      violates a unique constraint besides the key is a conflict. An
 *      upsert sent "ahead" (its values were read after a later write of
 *      the row, whose event is pending) that fails is skipped: the later
 *      event brings the same row where the rows it refers to exist.
 *   8. Advance the watermark to the last event, add to branch_status,
 *      COMMIT.
 */
#include "apply.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "pgval.h"
#include "util.h"

/* Cached table shapes per connection; a hostile agent cannot grow it. */
#define MAP_CACHE_MAX 256

/*
 * The branch-side sync flag (see the agent's triggers) is not part of the
 * replicated row: if the target table lacks it, it is dropped silently.
 */
#define SYNC_FLAG_COLUMN "is_synced"

/* Grow array p (element count cap) to hold at least need elements. */
#define GROW(p, cap, need)                                                    \
	do {                                                                  \
		if ((need) > (cap)) {                                         \
			size_t n_ = (cap) ? (cap) : 16;                       \
			while (n_ < (need))                                   \
				n_ *= 2;                                      \
			(p) = xrealloc((p), n_ * sizeof *(p));                \
			(cap) = n_;                                           \
		}                                                             \
	} while (0)

/* A pushed table shape mapped to a target table. */
typedef struct {
	char *name;       /* branch-side table name */
	char *sig;        /* column names and nkey, one per line: the shape */
	char *reason;     /* non-NULL: every event of this shape is rejected */
	char *upsert_sql; /* INSERT ... SELECT FROM unnest ... ON CONFLICT */
	char *delete_sql; /* DELETE ... WHERE (key) IN (SELECT unnest ...) */
	char *detect_sql; /* conflict policies: records the rows not written */
	const catalog_table *t; /* the target (NULL if reason is set) */
	char **names;   /* per pushed column: its target column's name, after
	                   the table's "columns" renames (rejects, conflicts) */
	int *idx;       /* per pushed column: index in t->cols, -1 if unsent */
	bool *send;     /* per pushed column: passed to PostgreSQL */
	uint32_t ncols; /* pushed columns */
	uint32_t nsend; /* columns with send set */
	uint32_t nkey;  /* key columns: the first nkey */
} apply_map;

/* One (table, key) after collapsing. */
typedef struct {
	uint32_t table; /* index into the push's tables */
	uint32_t ev;    /* index of the key's last event */
} apply_slot;

/* One rejected event, or one event recorded as a conflict. */
typedef struct {
	uint32_t ev;  /* index into the push's events */
	char *reason; /* why (owned) */
} apply_reject;

struct apply_ctx {
	const hub_config *conf;   /* borrowed */
	const catalog *cat;       /* borrowed */
	PGconn *conn;             /* borrowed; NULL while disconnected */
	apply_map **cache;        /* shapes seen on this connection */
	size_t ncache;            /* entries in cache */
	apply_map **pmaps;        /* per table of the current push */
	size_t pmaps_cap;         /* allocated entries of pmaps */
	apply_slot *slots;        /* collapsed keys, first appearance order */
	size_t nslots, slots_cap; /* used, allocated */
	uint32_t *ht;             /* open addressing: slot index + 1 */
	size_t ht_cap;            /* power of two */
	uint32_t *evs;            /* events of one statement */
	size_t evs_cap;           /* allocated entries of evs */
	uint32_t *torder;         /* tables in order of first appearance */
	size_t ntorder, torder_cap;   /* used, allocated */
	apply_reject *rejects;        /* rejected events of the current push */
	size_t nrejects, rejects_cap; /* used, allocated */
	apply_reject *confl;          /* events recorded as conflicts */
	size_t nconfl, confl_cap;     /* used, allocated */
	uint32_t *redo;               /* events <= watermark applied again */
	size_t nredo, redo_cap;       /* used, allocated */
	int64_t *wlist;               /* WELCOME's retry and discard seqs */
	size_t wlist_cap;             /* allocated entries of wlist */
	proto_outcome *outcomes;      /* the ACK's outcomes */
	size_t outcomes_cap;          /* allocated entries of outcomes */
	pgval_buf *arrays;            /* one array literal per parameter */
	size_t narrays;               /* allocated entries of arrays */
	const char **params;          /* parameter pointers */
	size_t params_cap;            /* allocated entries of params */
	pgval_buf scratch;            /* signatures, JSON */
	char branch[16];              /* branch id as text ($1) */
	char till_id[16];             /* till id as text, "0" for none */
	char till[72];                /* till code, "" for none */
	int64_t wm_seq, wm_tag;       /* watermark read under lock */
	uint32_t first_new;           /* first event above the watermark */
	int64_t applied;              /* events applied by the last commit */
	bool slow;                    /* running the slow path */
};

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

static void
cache_clear(apply_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ncache; i++)
		map_free(ctx->cache[i]);
	ctx->ncache = 0;
}

apply_ctx *
apply_new(const hub_config *conf, const catalog *cat)
{
	apply_ctx *ctx = xcalloc(1, sizeof *ctx);

	ctx->conf = conf;
	ctx->cat = cat;
	ctx->cache = xcalloc(MAP_CACHE_MAX, sizeof *ctx->cache);
	apply_set_till(ctx, 0, NULL);
	return ctx;
}

static void
rejects_clear(apply_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nrejects; i++)
		free(ctx->rejects[i].reason);
	ctx->nrejects = 0;
}

/* confl_truncate forgets the conflicts recorded after the first n. */
static void
confl_truncate(apply_ctx *ctx, size_t n)
{
	for (size_t i = n; i < ctx->nconfl; i++)
		free(ctx->confl[i].reason);
	ctx->nconfl = n;
}

void
apply_free(apply_ctx *ctx)
{
	if (ctx == NULL)
		return;
	cache_clear(ctx);
	rejects_clear(ctx);
	confl_truncate(ctx, 0);
	for (size_t i = 0; i < ctx->narrays; i++)
		pgval_fini(&ctx->arrays[i]);
	pgval_fini(&ctx->scratch);
	free(ctx->cache);
	free(ctx->pmaps);
	free(ctx->slots);
	free(ctx->ht);
	free(ctx->evs);
	free(ctx->torder);
	free(ctx->rejects);
	free(ctx->confl);
	free(ctx->redo);
	free(ctx->wlist);
	free(ctx->outcomes);
	free(ctx->arrays);
	free(ctx->params);
	free(ctx);
}

void
apply_set_conn(apply_ctx *ctx, PGconn *conn)
{
	/* Nothing server-side is cached yet, but keep the rule simple. */
	cache_clear(ctx);
	ctx->conn = conn;
}

/* ---- table shapes ---------------------------------------------------- */

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

/*
 * till_sql returns the SQL pieces of a table's till_column (all "" if it
 * has none): ", col" after branch_id in a column list, ", value" after
 * $1 in a select list, and " AND col = value" with the column qualified
 * by prefix. The value is read from the transaction's setting (see
 * set_till), so statements keep their parameters and stay cached per
 * shape whatever till sends.
 */
static void
till_sql(const catalog_table *t, const char *prefix, char **col, char **val,
    char **cond)
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
	pgval_buf ins = {0}, sel = {0}, key = {0}, upd = {0}, del = {0};
	pgval_buf alias = {0}, join = {0}, tv = {0}, uv = {0};
	hub_conflict_policy policy = t->cfg->policy;
	const char *lww = NULL;
	char *cond = NULL, *tcol, *tval, *tcond;
	uint32_t p = 2;

	till_sql(t, "bs_t.", &tcol, &tval, &tcond);
	pgval_puts(&join, tcond);

	for (uint32_t i = 0; i < pt->ncols; i++) {
		const catalog_col *c;
		char tmp[24], u[24];
		if (!m->send[i])
			continue;
		c = &t->cols[m->idx[i]];
		snprintf(
		    tmp, sizeof tmp, "%s$%" PRIu32 "::", p > 2 ? ", " : "", p);
		snprintf(u, sizeof u, "u.c%" PRIu32, p);
		pgval_puts(&alias, u + 2);
		pgval_puts(&alias, ", ");
		p++;
		pgval_puts(&ins, ", ");
		pgval_puts(&ins, c->quoted);
		pgval_puts(&sel, tmp);
		pgval_puts(&sel, c->type);
		pgval_puts(&sel, "[]");
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
			pgval_puts(&key, i > 0 ? ", " : "");
			pgval_puts(&key, c->quoted);
			pgval_puts(&join, " AND bs_t.");
			pgval_puts(&join, c->quoted);
			pgval_puts(&join, " = ");
			pgval_puts(&join, u);
			if (i + 1 == pt->nkey)
				pgval_put(&del, sel.p, sel.len);
		} else {
			pgval_puts(
			    &upd, upd.len > 0 ? ", " : " DO UPDATE SET ");
			pgval_puts(&upd, c->quoted);
			pgval_puts(&upd, " = EXCLUDED.");
			pgval_puts(&upd, c->quoted);
			pgval_puts(&tv, tv.len > 0 ? ", bs_t." : "bs_t.");
			pgval_puts(&tv, c->quoted);
			pgval_puts(&uv, uv.len > 0 ? ", " : "");
			pgval_puts(&uv, u);
		}
	}
	/* Insert-only: every existing key is a conflict, equal or not. */
	if (policy == HUB_CONFLICT_INSERT_ONLY)
		cond = tv.len > 0
		    ? xasprintf("(%s) IS DISTINCT FROM (%s)", tv.p, uv.p)
		    : xstrdup("false");
	if (policy == HUB_CONFLICT_LWW && lww != NULL && upd.len > 0) {
		pgval_puts(&upd, " WHERE bs_t.");
		pgval_puts(&upd, lww);
		pgval_puts(&upd, " IS NULL OR bs_t.");
		pgval_puts(&upd, lww);
		pgval_puts(&upd, " <= EXCLUDED.");
		pgval_puts(&upd, lww);
	}
	if (policy == HUB_CONFLICT_INSERT_ONLY)
		pgval_reset(&upd);
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
	pgval_fini(&alias);
	pgval_fini(&join);
	pgval_fini(&tv);
	pgval_fini(&uv);
	free(tcol);
	free(tval);
	free(tcond);
	till_sql(t, "", &tcol, &tval, &tcond);
	m->delete_sql = xasprintf("DELETE FROM %s WHERE %s = $1::int%s "
	                          "AND (%s) IN (SELECT * FROM unnest(%s))",
	    t->quoted, t->cols[t->branch].quoted, tcond, key.p, del.p);
	free(tcol);
	free(tval);
	free(tcond);
	pgval_fini(&ins);
	pgval_fini(&sel);
	pgval_fini(&key);
	pgval_fini(&upd);
	pgval_fini(&del);
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
	const hub_table_cfg *cfg = hub_config_find(ctx->conf, pt->name);

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
		log_warn("HUB-TABLE-REJECT", "table \"%s\": %s", pt->name,
		    m->reason);
	return m;
}

/* map_get returns the cached mapping of a pushed table, making it if new. */
static apply_map *
map_get(apply_ctx *ctx, const proto_table *pt)
{
	pgval_buf *sig = &ctx->scratch;
	char tmp[16];
	apply_map *m;

	pgval_reset(sig);
	for (uint32_t i = 0; i < pt->ncols; i++) {
		pgval_puts(sig, pt->cols[i]);
		pgval_putc(sig, '\n');
	}
	snprintf(tmp, sizeof tmp, "%" PRIu32, pt->nkey);
	pgval_puts(sig, tmp);
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

/* ---- collapsing ------------------------------------------------------ */

/* hash_key hashes a table index and key values (FNV-1a). */
static uint64_t
hash_key(uint32_t table, const proto_value *v, uint32_t n)
{
	uint64_t h = 14695981039346656037ULL ^ table;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p;
		size_t len;
		h = (h ^ (uint64_t) v[i].type) * 1099511628211ULL;
		switch (v[i].type) {
		case PROTO_INT:
			p = (const uint8_t *) &v[i].u.i, len = sizeof v[i].u.i;
			break;
		case PROTO_FLOAT:
			p = (const uint8_t *) &v[i].u.f, len = sizeof v[i].u.f;
			break;
		case PROTO_BOOL:
			p = (const uint8_t *) &v[i].u.b, len = sizeof v[i].u.b;
			break;
		case PROTO_STR:
		case PROTO_BIN:
			p = v[i].u.p, len = v[i].len;
			break;
		default:
			p = NULL, len = 0;
		}
		for (size_t j = 0; j < len; j++)
			h = (h ^ p[j]) * 1099511628211ULL;
	}
	return h;
}

static bool
keys_eq(const proto_value *a, const proto_value *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (!proto_value_eq(&a[i], &b[i]))
			return false;
	return true;
}

/* collapse_one records event e as the latest for its (table, key). */
static void
collapse_one(apply_ctx *ctx, const proto_push *p, uint32_t e)
{
	const proto_event *ev = &p->events[e];
	uint32_t nkey = p->tables[ev->table].nkey;
	size_t mask = ctx->ht_cap - 1;
	size_t h = (size_t) hash_key(ev->table, ev->vals, nkey) & mask;

	while (ctx->ht[h] != 0) {
		apply_slot *s = &ctx->slots[ctx->ht[h] - 1];
		const proto_event *old = &p->events[s->ev];
		if (s->table == ev->table
		    && keys_eq(old->vals, ev->vals, nkey)) {
			s->ev = e;
			return;
		}
		h = (h + 1) & mask;
	}
	GROW(ctx->slots, ctx->slots_cap, ctx->nslots + 1);
	ctx->slots[ctx->nslots] = (apply_slot) {ev->table, e};
	ctx->ht[h] = (uint32_t) ++ctx->nslots;
}

static void
reject_add(apply_ctx *ctx, uint32_t e, char *reason)
{
	GROW(ctx->rejects, ctx->rejects_cap, ctx->nrejects + 1);
	ctx->rejects[ctx->nrejects++] = (apply_reject) {e, reason};
}

/* event_reason returns why event e is rejected before any SQL, or NULL. */
static char *
event_reason(apply_ctx *ctx, const proto_push *p, uint32_t e)
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

static void
conflict_add(apply_ctx *ctx, uint32_t e, char *reason)
{
	GROW(ctx->confl, ctx->confl_cap, ctx->nconfl + 1);
	ctx->confl[ctx->nconfl++] = (apply_reject) {e, reason};
}

/* collapse_ev rejects event e up front or collapses it. */
static void
collapse_ev(apply_ctx *ctx, const proto_push *p, uint32_t e)
{
	char *why = event_reason(ctx, p, e);

	if (why != NULL)
		reject_add(ctx, e, why);
	else
		collapse_one(ctx, p, e);
}

/*
 * collapse fills ctx->slots from the events applied again (ctx->redo, all
 * below first_new) and those above the watermark, in seq order, after
 * rejecting those that cannot be applied at all.
 */
static void
collapse(apply_ctx *ctx, const proto_push *p)
{
	size_t n = p->nevents - ctx->first_new + ctx->nredo, cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	GROW(ctx->ht, ctx->ht_cap, cap);
	ctx->ht_cap = cap;
	memset(ctx->ht, 0, cap * sizeof *ctx->ht);
	ctx->nslots = 0;
	rejects_clear(ctx);
	confl_truncate(ctx, 0);
	for (size_t r = 0; r < ctx->nredo; r++)
		collapse_ev(ctx, p, ctx->redo[r]);
	for (uint32_t e = ctx->first_new; e < p->nevents; e++)
		collapse_ev(ctx, p, e);
}

/* ev_by_seq returns the index of the event with seq, or p->nevents. */
static uint32_t
ev_by_seq(const proto_push *p, int64_t seq)
{
	uint32_t lo = 0, hi = p->nevents;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (p->events[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < p->nevents && p->events[lo].seq == seq ? lo : p->nevents;
}

/* ---- statements ------------------------------------------------------ */

/* arrays_open starts k empty array literals and points params at them. */
static void
arrays_open(apply_ctx *ctx, size_t k)
{
	if (k > ctx->narrays) {
		ctx->arrays = xrealloc(ctx->arrays, k * sizeof *ctx->arrays);
		memset(ctx->arrays + ctx->narrays, 0,
		    (k - ctx->narrays) * sizeof *ctx->arrays);
		ctx->narrays = k;
	}
	GROW(ctx->params, ctx->params_cap, k + 8);
	for (size_t j = 0; j < k; j++) {
		pgval_reset(&ctx->arrays[j]);
		pgval_putc(&ctx->arrays[j], '{');
	}
}

/* arrays_close ends k array literals; params[first + j] = arrays[j]. */
static void
arrays_close(apply_ctx *ctx, size_t k, size_t first)
{
	for (size_t j = 0; j < k; j++) {
		pgval_putc(&ctx->arrays[j], '}');
		ctx->params[first + j] = ctx->arrays[j].p;
	}
}

/* put_text appends a C string as an array element. */
static void
put_text(pgval_buf *a, const char *s)
{
	proto_value v = {.type = PROTO_STR, .len = (uint32_t) strlen(s)};

	v.u.s = s;
	pgval_array_elem(a, &v);
}

/*
 * event_json writes the key (array) or row (object) of ev, an event of
 * shape m, as JSON. A row names the target columns (m->names); with
 * sent_only it holds only the columns passed to PostgreSQL.
 */
static void
event_json(pgval_buf *b, const apply_map *m, const proto_event *ev, bool row,
    bool sent_only)
{
	bool first = true;

	pgval_reset(b);
	pgval_putc(b, row ? '{' : '[');
	for (uint32_t i = 0; i < (row ? ev->nvals : m->nkey); i++) {
		if (sent_only && !m->send[i])
			continue;
		if (!first)
			pgval_putc(b, ',');
		first = false;
		if (row) {
			pgval_json_str(b, m->names[i], strlen(m->names[i]));
			pgval_putc(b, ':');
		}
		pgval_json(b, &ev->vals[i]);
	}
	pgval_putc(b, row ? '}' : ']');
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
	pgval_buf *a = &ctx->arrays[k];

	for (size_t r = 0; r < n; r++) {
		const proto_event *ev = &p->events[evs[r]];
		proto_value seq = {.type = PROTO_INT, .u.i = ev->seq};
		for (int j = 0; r > 0 && j < 3; j++)
			pgval_putc(&a[j], ',');
		pgval_array_elem(&a[0], &seq);
		event_json(&ctx->scratch, m, ev, false, false);
		put_text(&a[1], ctx->scratch.p);
		event_json(&ctx->scratch, m, ev, true, true);
		put_text(&a[2], ctx->scratch.p);
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
		uint32_t e
		    = ev_by_seq(p, strtoll(PQgetvalue(res, i, 0), NULL, 10));
		if (e >= p->nevents)
			continue;
		/* A duplicate is recorded only: the row is there, as sent. */
		if (strcmp(PQgetvalue(res, i, 2), "duplicate") == 0)
			log_debug("HUB-CONFLICT",
			    "conflict %s (duplicate): seq %s writes an "
			    "existing row with equal values",
			    PQgetvalue(res, i, 1), PQgetvalue(res, i, 0));
		else
			conflict_add(ctx, e,
			    xasprintf("conflict %s (data_mismatch): %s",
			        PQgetvalue(res, i, 1),
			        lww ? "the server row is newer; kept"
			            : "a different row exists; server row "
			              "kept"));
	}
	PQclear(res);
	return PROTO_OK;
}

/*
 * exec_rows runs the upsert (or delete) of table ti for the n events
 * listed in evs, as one statement over unnest() of array literals. A
 * table with a conflict policy first runs its detection statement over
 * the same arrays.
 */
static proto_err
exec_rows(apply_ctx *ctx, const proto_push *p, uint32_t ti,
    const uint32_t *evs, size_t n, bool del, char *sqlstate, char *err,
    size_t errlen)
{
	const apply_map *m = ctx->pmaps[ti];
	size_t k = del ? m->nkey : m->nsend;
	uint32_t ncols = del ? m->nkey : m->ncols;
	bool det = !del && m->detect_sql != NULL;
	proto_err rv;

	arrays_open(ctx, det ? k + 3 : k);
	for (size_t r = 0; r < n; r++) {
		const proto_event *ev = &p->events[evs[r]];
		size_t j = 0;
		for (uint32_t i = 0; i < ncols; i++) {
			pgval_buf *a;
			if (!m->send[i])
				continue;
			a = &ctx->arrays[j++];
			if (r > 0)
				pgval_putc(a, ',');
			pgval_array_elem(a, &ev->vals[i]);
		}
	}
	if (det)
		fill_conflict_arrays(ctx, p, ti, evs, n, k);
	arrays_close(ctx, det ? k + 3 : k, 1);
	ctx->params[0] = ctx->branch;
	if (det
	    && (rv = detect(ctx, p, ti, k + 3, sqlstate, err, errlen))
	        != PROTO_OK)
		return rv;
	return db_exec(ctx->conn, del ? m->delete_sql : m->upsert_sql,
	    (int) k + 1, ctx->params, PGRES_COMMAND_OK, NULL, sqlstate, err,
	    errlen);
}

/* table_order lists the tables of the slots in order of first appearance. */
static void
table_order(apply_ctx *ctx, const proto_push *p)
{
	ctx->ntorder = 0;
	for (size_t s = 0; s < ctx->nslots; s++) {
		uint32_t t = ctx->slots[s].table;
		bool seen = false;
		for (size_t i = 0; i < ctx->ntorder && !seen; i++)
			seen = ctx->torder[i] == t;
		if (!seen) {
			GROW(ctx->torder, ctx->torder_cap, ctx->ntorder + 1);
			ctx->torder[ctx->ntorder++] = t;
		}
	}
}

/* fast_table runs one set-based statement for table ti, if it has rows. */
static proto_err
fast_table(apply_ctx *ctx, const proto_push *p, uint32_t ti, bool del,
    char *sqlstate, char *err, size_t errlen)
{
	proto_op want = del ? PROTO_OP_DELETE : PROTO_OP_UPSERT;
	size_t n = 0;

	GROW(ctx->evs, ctx->evs_cap, ctx->nslots);
	for (size_t s = 0; s < ctx->nslots; s++) {
		const apply_slot *sl = &ctx->slots[s];
		if (sl->table == ti && p->events[sl->ev].op == want)
			ctx->evs[n++] = sl->ev;
	}
	if (n == 0)
		return PROTO_OK;
	return exec_rows(ctx, p, ti, ctx->evs, n, del, sqlstate, err, errlen);
}

/* apply_fast: upserts per table in order, then deletes in reverse order. */
static proto_err
apply_fast(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	proto_err rv;

	table_order(ctx, p);
	for (size_t i = 0; i < ctx->ntorder; i++)
		if ((rv = fast_table(
		         ctx, p, ctx->torder[i], false, sqlstate, err, errlen))
		    != PROTO_OK)
			return rv;
	for (size_t i = ctx->ntorder; i-- > 0;)
		if ((rv = fast_table(
		         ctx, p, ctx->torder[i], true, sqlstate, err, errlen))
		    != PROTO_OK)
			return rv;
	return PROTO_OK;
}

/* simple runs a parameterless command. */
static proto_err
simple(
    apply_ctx *ctx, const char *sql, char *sqlstate, char *err, size_t errlen)
{
	return db_exec(ctx->conn, sql, 0, NULL, PGRES_COMMAND_OK, NULL,
	    sqlstate, err, errlen);
}

/*
 * conflict_violation records upsert event e, which violated a unique
 * constraint other than the key (why), as a 'constraint_violation'
 * conflict without the server row, and gives it a CONFLICT outcome.
 */
static proto_err
conflict_violation(apply_ctx *ctx, const proto_push *p, uint32_t e,
    const char *why, char *sqlstate, char *err, size_t errlen)
{
	const proto_event *ev = &p->events[e];
	const apply_map *m = ctx->pmaps[ev->table];
	pgval_buf key = {0};
	char seq[24];
	const char *params[7] = {ctx->branch, p->hdr.log_id, seq, m->name};
	char *sql, *tcol, *tval, *tcond;
	PGresult *res;
	proto_err rv;

	snprintf(seq, sizeof seq, "%" PRId64, ev->seq);
	event_json(&key, m, ev, false, false);
	event_json(&ctx->scratch, m, ev, true, true);
	params[4] = key.p;
	params[5] = ctx->scratch.p;
	/* A till table: the local row carries its till, as in map_detect. */
	till_sql(m->t, "", &tcol, &tval, &tcond);
	params[6] = m->t->till >= 0 ? m->t->cols[m->t->till].name : NULL;
	sql = xasprintf(
	    "INSERT INTO branchsync.conflict(branch_id, log_id,"
	    " seq, tbl, key, type, local_row) VALUES ($1, $2, $3,"
	    " $4, $5::jsonb, 'constraint_violation', $6::jsonb%s%s%s)"
	    " RETURNING id",
	    m->t->till >= 0 ? " || jsonb_build_object($7::text, " : "",
	    m->t->till >= 0 ? tval + 2 : "", m->t->till >= 0 ? ")" : "");
	rv = db_exec(ctx->conn, sql, 6 + (m->t->till >= 0), params,
	    PGRES_TUPLES_OK, &res, sqlstate, err, errlen);
	free(sql);
	free(tcol);
	free(tval);
	free(tcond);
	pgval_fini(&key);
	if (rv != PROTO_OK)
		return rv;
	conflict_add(ctx, e,
	    xasprintf("conflict %s (constraint_violation): %s",
	        PQgetvalue(res, 0, 0), why));
	PQclear(res);
	return PROTO_OK;
}

/*
 * pushed_col returns the index of the pushed column of shape m stored in
 * target column name (after the renames), or -1.
 */
static int
pushed_col(const apply_map *m, const char *name)
{
	for (uint32_t i = 0; i < m->ncols; i++)
		if (!strcmp(m->names[i], name))
			return (int) i;
	return -1;
}

/* Most columns of a foreign key fk_reason looks at. */
#define FK_MAX_COLS 32

/*
 * fk_batch looks among this batch's rejects for the upsert of the parent
 * row that child event ev references through fk (cidx: pushed child
 * column per fk column, -1 for the branch column). Returns the reason or
 * NULL.
 */
static char *
fk_batch(apply_ctx *ctx, const proto_push *p, const proto_event *ev,
    const catalog_fk *fk, const int *cidx)
{
	const catalog_table *par = &ctx->cat->tables[fk->parent];

	for (size_t r = 0; r < ctx->nrejects; r++) {
		const apply_reject *rj = &ctx->rejects[r];
		const proto_event *pev = &p->events[rj->ev];
		const proto_table *pt = &p->tables[pev->table];
		const apply_map *pm = ctx->pmaps[pev->table];
		bool match = pev->op == PROTO_OP_UPSERT
		    && !strcmp(pt->name, par->cfg->name);
		for (size_t j = 0; j < fk->n && match; j++) {
			int pi;
			if (cidx[j] < 0)
				continue;
			pi = pushed_col(pm, par->cols[fk->pcols[j]].name);
			match = pi >= 0 && (uint32_t) pi < pev->nvals
			    && proto_value_eq(
			        &pev->vals[pi], &ev->vals[cidx[j]]);
		}
		if (match) {
			event_json(&ctx->scratch, pm, pev, false, false);
			return xasprintf(
			    "depends on rejected event seq %" PRId64
			    " (table \"%s\", key %s): %s",
			    pev->seq, pt->name, ctx->scratch.p, rj->reason);
		}
	}
	return NULL;
}

/*
 * fk_stored looks for an open reject of the parent row among the
 * branch's stored rejects: its key is the parent's primary key minus
 * its branch column, in key order, taken from the child's values.
 */
static proto_err
fk_stored(apply_ctx *ctx, const proto_event *ev, const catalog_fk *fk,
    const int *cidx, char **reason, char *sqlstate, char *err, size_t errlen)
{
	const catalog_table *par = &ctx->cat->tables[fk->parent];
	pgval_buf key = {0};
	const char *params[3] = {ctx->branch, par->cfg->name};
	PGresult *res;
	proto_err rv;
	bool first = true;

	pgval_putc(&key, '[');
	for (int pos = 1; pos <= (int) par->npk; pos++) {
		size_t j = fk->n;
		for (size_t c = 0; c < par->ncols; c++) {
			if (par->cols[c].pk_pos != pos
			    || (int) c == par->branch)
				continue;
			for (j = 0; j < fk->n && fk->pcols[j] != c; j++)
				;
			if (j == fk->n || cidx[j] < 0) {
				pgval_fini(&key);
				return PROTO_OK; /* key not covered by the FK
				                  */
			}
			pgval_puts(&key, first ? "" : ",");
			first = false;
			pgval_json(&key, &ev->vals[cidx[j]]);
		}
	}
	pgval_putc(&key, ']');
	params[2] = key.p;
	rv = db_exec(ctx->conn,
	    "SELECT seq, reason FROM branchsync.reject WHERE branch_id = $1"
	    " AND tbl = $2 AND key = $3::jsonb AND state IN ('open', 'retry')"
	    " ORDER BY seq DESC LIMIT 1",
	    3, params, PGRES_TUPLES_OK, &res, sqlstate, err, errlen);
	if (rv == PROTO_OK && PQntuples(res) == 1)
		*reason = xasprintf("depends on rejected event seq %s (table "
		                    "\"%s\", key %s): %s",
		    PQgetvalue(res, 0, 0), par->cfg->name, key.p,
		    PQgetvalue(res, 0, 1));
	if (rv == PROTO_OK)
		PQclear(res);
	pgval_fini(&key);
	return rv;
}

/*
 * fk_reason: event e failed a foreign key. If the row it references was
 * rejected (in this batch, or earlier and still open), *reason names it;
 * otherwise *reason stays NULL. PROTO_EDB only if the lookup failed.
 */
static proto_err
fk_reason(apply_ctx *ctx, const proto_push *p, uint32_t e, char **reason,
    char *sqlstate, char *err, size_t errlen)
{
	const proto_event *ev = &p->events[e];
	const apply_map *m = ctx->pmaps[ev->table];
	const catalog_table *t = m->t;
	int cidx[FK_MAX_COLS];
	proto_err rv;

	*reason = NULL;
	if (t == NULL || ev->op != PROTO_OP_UPSERT)
		return PROTO_OK;
	for (size_t f = 0; f < t->nfks && *reason == NULL; f++) {
		const catalog_fk *fk = &t->fks[f];
		bool ok = fk->n <= FK_MAX_COLS;
		for (size_t j = 0; ok && j < fk->n; j++) {
			bool branch = (int) fk->cols[j] == t->branch;
			cidx[j] = branch
			    ? -1
			    : pushed_col(m, t->cols[fk->cols[j]].name);
			ok = cidx[j] >= 0 || branch;
		}
		if (!ok)
			continue;
		if ((*reason = fk_batch(ctx, p, ev, fk, cidx)) == NULL
		    && (rv = fk_stored(
		            ctx, ev, fk, cidx, reason, sqlstate, err, errlen))
		        != PROTO_OK)
			return rv;
	}
	return PROTO_OK;
}

/*
 * slow_one applies one collapsed event under a savepoint. A data error
 * becomes a reject and PROTO_OK; a lost connection or transient error is
 * returned, since the whole batch must then be retried.
 */
static proto_err
slow_one(apply_ctx *ctx, const proto_push *p, uint32_t e, char *sqlstate,
    char *err, size_t errlen)
{
	const proto_event *ev = &p->events[e];
	size_t nconfl = ctx->nconfl;
	char why[512], state[6];
	char *reason = NULL;
	proto_err rv;

	if ((rv = simple(ctx, "SAVEPOINT bs_event", sqlstate, err, errlen))
	    != PROTO_OK)
		return rv;
	rv = exec_rows(ctx, p, ev->table, &e, 1, ev->op == PROTO_OP_DELETE,
	    sqlstate, why, sizeof why);
	if (rv == PROTO_OK)
		return simple(
		    ctx, "RELEASE SAVEPOINT bs_event", sqlstate, err, errlen);
	if (db_lost(ctx->conn) || db_transient(sqlstate)) {
		snprintf(err, errlen, "%s", why);
		return rv;
	}
	memcpy(state, sqlstate, sizeof state);
	confl_truncate(ctx, nconfl); /* rolled back with the savepoint */
	if ((rv = simple(ctx,
	         "ROLLBACK TO SAVEPOINT bs_event; RELEASE SAVEPOINT bs_event",
	         sqlstate, err, errlen))
	    != PROTO_OK)
		return rv;
	/*
	 * Values read after a later write of the row may refer to rows whose
	 * own events come later (a parent inserted since, a key reused): the
	 * row's later event carries the same values, in its place in the
	 * log. Nothing to set aside.
	 */
	if (ev->ahead) {
		log_debug("HUB-APPLY-AHEAD",
		    "seq %" PRId64 " skipped: its values are ahead of it and "
		    "a later event of the row is pending: %s",
		    ev->seq, why);
		return PROTO_OK;
	}
	/* A unique constraint besides the key: the rows conflict. */
	if (!strcmp(state, "23505") && ev->op == PROTO_OP_UPSERT)
		return conflict_violation(
		    ctx, p, e, why, sqlstate, err, errlen);
	if (!strcmp(state, "23503")
	    && (rv = fk_reason(ctx, p, e, &reason, sqlstate, err, errlen))
	        != PROTO_OK)
		return rv;
	reject_add(ctx, e, reason != NULL ? reason : xstrdup(why));
	return PROTO_OK;
}

/* apply_slow: the fast path's order, one event at a time. */
static proto_err
apply_slow(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	proto_err rv;

	/* Check deferred FKs per event, not once at COMMIT for all. */
	if ((rv = simple(
	         ctx, "SET CONSTRAINTS ALL IMMEDIATE", sqlstate, err, errlen))
	    != PROTO_OK)
		return rv;
	for (size_t s = 0; s < ctx->nslots; s++) {
		uint32_t e = ctx->slots[s].ev;
		if (p->events[e].op == PROTO_OP_UPSERT
		    && (rv = slow_one(ctx, p, e, sqlstate, err, errlen))
		        != PROTO_OK)
			return rv;
	}
	for (size_t s = ctx->nslots; s-- > 0;) {
		uint32_t e = ctx->slots[s].ev;
		if (p->events[e].op == PROTO_OP_DELETE
		    && (rv = slow_one(ctx, p, e, sqlstate, err, errlen))
		        != PROTO_OK)
			return rv;
	}
	return PROTO_OK;
}

/* ---- bookkeeping ----------------------------------------------------- */

/*
 * insert_rejects records all rejects of the batch in one statement. An
 * event applied again that fails again updates its reject: open again,
 * one more attempt, the new reason.
 */
static proto_err
insert_rejects(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	pgval_buf *a;

	if (ctx->nrejects == 0)
		return PROTO_OK;
	arrays_open(ctx, 5);
	a = ctx->arrays;
	for (size_t r = 0; r < ctx->nrejects; r++) {
		const proto_event *ev = &p->events[ctx->rejects[r].ev];
		const apply_map *m = ctx->pmaps[ev->table];
		proto_value seq = {.type = PROTO_INT, .u.i = ev->seq};
		for (int j = 0; r > 0 && j < 5; j++)
			pgval_putc(&a[j], ',');
		pgval_array_elem(&a[0], &seq);
		put_text(&a[1], m->name);
		event_json(&ctx->scratch, m, ev, false, false);
		put_text(&a[2], ctx->scratch.p);
		if (ev->op == PROTO_OP_UPSERT) {
			event_json(&ctx->scratch, m, ev, true, false);
			put_text(&a[3], ctx->scratch.p);
		} else
			pgval_puts(&a[3], "NULL");
		put_text(&a[4], ctx->rejects[r].reason);
	}
	arrays_close(ctx, 5, 2);
	ctx->params[0] = ctx->branch;
	ctx->params[1] = p->hdr.log_id;
	return db_exec(ctx->conn,
	    "INSERT INTO branchsync.reject AS r (branch_id, log_id, seq, tbl,"
	    " key, row, reason) SELECT $1::int, $2, * FROM unnest("
	    "$3::bigint[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[])"
	    " ON CONFLICT (branch_id, log_id, seq) DO UPDATE SET"
	    " state = 'open', attempts = r.attempts + 1,"
	    " reason = EXCLUDED.reason, tbl = EXCLUDED.tbl,"
	    " key = EXCLUDED.key, row = EXCLUDED.row, resolved_at = NULL,"
	    " resolved_by = NULL",
	    7, ctx->params, PGRES_COMMAND_OK, NULL, sqlstate, err, errlen);
}

/* lock_watermark creates and locks the log's row, reading seq and tag. */
static proto_err
lock_watermark(apply_ctx *ctx, const char *log_id, char *sqlstate, char *err,
    size_t errlen)
{
	const char *params[2] = {ctx->branch, log_id};
	PGresult *res;
	proto_err rv;

	rv = db_exec(ctx->conn,
	    "INSERT INTO branchsync.watermark(branch_id, log_id)"
	    " VALUES ($1, $2) ON CONFLICT DO NOTHING",
	    2, params, PGRES_COMMAND_OK, NULL, sqlstate, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	rv = db_exec(ctx->conn,
	    "SELECT seq, tag FROM branchsync.watermark"
	    " WHERE branch_id = $1 AND log_id = $2 FOR UPDATE",
	    2, params, PGRES_TUPLES_OK, &res, sqlstate, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	ctx->wm_seq = PQntuples(res) == 1
	    ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
	    : 0;
	ctx->wm_tag = PQntuples(res) == 1
	    ? strtoll(PQgetvalue(res, 0, 1), NULL, 10)
	    : 0;
	PQclear(res);
	return PROTO_OK;
}

/*
 * update_status adds to branch_status what the agent reported, and the
 * events applied and rejected and the conflicts recorded by this request.
 */
static proto_err
update_status(apply_ctx *ctx, const proto_agent_hdr *h, const char *version,
    int64_t applied, int64_t rejected, int64_t conflicts, char *sqlstate,
    char *err, size_t errlen)
{
	char q[3][24], a[24], r[24], c[24];
	const char *params[9]
	    = {ctx->branch, q[0], q[1], q[2], version, a, r, c, ctx->till_id};

	snprintf(q[0], sizeof q[0], "%" PRId64, h->queue_events);
	snprintf(q[1], sizeof q[1], "%" PRId64, h->queue_bytes);
	snprintf(q[2], sizeof q[2], "%" PRId64, h->oldest_age_s);
	snprintf(a, sizeof a, "%" PRId64, applied);
	snprintf(r, sizeof r, "%" PRId64, rejected);
	snprintf(c, sizeof c, "%" PRId64, conflicts);
	return db_exec(ctx->conn,
	    "INSERT INTO branchsync.branch_status AS s (branch_id, till_id,"
	    " last_seen, queue_events, queue_bytes, oldest_age_s,"
	    " agent_version, applied_total, rejected_total, conflict_total)"
	    " VALUES ($1, $9, now(), $2, $3, $4, $5, $6, $7, $8)"
	    " ON CONFLICT (branch_id, till_id) DO UPDATE SET last_seen = "
	    "now(),"
	    " queue_events = EXCLUDED.queue_events,"
	    " queue_bytes = EXCLUDED.queue_bytes,"
	    " oldest_age_s = EXCLUDED.oldest_age_s,"
	    " agent_version = coalesce(EXCLUDED.agent_version,"
	    " s.agent_version),"
	    " applied_total = s.applied_total + EXCLUDED.applied_total,"
	    " rejected_total = s.rejected_total + EXCLUDED.rejected_total,"
	    " conflict_total = s.conflict_total + EXCLUDED.conflict_total",
	    9, params, PGRES_COMMAND_OK, NULL, sqlstate, err, errlen);
}

/*
 * set_till makes the till of this request the value of the till_column
 * of every table that has one (see till_sql), for this transaction only:
 * the till's id for an integer column, its code for a text column; 0 and
 * "" for an agent that uses the branch's own key. Skipped when no table
 * of the push has a till_column.
 */
static proto_err
set_till(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	const char *params[2] = {ctx->till_id, ctx->till};
	bool any = false;

	for (uint32_t i = 0; i < p->ntables && !any; i++)
		any = ctx->pmaps[i]->t != NULL && ctx->pmaps[i]->t->till >= 0;
	if (!any)
		return PROTO_OK;
	return db_exec(ctx->conn,
	    "SELECT set_config('branchsync.till_id', $1, true),"
	    " set_config('branchsync.till', $2, true)",
	    2, params, PGRES_TUPLES_OK, NULL, sqlstate, err, errlen);
}

/* advance sets the watermark to the push's last event. */
static proto_err
advance(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	const proto_event *last;
	char seq[24], tag[24];
	const char *params[4] = {ctx->branch, p->hdr.log_id, seq, tag};

	if (ctx->first_new >= p->nevents)
		return PROTO_OK; /* all duplicates: nothing moves */
	last = &p->events[p->nevents - 1];
	snprintf(seq, sizeof seq, "%" PRId64, last->seq);
	snprintf(tag, sizeof tag, "%" PRId64, last->tag);
	ctx->wm_seq = last->seq;
	ctx->wm_tag = last->tag;
	return db_exec(ctx->conn,
	    "UPDATE branchsync.watermark SET seq = $3, tag = $4,"
	    " updated_at = now() WHERE branch_id = $1 AND log_id = $2",
	    4, params, PGRES_COMMAND_OK, NULL, sqlstate, err, errlen);
}

/* ---- the transaction ------------------------------------------------- */

/* first_new_event finds the first event above the locked watermark. */
static void
first_new_event(apply_ctx *ctx, const proto_push *p)
{
	uint32_t e = 0;

	while (e < p->nevents && p->events[e].seq <= ctx->wm_seq)
		e++;
	ctx->first_new = e;
}

/*
 * load_redo finds the events at or below the watermark that have an open
 * or retry reject (locked until COMMIT, so a concurrent "rejects discard"
 * waits): they are applied again.
 */
static proto_err
load_redo(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	char lo[24], hi[24];
	const char *params[4] = {ctx->branch, p->hdr.log_id, lo, hi};
	PGresult *res;
	proto_err rv;

	ctx->nredo = 0;
	if (ctx->first_new == 0)
		return PROTO_OK;
	snprintf(lo, sizeof lo, "%" PRId64, p->events[0].seq);
	snprintf(hi, sizeof hi, "%" PRId64, p->events[ctx->first_new - 1].seq);
	rv = db_exec(ctx->conn,
	    "SELECT seq FROM branchsync.reject WHERE branch_id = $1"
	    " AND log_id = $2 AND seq BETWEEN $3 AND $4"
	    " AND state IN ('open', 'retry') ORDER BY seq FOR UPDATE",
	    4, params, PGRES_TUPLES_OK, &res, sqlstate, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	for (int i = 0; i < PQntuples(res); i++) {
		uint32_t e
		    = ev_by_seq(p, strtoll(PQgetvalue(res, i, 0), NULL, 10));
		if (e < ctx->first_new) {
			GROW(ctx->redo, ctx->redo_cap, ctx->nredo + 1);
			ctx->redo[ctx->nredo++] = e;
		}
	}
	PQclear(res);
	return PROTO_OK;
}

static int
reject_cmp(const void *a, const void *b)
{
	const apply_reject *x = a, *y = b;

	return x->ev < y->ev ? -1 : x->ev > y->ev;
}

/* is_rejected tells whether event e is among the (sorted) rejects. */
static bool
is_rejected(const apply_ctx *ctx, uint32_t e)
{
	apply_reject key = {e, NULL};

	return ctx->nrejects > 0
	    && bsearch(
	           &key, ctx->rejects, ctx->nrejects, sizeof key, reject_cmp)
	    != NULL;
}

/*
 * resolve_redo marks the rejects of the events applied again that did
 * not fail again as resolved by the retry; *nresolved counts them.
 */
static proto_err
resolve_redo(apply_ctx *ctx, const proto_push *p, size_t *nresolved,
    char *sqlstate, char *err, size_t errlen)
{
	pgval_buf *a = &ctx->scratch;
	const char *params[3] = {ctx->branch, p->hdr.log_id};

	*nresolved = 0;
	if (ctx->nredo == 0)
		return PROTO_OK;
	if (ctx->nrejects > 1)
		qsort(ctx->rejects, ctx->nrejects, sizeof *ctx->rejects,
		    reject_cmp);
	pgval_reset(a);
	pgval_putc(a, '{');
	for (size_t r = 0; r < ctx->nredo; r++) {
		proto_value seq = {.type = PROTO_INT};
		if (is_rejected(ctx, ctx->redo[r]))
			continue;
		seq.u.i = p->events[ctx->redo[r]].seq;
		if ((*nresolved)++ > 0)
			pgval_putc(a, ',');
		pgval_array_elem(a, &seq);
	}
	pgval_putc(a, '}');
	if (*nresolved == 0)
		return PROTO_OK;
	params[2] = a->p;
	return db_exec(ctx->conn,
	    "UPDATE branchsync.reject SET state = 'resolved',"
	    " resolved_at = now(), resolved_by = 'retry'"
	    " WHERE branch_id = $1 AND log_id = $2 AND seq = "
	    "ANY($3::bigint[])",
	    3, params, PGRES_COMMAND_OK, NULL, sqlstate, err, errlen);
}

/* redo_rejects counts the rejects of events applied again. */
static size_t
redo_rejects(const apply_ctx *ctx)
{
	size_t n = 0;

	for (size_t r = 0; r < ctx->nrejects; r++)
		n += ctx->rejects[r].ev < ctx->first_new;
	return n;
}

/*
 * run_txn makes one attempt: the fast path, or with ctx->slow the slow
 * one (always when events are applied again). On failure the transaction
 * is rolled back and sqlstate tells the caller whether falling back to
 * the slow path makes sense.
 */
static proto_err
run_txn(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	size_t nresolved, nnew;
	proto_err rv;

	if ((rv = simple(ctx, "BEGIN", sqlstate, err, errlen)) != PROTO_OK
	    || (rv = lock_watermark(ctx, p->hdr.log_id, sqlstate, err, errlen))
	        != PROTO_OK
	    || (rv = set_till(ctx, p, sqlstate, err, errlen)) != PROTO_OK)
		goto fail;
	first_new_event(ctx, p);
	if ((rv = load_redo(ctx, p, sqlstate, err, errlen)) != PROTO_OK)
		goto fail;
	if (ctx->nredo > 0)
		ctx->slow = true;
	collapse(ctx, p);
	rv = ctx->slow ? apply_slow(ctx, p, sqlstate, err, errlen)
	               : apply_fast(ctx, p, sqlstate, err, errlen);
	if (rv != PROTO_OK
	    || (rv = resolve_redo(ctx, p, &nresolved, sqlstate, err, errlen))
	        != PROTO_OK
	    || (rv = insert_rejects(ctx, p, sqlstate, err, errlen)) != PROTO_OK
	    || (rv = advance(ctx, p, sqlstate, err, errlen)) != PROTO_OK)
		goto fail;
	nnew = ctx->nrejects - redo_rejects(ctx);
	/* Conflicts are not applied: the server's row was kept. */
	ctx->applied = (int64_t) (p->nevents - ctx->first_new + ctx->nredo
	    - ctx->nrejects - ctx->nconfl);
	/* Every conflict outcome inserted one branchsync.conflict row. */
	if ((rv = update_status(ctx, &p->hdr, NULL, ctx->applied,
	         (int64_t) nnew, (int64_t) ctx->nconfl, sqlstate, err, errlen))
	        != PROTO_OK
	    || (rv = simple(ctx, "COMMIT", sqlstate, err, errlen)) != PROTO_OK)
		goto fail;
	return PROTO_OK;
fail:
	if (!db_lost(ctx->conn))
		PQclear(PQexec(ctx->conn, "ROLLBACK"));
	return rv;
}

void
apply_set_till(apply_ctx *ctx, int till_id, const char *till)
{
	snprintf(ctx->till_id, sizeof ctx->till_id, "%d", till_id);
	snprintf(ctx->till, sizeof ctx->till, "%s", till != NULL ? till : "");
}

proto_err
apply_check_hdr(const proto_agent_hdr *h, char *err, size_t errlen)
{
	if (h->log_id == NULL || h->log_id[0] == '\0'
	    || strlen(h->log_id) > APPLY_LOG_ID_MAX) {
		snprintf(err, errlen, "invalid log_id");
		return PROTO_EPROTO;
	}
	return PROTO_OK;
}

/* check_events verifies what the apply relies on: seq order, shapes. */
static proto_err
check_events(const proto_push *p, char *err, size_t errlen)
{
	for (uint32_t e = 0; e < p->nevents; e++) {
		const proto_event *ev = &p->events[e];
		const proto_table *t;
		if (e > 0 && ev->seq <= p->events[e - 1].seq) {
			snprintf(err, errlen,
			    "seq %" PRId64 " follows seq "
			    "%" PRId64 ": seqs must strictly increase",
			    ev->seq, p->events[e - 1].seq);
			return PROTO_EPROTO;
		}
		if (ev->table >= p->ntables)
			goto bad;
		t = &p->tables[ev->table];
		if (t->nkey == 0 || t->nkey > t->ncols
		    || ev->nvals
		        != (ev->op == PROTO_OP_UPSERT ? t->ncols : t->nkey)
		    || (ev->op != PROTO_OP_UPSERT && ev->op != PROTO_OP_DELETE
		        && ev->op != PROTO_OP_NONE))
			goto bad;
	}
	return PROTO_OK;
bad:
	snprintf(err, errlen, "malformed event in batch");
	return PROTO_EPROTO;
}

static int
outcome_cmp(const void *a, const void *b)
{
	const proto_outcome *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* fill_ack describes the committed batch: rejects and conflicts. */
static void
fill_ack(apply_ctx *ctx, const proto_push *p, proto_ack *ack)
{
	size_t n = 0;

	GROW(ctx->outcomes, ctx->outcomes_cap, ctx->nrejects + ctx->nconfl);
	for (size_t r = 0; r < ctx->nrejects; r++) {
		const apply_reject *rj = &ctx->rejects[r];
		ctx->outcomes[n++] = (proto_outcome) {
		    p->events[rj->ev].seq, PROTO_OUT_REJECTED, rj->reason};
		log_warn("HUB-REJECT",
		    "branch_id=%s log=%s seq=%" PRId64 " table=\"%s\": %s",
		    ctx->branch, p->hdr.log_id, p->events[rj->ev].seq,
		    p->tables[p->events[rj->ev].table].name, rj->reason);
	}
	for (size_t c = 0; c < ctx->nconfl; c++) {
		const apply_reject *cf = &ctx->confl[c];
		ctx->outcomes[n++] = (proto_outcome) {
		    p->events[cf->ev].seq, PROTO_OUT_CONFLICT, cf->reason};
		log_notice("HUB-CONFLICT",
		    "branch_id=%s log=%s seq=%" PRId64 " table=\"%s\": %s",
		    ctx->branch, p->hdr.log_id, p->events[cf->ev].seq,
		    p->tables[p->events[cf->ev].table].name, cf->reason);
	}
	if (n > 1) /* qsort(NULL, 0) is undefined */
		qsort(ctx->outcomes, n, sizeof *ctx->outcomes, outcome_cmp);
	memset(ack, 0, sizeof *ack);
	ack->log_id = p->hdr.log_id;
	ack->watermark = ctx->wm_seq;
	ack->tag = ctx->wm_tag;
	ack->duplicates = (int64_t) (ctx->first_new - ctx->nredo);
	ack->applied = ctx->applied;
	ack->noutcomes = (uint32_t) n;
	ack->outcomes = ctx->outcomes;
}

/* map_tables maps every table of the push (cache cleared if full). */
static proto_err
map_tables(apply_ctx *ctx, const proto_push *p, char *err, size_t errlen)
{
	if (p->ntables > MAP_CACHE_MAX) {
		snprintf(err, errlen, "too many tables in batch");
		return PROTO_EPROTO;
	}
	if (ctx->ncache + p->ntables > MAP_CACHE_MAX)
		cache_clear(ctx);
	GROW(ctx->pmaps, ctx->pmaps_cap, (size_t) p->ntables);
	for (uint32_t t = 0; t < p->ntables; t++)
		ctx->pmaps[t] = map_get(ctx, &p->tables[t]);
	return PROTO_OK;
}

proto_err
apply_check(apply_ctx *ctx, const proto_push *p, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = check_events(p, err, errlen)) != PROTO_OK)
		return rv;
	return map_tables(ctx, p, err, errlen);
}

char *
apply_event_reason(apply_ctx *ctx, const proto_push *p, uint32_t e)
{
	return event_reason(ctx, p, e);
}

proto_err
apply_push(apply_ctx *ctx, int branch_id, const proto_push *p, proto_ack *ack,
    char *err, size_t errlen)
{
	char sqlstate[6] = "";
	proto_err rv;

	rejects_clear(ctx);
	confl_truncate(ctx, 0);
	ctx->nredo = 0;
	snprintf(ctx->branch, sizeof ctx->branch, "%d", branch_id);
	if ((rv = apply_check(ctx, p, err, errlen)) != PROTO_OK)
		return rv;
	ctx->slow = false;
	rv = run_txn(ctx, p, sqlstate, err, errlen);
	if (rv == PROTO_EDB && !ctx->slow && !db_lost(ctx->conn)
	    && !db_transient(sqlstate)) {
		log_notice("HUB-APPLY-SLOW",
		    "branch_id=%s log=%s: batch "
		    "failed (%s); applying event by event",
		    ctx->branch, p->hdr.log_id, err);
		rejects_clear(ctx);
		confl_truncate(ctx, 0);
		ctx->slow = true;
		rv = run_txn(ctx, p, sqlstate, err, errlen);
	}
	if (rv != PROTO_OK)
		return rv;
	fill_ack(ctx, p, ack);
	return PROTO_OK;
}

/*
 * hello_lists fills the WELCOME's retry list (rejects an operator asked
 * to retry, lowest seqs first) and discard list (the most recently
 * discarded of the last HELLO_DISCARD_DAYS days: the agent drops the
 * entries, so older ones have long been acted upon). Each holds at most
 * max_outcomes seqs, in increasing order.
 */
#define HELLO_DISCARD_DAYS "30"

static proto_err
hello_lists(apply_ctx *ctx, const char *log_id, proto_welcome *w, char *err,
    size_t errlen)
{
	proto_limits lim;
	char limit[24];
	const char *params[3] = {ctx->branch, log_id, limit};
	PGresult *res;
	proto_err rv;
	size_t n, nr = 0, nd = 0;

	proto_limits_default(&lim);
	snprintf(limit, sizeof limit, "%" PRIu32, lim.max_outcomes);
	rv = db_exec(ctx->conn,
	    "SELECT seq, state = 'retry' FROM ("
	    "(SELECT seq, state FROM branchsync.reject WHERE branch_id = $1"
	    "  AND log_id = $2 AND state = 'retry' ORDER BY seq LIMIT $3)"
	    " UNION ALL"
	    " (SELECT seq, state FROM branchsync.reject WHERE branch_id = $1"
	    "  AND log_id = $2 AND state = 'discarded' AND resolved_at >"
	    "  now() - interval '" HELLO_DISCARD_DAYS " days'"
	    "  ORDER BY resolved_at DESC LIMIT $3)) s ORDER BY seq",
	    3, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	n = (size_t) PQntuples(res);
	GROW(ctx->wlist, ctx->wlist_cap, n);
	for (size_t i = 0; i < n; i++)
		nr += PQgetvalue(res, (int) i, 1)[0] == 't';
	/* Retry seqs first, discard seqs after them, each increasing. */
	for (size_t i = 0; i < n; i++) {
		int64_t seq = strtoll(PQgetvalue(res, (int) i, 0), NULL, 10);
		if (PQgetvalue(res, (int) i, 1)[0] == 't')
			ctx->wlist[w->nretry++] = seq;
		else
			ctx->wlist[nr + nd++] = seq;
	}
	PQclear(res);
	w->retry = w->nretry > 0 ? ctx->wlist : NULL;
	w->ndiscard = (uint32_t) nd;
	w->discard = nd > 0 ? ctx->wlist + nr : NULL;
	return PROTO_OK;
}

proto_err
apply_hello(apply_ctx *ctx, int branch_id, const proto_hello *h,
    proto_welcome *w, char *err, size_t errlen)
{
	const char *params[2] = {ctx->branch, h->hdr.log_id};
	PGresult *res;
	proto_err rv;

	snprintf(ctx->branch, sizeof ctx->branch, "%d", branch_id);
	rv = update_status(
	    ctx, &h->hdr, h->version, 0, 0, 0, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	rv = db_exec(ctx->conn,
	    "SELECT seq, tag FROM branchsync.watermark"
	    " WHERE branch_id = $1 AND log_id = $2",
	    2, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	memset(w, 0, sizeof *w);
	if (PQntuples(res) == 1) {
		w->watermark = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		w->tag = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	w->version = BS_VERSION;
	w->max_events = ctx->conf->max_batch_events;
	w->max_bytes = ctx->conf->max_message_bytes;
	return hello_lists(ctx, h->hdr.log_id, w, err, errlen);
}
