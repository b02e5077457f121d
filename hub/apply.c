/*
 * apply.c: the PUSH apply algorithm, and the batch transaction that runs it.
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
 *
 * This file holds the transaction (steps 1, 3 to 6 and 8, the rejects and
 * branch_status bookkeeping) and HELLO's status update. Step 2 and the
 * statements over unnest() are in applymap.c, step 7 in applyslow.c, the
 * rest of the WELCOME in welcome.c (apply_int.h lists them).
 */
#include "apply_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "siphash.h"

/*
 * A batch may hold thousands of rejected or conflicting events: their
 * lines are limited (each one is recorded in branchsync.reject or
 * branchsync.conflict anyway).
 */
static log_limit reject_log = LOG_LIMIT_DEFAULT;
static log_limit conflict_log = LOG_LIMIT_DEFAULT;

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

void
apply_conflicts_truncate(apply_ctx *ctx, size_t n)
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
	applymap_cache_clear(ctx);
	rejects_clear(ctx);
	apply_conflicts_truncate(ctx, 0);
	for (size_t i = 0; i < ctx->narrays; i++)
		strbuf_fini(&ctx->arrays[i]);
	strbuf_fini(&ctx->scratch);
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
	/* Nothing server-side is cached yet, but keep the rule apply_sql_run.
	 */
	applymap_cache_clear(ctx);
	ctx->conn = conn;
}

/* ---- collapsing ------------------------------------------------------ */

/*
 * apply_key_hash hashes a table index and key values with SipHash under
 * the process's secret key: a branch cannot choose keys that collide, so
 * collapsing a batch stays linear whatever keys it sends.
 */
uint64_t
apply_key_hash(uint32_t table, const proto_value *v, uint32_t n)
{
	siphash s;

	siphash_init(&s, siphash_process_key());
	siphash_feed(&s, &table, sizeof table);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t type = (uint8_t) v[i].type;
		uint64_t len;
		siphash_feed(&s, &type, 1);
		switch (v[i].type) {
		case PROTO_INT:
			siphash_feed(&s, &v[i].u.i, sizeof v[i].u.i);
			break;
		case PROTO_FLOAT:
			siphash_feed(&s, &v[i].u.f, sizeof v[i].u.f);
			break;
		case PROTO_BOOL:
			siphash_feed(&s, &v[i].u.b, sizeof v[i].u.b);
			break;
		case PROTO_STR:
		case PROTO_BIN:
			/* the length first: ("ab","c") and ("a","bc") differ
			 */
			len = v[i].len;
			siphash_feed(&s, &len, sizeof len);
			siphash_feed(&s, v[i].u.p, v[i].len);
			break;
		default:
			break;
		}
	}
	return siphash_final(&s);
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
	size_t h = (size_t) apply_key_hash(ev->table, ev->vals, nkey) & mask;

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
	ARRAY_GROW(ctx->slots, ctx->slots_cap, ctx->nslots + 1);
	ctx->slots[ctx->nslots] = (apply_slot) {ev->table, e};
	ctx->ht[h] = (uint32_t) ++ctx->nslots;
}

void
apply_reject_add(apply_ctx *ctx, uint32_t e, char *reason)
{
	ARRAY_GROW(ctx->rejects, ctx->rejects_cap, ctx->nrejects + 1);
	ctx->rejects[ctx->nrejects++] = (apply_reject) {e, reason};
}

void
apply_conflict_add(apply_ctx *ctx, uint32_t e, char *reason)
{
	ARRAY_GROW(ctx->confl, ctx->confl_cap, ctx->nconfl + 1);
	ctx->confl[ctx->nconfl++] = (apply_reject) {e, reason};
}

/* collapse_ev rejects event e up front or collapses it. */
static void
collapse_ev(apply_ctx *ctx, const proto_push *p, uint32_t e)
{
	char *why = applymap_event_reason(ctx, p, e);

	if (why != NULL)
		apply_reject_add(ctx, e, why);
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
	ARRAY_GROW(ctx->ht, ctx->ht_cap, cap);
	ctx->ht_cap = cap;
	memset(ctx->ht, 0, cap * sizeof *ctx->ht);
	ctx->nslots = 0;
	rejects_clear(ctx);
	apply_conflicts_truncate(ctx, 0);
	for (size_t r = 0; r < ctx->nredo; r++)
		collapse_ev(ctx, p, ctx->redo[r]);
	for (uint32_t e = ctx->first_new; e < p->nevents; e++)
		collapse_ev(ctx, p, e);
}

uint32_t
apply_event_find(const proto_push *p, int64_t seq)
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

