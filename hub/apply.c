/*
 * apply.c: the PUSH apply algorithm.
 *
 *   1. Check that seqs strictly increase (else PROTO_EPROTO).
 *   2. Map each pushed table shape (name, columns, nkey) to an allow-listed
 *      target table: cached per connection, with the SQL built for it.
 *   3. BEGIN; create and lock the (branch, log_id) watermark row. Events at
 *      or below it were applied before: counted as duplicates.
 *   4. Reject up front events of tables or columns the hub does not allow
 *      and str values holding NUL (text parameters cannot carry them).
 *   5. Collapse the rest to the last event per (table, key): final state
 *      wins, and INSERT ... ON CONFLICT DO UPDATE may not touch the same
 *      row twice in one statement anyway.
 *   6. Fast path: per table in order of first appearance one upsert of all
 *      its rows from unnest() of text array literals, then per table in
 *      reverse order one delete. Deferred FKs are checked at COMMIT.
 *   7. On a data error (not a lost connection, not a serialization or
 *      resource error), roll back and redo the batch in a new transaction
 *      with constraints IMMEDIATE, one event per SAVEPOINT; failing events
 *      go to branchsync.reject and come back as REJECTED outcomes.
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
	bool *send;       /* per pushed column: passed to PostgreSQL */
	uint32_t ncols;   /* pushed columns */
	uint32_t nsend;   /* columns with send set */
	uint32_t nkey;    /* key columns: the first nkey */
} apply_map;

/* One (table, key) after collapsing. */
typedef struct {
	uint32_t table; /* index into the push's tables */
	uint32_t ev;    /* index of the key's last event */
} apply_slot;

/* One rejected event. */
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
	proto_outcome *outcomes;      /* the ACK's outcomes */
	size_t outcomes_cap;          /* allocated entries of outcomes */
	pgval_buf *arrays;            /* one array literal per parameter */
	size_t narrays;               /* allocated entries of arrays */
	const char **params;          /* parameter pointers */
	size_t params_cap;            /* allocated entries of params */
	pgval_buf scratch;            /* signatures, JSON */
	char branch[16];              /* branch id as text ($1) */
	int64_t wm_seq, wm_tag;       /* watermark read under lock */
	uint32_t first_new;           /* first event above the watermark */
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
	return ctx;
}

static void
rejects_clear(apply_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nrejects; i++)
		free(ctx->rejects[i].reason);
	ctx->nrejects = 0;
}

void
apply_free(apply_ctx *ctx)
{
	if (ctx == NULL)
		return;
	cache_clear(ctx);
	rejects_clear(ctx);
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

/* map_sql builds the upsert and delete statements of a checked shape. */
static void
map_sql(apply_map *m, const catalog_table *t, const proto_table *pt)
{
	pgval_buf ins = {0}, sel = {0}, key = {0}, upd = {0}, del = {0};
	uint32_t p = 2;

	for (uint32_t i = 0; i < pt->ncols; i++) {
		const catalog_col *c;
		char tmp[24];
		if (!m->send[i])
			continue;
		c = &t->cols[catalog_col_find(t, pt->cols[i])];
		snprintf(
		    tmp, sizeof tmp, "%s$%" PRIu32 "::", p > 2 ? ", " : "", p);
		p++;
		pgval_puts(&ins, ", ");
		pgval_puts(&ins, c->quoted);
		pgval_puts(&sel, tmp);
		pgval_puts(&sel, c->type);
		pgval_puts(&sel, "[]");
		if (i < pt->nkey) {
			pgval_puts(&key, i > 0 ? ", " : "");
			pgval_puts(&key, c->quoted);
			if (i + 1 == pt->nkey)
				pgval_put(&del, sel.p, sel.len);
		} else {
			pgval_puts(
			    &upd, upd.len > 0 ? ", " : " DO UPDATE SET ");
			pgval_puts(&upd, c->quoted);
			pgval_puts(&upd, " = EXCLUDED.");
			pgval_puts(&upd, c->quoted);
		}
	}
	m->upsert_sql = xasprintf(
	    "INSERT INTO %s (branch_id%s) SELECT "
	    "$1::int, * FROM unnest(%s) ON CONFLICT (branch_id, %s)%s",
	    t->quoted, ins.p, sel.p, key.p,
	    upd.len > 0 ? upd.p : " DO NOTHING");
	m->delete_sql = xasprintf("DELETE FROM %s WHERE branch_id = $1::int "
	                          "AND (%s) IN (SELECT * FROM unnest(%s))",
	    t->quoted, key.p, del.p);
	pgval_fini(&ins);
	pgval_fini(&sel);
	pgval_fini(&key);
	pgval_fini(&upd);
	pgval_fini(&del);
}

/* map_columns decides per pushed column whether it is sent; NULL if ok. */
static char *
map_columns(apply_map *m, const catalog_table *t, const proto_table *pt)
{
	for (uint32_t i = 0; i < pt->ncols; i++) {
		const char *col = pt->cols[i];
		int idx = catalog_col_find(t, col);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(pt->cols[j], col))
				return xasprintf(
				    "duplicate column \"%s\"", col);
		if (!strcmp(col, "branch_id"))
			return xstrdup(
			    "column \"branch_id\" is set by the hub");
		if (idx < 0 && i >= pt->nkey && !strcmp(col, SYNC_FLAG_COLUMN))
			continue;
		if (idx < 0)
			return xasprintf("column \"%s\" does not exist in "
			                 "table %s",
			    col, t->quoted);
		if ((i < pt->nkey) != t->cols[idx].in_pk)
			break;
		m->send[i] = true;
		m->nsend++;
	}
	if (pt->nkey + 1 != t->npk || m->nsend < pt->nkey)
		return xasprintf("key columns do not match the primary key of "
		                 "table %s minus \"branch_id\"",
		    t->quoted);
	return NULL;
}

/* map_new maps one pushed table shape; sig is its signature. */
static apply_map *
map_new(apply_ctx *ctx, const proto_table *pt, const char *sig)
{
	apply_map *m = xcalloc(1, sizeof *m);
	const catalog_table *t = catalog_find(ctx->cat, pt->name);

	m->name = xstrdup(pt->name);
	m->sig = xstrdup(sig);
	m->ncols = pt->ncols;
	m->nkey = pt->nkey;
	m->send = xcalloc(pt->ncols, sizeof *m->send);
	/* A down table flows to branches only: a PUSH must not write it. */
	if (t == NULL || t->cfg->down)
		m->reason = xasprintf("table \"%s\" is not replicated by this "
		                      "hub",
		    pt->name);
	else if ((m->reason = map_columns(m, t, pt)) == NULL)
		map_sql(m, t, pt);
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
	for (uint32_t i = 0; i < ev->nvals; i++)
		if (pgval_has_nul(&ev->vals[i]))
			return xasprintf("value of column \"%s\" contains a "
			                 "NUL byte",
			    p->tables[ev->table].cols[i]);
	return NULL;
}

/*
 * collapse fills ctx->slots from the events above the watermark, after
 * rejecting those that cannot be applied at all.
 */
static void
collapse(apply_ctx *ctx, const proto_push *p)
{
	size_t n = p->nevents - ctx->first_new, cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	GROW(ctx->ht, ctx->ht_cap, cap);
	ctx->ht_cap = cap;
	memset(ctx->ht, 0, cap * sizeof *ctx->ht);
	ctx->nslots = 0;
	rejects_clear(ctx);
	for (uint32_t e = ctx->first_new; e < p->nevents; e++) {
		char *why = event_reason(ctx, p, e);
		if (why != NULL)
			reject_add(ctx, e, why);
		else
			collapse_one(ctx, p, e);
	}
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
	GROW(ctx->params, ctx->params_cap, k + 3);
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

/*
 * exec_rows runs the upsert (or delete) of table ti for the n events
 * listed in evs, as one statement over unnest() of array literals.
 */
static proto_err
exec_rows(apply_ctx *ctx, const proto_push *p, uint32_t ti,
    const uint32_t *evs, size_t n, bool del, char *sqlstate, char *err,
    size_t errlen)
{
	const apply_map *m = ctx->pmaps[ti];
	size_t k = del ? m->nkey : m->nsend;
	uint32_t ncols = del ? m->nkey : m->ncols;

	arrays_open(ctx, k);
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
	arrays_close(ctx, k, 1);
	ctx->params[0] = ctx->branch;
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
 * slow_one applies one collapsed event under a savepoint. A data error
 * becomes a reject and PROTO_OK; a lost connection or transient error is
 * returned, since the whole batch must then be retried.
 */
static proto_err
slow_one(apply_ctx *ctx, const proto_push *p, uint32_t e, char *sqlstate,
    char *err, size_t errlen)
{
	const proto_event *ev = &p->events[e];
	char why[512];
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
	reject_add(ctx, e, xstrdup(why));
	return simple(ctx,
	    "ROLLBACK TO SAVEPOINT bs_event; RELEASE SAVEPOINT bs_event",
	    sqlstate, err, errlen);
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

/* reject_json writes the key (array) or row (object) of ev as JSON. */
static void
reject_json(
    pgval_buf *b, const proto_table *t, const proto_event *ev, bool row)
{
	pgval_reset(b);
	pgval_putc(b, row ? '{' : '[');
	for (uint32_t i = 0; i < (row ? ev->nvals : t->nkey); i++) {
		if (i > 0)
			pgval_putc(b, ',');
		if (row) {
			pgval_json_str(b, t->cols[i], strlen(t->cols[i]));
			pgval_putc(b, ':');
		}
		pgval_json(b, &ev->vals[i]);
	}
	pgval_putc(b, row ? '}' : ']');
}

/* put_text appends a C string as an array element. */
static void
put_text(pgval_buf *a, const char *s)
{
	proto_value v = {.type = PROTO_STR, .len = (uint32_t) strlen(s)};

	v.u.s = s;
	pgval_array_elem(a, &v);
}

/* insert_rejects records all rejects of the batch in one statement. */
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
		const proto_table *t = &p->tables[ev->table];
		proto_value seq = {.type = PROTO_INT, .u.i = ev->seq};
		for (int j = 0; r > 0 && j < 5; j++)
			pgval_putc(&a[j], ',');
		pgval_array_elem(&a[0], &seq);
		put_text(&a[1], t->name);
		reject_json(&ctx->scratch, t, ev, false);
		put_text(&a[2], ctx->scratch.p);
		if (ev->op == PROTO_OP_UPSERT) {
			reject_json(&ctx->scratch, t, ev, true);
			put_text(&a[3], ctx->scratch.p);
		} else
			pgval_puts(&a[3], "NULL");
		put_text(&a[4], ctx->rejects[r].reason);
	}
	arrays_close(ctx, 5, 2);
	ctx->params[0] = ctx->branch;
	ctx->params[1] = p->hdr.log_id;
	return db_exec(ctx->conn,
	    "INSERT INTO branchsync.reject(branch_id, log_id, seq, tbl, key,"
	    " row, reason) SELECT $1::int, $2, * FROM unnest($3::bigint[],"
	    " $4::text[], $5::jsonb[], $6::jsonb[], $7::text[])",
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

/* update_status adds to branch_status what the agent reported. */
static proto_err
update_status(apply_ctx *ctx, const proto_agent_hdr *h, const char *version,
    int64_t applied, int64_t rejected, char *sqlstate, char *err,
    size_t errlen)
{
	char q[3][24], a[24], r[24];
	const char *params[7] = {ctx->branch, q[0], q[1], q[2], version, a, r};

	snprintf(q[0], sizeof q[0], "%" PRId64, h->queue_events);
	snprintf(q[1], sizeof q[1], "%" PRId64, h->queue_bytes);
	snprintf(q[2], sizeof q[2], "%" PRId64, h->oldest_age_s);
	snprintf(a, sizeof a, "%" PRId64, applied);
	snprintf(r, sizeof r, "%" PRId64, rejected);
	return db_exec(ctx->conn,
	    "INSERT INTO branchsync.branch_status AS s (branch_id, last_seen,"
	    " queue_events, queue_bytes, oldest_age_s, agent_version,"
	    " applied_total, rejected_total)"
	    " VALUES ($1, now(), $2, $3, $4, $5, $6, $7)"
	    " ON CONFLICT (branch_id) DO UPDATE SET last_seen = now(),"
	    " queue_events = EXCLUDED.queue_events,"
	    " queue_bytes = EXCLUDED.queue_bytes,"
	    " oldest_age_s = EXCLUDED.oldest_age_s,"
	    " agent_version = coalesce(EXCLUDED.agent_version,"
	    " s.agent_version),"
	    " applied_total = s.applied_total + EXCLUDED.applied_total,"
	    " rejected_total = s.rejected_total + EXCLUDED.rejected_total",
	    7, params, PGRES_COMMAND_OK, NULL, sqlstate, err, errlen);
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
 * run_txn makes one attempt: the fast path, or with ctx->slow the slow
 * one. On failure the transaction is rolled back and sqlstate tells the
 * caller whether falling back to the slow path makes sense.
 */
static proto_err
run_txn(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	proto_err rv;

	if ((rv = simple(ctx, "BEGIN", sqlstate, err, errlen)) != PROTO_OK
	    || (rv = lock_watermark(ctx, p->hdr.log_id, sqlstate, err, errlen))
	        != PROTO_OK)
		goto fail;
	first_new_event(ctx, p);
	collapse(ctx, p);
	rv = ctx->slow ? apply_slow(ctx, p, sqlstate, err, errlen)
	               : apply_fast(ctx, p, sqlstate, err, errlen);
	if (rv != PROTO_OK
	    || (rv = insert_rejects(ctx, p, sqlstate, err, errlen)) != PROTO_OK
	    || (rv = advance(ctx, p, sqlstate, err, errlen)) != PROTO_OK
	    || (rv = update_status(ctx, &p->hdr, NULL,
	            (int64_t) (p->nevents - ctx->first_new - ctx->nrejects),
	            (int64_t) ctx->nrejects, sqlstate, err, errlen))
	        != PROTO_OK
	    || (rv = simple(ctx, "COMMIT", sqlstate, err, errlen)) != PROTO_OK)
		goto fail;
	return PROTO_OK;
fail:
	if (!db_lost(ctx->conn))
		PQclear(PQexec(ctx->conn, "ROLLBACK"));
	return rv;
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
reject_cmp(const void *a, const void *b)
{
	const apply_reject *x = a, *y = b;

	return x->ev < y->ev ? -1 : x->ev > y->ev;
}

/* fill_ack describes the committed batch. */
static void
fill_ack(apply_ctx *ctx, const proto_push *p, proto_ack *ack)
{
	if (ctx->nrejects > 1) /* qsort(NULL, 0) is undefined */
		qsort(ctx->rejects, ctx->nrejects, sizeof *ctx->rejects,
		    reject_cmp);
	GROW(ctx->outcomes, ctx->outcomes_cap, ctx->nrejects);
	for (size_t r = 0; r < ctx->nrejects; r++) {
		const apply_reject *rj = &ctx->rejects[r];
		ctx->outcomes[r] = (proto_outcome) {
		    p->events[rj->ev].seq, PROTO_OUT_REJECTED, rj->reason};
		log_warn("HUB-REJECT",
		    "branch_id=%s log=%s seq=%" PRId64 " table=\"%s\": %s",
		    ctx->branch, p->hdr.log_id, p->events[rj->ev].seq,
		    p->tables[p->events[rj->ev].table].name, rj->reason);
	}
	memset(ack, 0, sizeof *ack);
	ack->log_id = p->hdr.log_id;
	ack->watermark = ctx->wm_seq;
	ack->tag = ctx->wm_tag;
	ack->duplicates = ctx->first_new;
	ack->applied = (int64_t) (p->nevents - ctx->first_new - ctx->nrejects);
	ack->noutcomes = (uint32_t) ctx->nrejects;
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
apply_push(apply_ctx *ctx, int branch_id, const proto_push *p, proto_ack *ack,
    char *err, size_t errlen)
{
	char sqlstate[6] = "";
	proto_err rv;

	rejects_clear(ctx);
	snprintf(ctx->branch, sizeof ctx->branch, "%d", branch_id);
	if ((rv = check_events(p, err, errlen)) != PROTO_OK
	    || (rv = map_tables(ctx, p, err, errlen)) != PROTO_OK)
		return rv;
	ctx->slow = false;
	rv = run_txn(ctx, p, sqlstate, err, errlen);
	if (rv == PROTO_EDB && !db_lost(ctx->conn)
	    && !db_transient(sqlstate)) {
		log_notice("HUB-APPLY-SLOW",
		    "branch_id=%s log=%s: batch "
		    "failed (%s); applying event by event",
		    ctx->branch, p->hdr.log_id, err);
		rejects_clear(ctx);
		ctx->slow = true;
		rv = run_txn(ctx, p, sqlstate, err, errlen);
	}
	if (rv != PROTO_OK)
		return rv;
	fill_ack(ctx, p, ack);
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
	rv = update_status(ctx, &h->hdr, h->version, 0, 0, NULL, err, errlen);
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
	return PROTO_OK;
}