/* ---- fast path ------------------------------------------------------- */

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
			ARRAY_GROW(
			    ctx->torder, ctx->torder_cap, ctx->ntorder + 1);
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

	ARRAY_GROW(ctx->evs, ctx->evs_cap, ctx->nslots);
	for (size_t s = 0; s < ctx->nslots; s++) {
		const apply_slot *sl = &ctx->slots[s];
		if (sl->table == ti && p->events[sl->ev].op == want)
			ctx->evs[n++] = sl->ev;
	}
	if (n == 0)
		return PROTO_OK;
	return applymap_rows_exec(
	    ctx, p, ti, ctx->evs, n, del, sqlstate, err, errlen);
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

proto_err
apply_sql_run(
    apply_ctx *ctx, const char *sql, char *sqlstate, char *err, size_t errlen)
{
	return db_exec(ctx->conn, sql, 0, NULL, PGRES_COMMAND_OK, NULL,
	    sqlstate, err, errlen);
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
	strbuf *a;

	if (ctx->nrejects == 0)
		return PROTO_OK;
	applymap_arrays_open(ctx, 5);
	a = ctx->arrays;
	for (size_t r = 0; r < ctx->nrejects; r++) {
		const proto_event *ev = &p->events[ctx->rejects[r].ev];
		const apply_map *m = ctx->pmaps[ev->table];
		proto_value seq = {.type = PROTO_INT, .u.i = ev->seq};
		for (int j = 0; r > 0 && j < 5; j++)
			strbuf_putc(&a[j], ',');
		pgval_array_elem(&a[0], &seq);
		applymap_text_put(&a[1], m->name);
		applymap_event_json(&ctx->scratch, m, ev, false, false);
		applymap_text_put(&a[2], ctx->scratch.p);
		if (ev->op == PROTO_OP_UPSERT) {
			applymap_event_json(&ctx->scratch, m, ev, true, false);
			applymap_text_put(&a[3], ctx->scratch.p);
		} else
			strbuf_puts(&a[3], "NULL");
		applymap_text_put(&a[4], ctx->rejects[r].reason);
	}
	applymap_arrays_close(ctx, 5, 2);
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

proto_err
apply_watermark_read(apply_ctx *ctx, const char *log_id, bool lock,
    int64_t *seq, int64_t *tag, char *sqlstate, char *err, size_t errlen)
{
	const char *params[2] = {ctx->branch, log_id};
	PGresult *res;
	proto_err rv;

	rv = db_exec(ctx->conn,
	    lock ? "SELECT seq, tag FROM branchsync.watermark"
	           " WHERE branch_id = $1 AND log_id = $2 FOR UPDATE"
	         : "SELECT seq, tag FROM branchsync.watermark"
	           " WHERE branch_id = $1 AND log_id = $2",
	    2, params, PGRES_TUPLES_OK, &res, sqlstate, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	*seq = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
	                           : 0;
	*tag = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10)
	                           : 0;
	PQclear(res);
	return PROTO_OK;
}

/*
 * lock_watermark creates and locks the log's row, reading seq and tag. A
 * branch (with its tills) keeps at most max_logs_per_branch logs: each
 * POS file set up with "init" is a new one, and each costs a row for
 * ever, so a branch that made them without end would grow the table
 * without end. Past the limit a new log is refused, with a reason.
 */
static proto_err
lock_watermark(apply_ctx *ctx, const char *log_id, char *sqlstate, char *err,
    size_t errlen)
{
	char max[24];
	const char *params[3] = {ctx->branch, log_id, max};
	PGresult *res = NULL;
	proto_err rv;

	snprintf(max, sizeof max, "%" PRId64, ctx->conf->max_logs_per_branch);
	rv = db_exec(ctx->conn,
	    "INSERT INTO branchsync.watermark(branch_id, log_id)"
	    " SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM"
	    " branchsync.watermark WHERE branch_id = $1 AND log_id = $2)"
	    " AND (SELECT count(*) FROM branchsync.watermark"
	    " WHERE branch_id = $1) < $3::bigint ON CONFLICT DO NOTHING",
	    3, params, PGRES_COMMAND_OK, NULL, sqlstate, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	rv = db_exec(ctx->conn,
	    "SELECT seq, tag FROM branchsync.watermark"
	    " WHERE branch_id = $1 AND log_id = $2 FOR UPDATE",
	    2, params, PGRES_TUPLES_OK, &res, sqlstate, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	if (PQntuples(res) != 1) {
		PQclear(res);
		snprintf(err, errlen,
		    "log %s would be this branch's log number %" PRId64
		    " (max_logs_per_branch); the logs of POS files no longer "
		    "in use can be deleted from branchsync.watermark",
		    log_id, ctx->conf->max_logs_per_branch + 1);
		return PROTO_ETOOBIG;
	}
	ctx->wm_seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	ctx->wm_tag = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
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
 * of every table that has one (see applymap_till_sql), for this transaction
 * only: the till's id for an integer column, its code for a text column; 0 and
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
		uint32_t e = apply_event_find(
		    p, strtoll(PQgetvalue(res, i, 0), NULL, 10));
		if (e < ctx->first_new) {
			ARRAY_GROW(ctx->redo, ctx->redo_cap, ctx->nredo + 1);
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
	strbuf *a = &ctx->scratch;
	const char *params[3] = {ctx->branch, p->hdr.log_id};

	*nresolved = 0;
	if (ctx->nredo == 0)
		return PROTO_OK;
	if (ctx->nrejects > 1)
		qsort(ctx->rejects, ctx->nrejects, sizeof *ctx->rejects,
		    reject_cmp);
	strbuf_reset(a);
	strbuf_putc(a, '{');
	for (size_t r = 0; r < ctx->nredo; r++) {
		proto_value seq = {.type = PROTO_INT};
		if (is_rejected(ctx, ctx->redo[r]))
			continue;
		seq.u.i = p->events[ctx->redo[r]].seq;
		if ((*nresolved)++ > 0)
			strbuf_putc(a, ',');
		pgval_array_elem(a, &seq);
	}
	strbuf_putc(a, '}');
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

	if ((rv = apply_sql_run(ctx, "BEGIN", sqlstate, err, errlen))
	        != PROTO_OK
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
	rv = ctx->slow ? applyslow_run(ctx, p, sqlstate, err, errlen)
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
	    || (rv = apply_sql_run(ctx, "COMMIT", sqlstate, err, errlen))
	        != PROTO_OK)
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
	char who[LOG_WHO_MAX];
	size_t n = 0;

	ARRAY_GROW(
	    ctx->outcomes, ctx->outcomes_cap, ctx->nrejects + ctx->nconfl);
	for (size_t r = 0; r < ctx->nrejects; r++) {
		const apply_reject *rj = &ctx->rejects[r];
		ctx->outcomes[n++] = (proto_outcome) {
		    p->events[rj->ev].seq, PROTO_OUT_REJECTED, rj->reason};
		log_limited(&reject_log, LOG_LVL_WARN, "HUB-REJECT",
		    "%s log=%s seq=%" PRId64 " table=\"%s\": %s",
		    log_who(who, sizeof who, p->hdr.branch, p->hdr.till),
		    p->hdr.log_id, p->events[rj->ev].seq,
		    p->tables[p->events[rj->ev].table].name, rj->reason);
	}
	for (size_t c = 0; c < ctx->nconfl; c++) {
		const apply_reject *cf = &ctx->confl[c];
		ctx->outcomes[n++] = (proto_outcome) {
		    p->events[cf->ev].seq, PROTO_OUT_CONFLICT, cf->reason};
		log_limited(&conflict_log, LOG_LVL_NOTICE, "HUB-CONFLICT",
		    "%s log=%s seq=%" PRId64 " table=\"%s\": %s",
		    log_who(who, sizeof who, p->hdr.branch, p->hdr.till),
		    p->hdr.log_id, p->events[cf->ev].seq,
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

proto_err
apply_check(apply_ctx *ctx, const proto_push *p, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = check_events(p, err, errlen)) != PROTO_OK)
		return rv;
	return applymap_tables_get(ctx, p, err, errlen);
}

char *
apply_event_reason(apply_ctx *ctx, const proto_push *p, uint32_t e)
{
	return applymap_event_reason(ctx, p, e);
}

proto_err
apply_push(apply_ctx *ctx, int branch_id, const proto_push *p, proto_ack *ack,
    char *err, size_t errlen)
{
	char sqlstate[6] = "";
	proto_err rv;

	rejects_clear(ctx);
	apply_conflicts_truncate(ctx, 0);
	ctx->nredo = 0;
	snprintf(ctx->branch, sizeof ctx->branch, "%d", branch_id);
	if ((rv = apply_check(ctx, p, err, errlen)) != PROTO_OK)
		return rv;
	ctx->slow = false;
	rv = run_txn(ctx, p, sqlstate, err, errlen);
	if (rv == PROTO_EDB && !ctx->slow && !db_lost(ctx->conn)
	    && !db_transient(sqlstate)) {
		char who[LOG_WHO_MAX];
		log_notice("HUB-APPLY-SLOW",
		    "%s log=%s: batch failed (%s); applying event by event",
		    log_who(who, sizeof who, p->hdr.branch, p->hdr.till),
		    p->hdr.log_id, err);
		rejects_clear(ctx);
		apply_conflicts_truncate(ctx, 0);
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
	proto_err rv;

	snprintf(ctx->branch, sizeof ctx->branch, "%d", branch_id);
	rv = update_status(
	    ctx, &h->hdr, h->version, 0, 0, 0, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	return welcome_fill(ctx, h->hdr.log_id, w, err, errlen);
}
