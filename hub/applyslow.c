/*
 * applyslow.c: apply's slow path. When the set-based statements of a
 * batch fail for a reason tied to the data, or events are applied again,
 * the batch is redone event by event, each under a SAVEPOINT, so that
 * one bad event is set aside instead of the batch: it becomes a reject,
 * one that fails a foreign key whose parent row was rejected says so,
 * and one that violates a unique constraint besides the key is recorded
 * as a conflict.
 */
#include "apply_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

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
	strbuf key = {0};
	char seq[24];
	const char *params[7] = {ctx->branch, p->hdr.log_id, seq, m->name};
	char *sql, *tcol, *tval, *tcond;
	PGresult *res;
	proto_err rv;

	snprintf(seq, sizeof seq, "%" PRId64, ev->seq);
	applymap_event_json(&key, m, ev, false, false);
	applymap_event_json(&ctx->scratch, m, ev, true, true);
	params[4] = key.p;
	params[5] = ctx->scratch.p;
	/* A till table: the local row carries its till, as in map_detect. */
	applymap_till_sql(m->t, "", &tcol, &tval, &tcond);
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
	strbuf_fini(&key);
	if (rv != PROTO_OK)
		return rv;
	apply_conflict_add(ctx, e,
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
			applymap_event_json(
			    &ctx->scratch, pm, pev, false, false);
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
	strbuf key = {0};
	const char *params[3] = {ctx->branch, par->cfg->name};
	PGresult *res;
	proto_err rv;
	bool first = true;

	strbuf_putc(&key, '[');
	for (int pos = 1; pos <= (int) par->npk; pos++) {
		size_t j = fk->n;
		for (size_t c = 0; c < par->ncols; c++) {
			if (par->cols[c].pk_pos != pos
			    || (int) c == par->branch)
				continue;
			for (j = 0; j < fk->n && fk->pcols[j] != c; j++)
				;
			if (j == fk->n || cidx[j] < 0) {
				strbuf_fini(&key);
				return PROTO_OK; /* key not covered by the FK
				                  */
			}
			strbuf_puts(&key, first ? "" : ",");
			first = false;
			pgval_json(&key, &ev->vals[cidx[j]]);
		}
	}
	strbuf_putc(&key, ']');
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
	strbuf_fini(&key);
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

	if ((rv = apply_sql_run(
	         ctx, "SAVEPOINT bs_event", sqlstate, err, errlen))
	    != PROTO_OK)
		return rv;
	rv = applymap_rows_exec(ctx, p, ev->table, &e, 1,
	    ev->op == PROTO_OP_DELETE, sqlstate, why, sizeof why);
	if (rv == PROTO_OK)
		return apply_sql_run(
		    ctx, "RELEASE SAVEPOINT bs_event", sqlstate, err, errlen);
	if (db_lost(ctx->conn) || db_transient(sqlstate)) {
		snprintf(err, errlen, "%s", why);
		return rv;
	}
	memcpy(state, sqlstate, sizeof state);
	apply_conflicts_truncate(
	    ctx, nconfl); /* rolled back with the savepoint */
	if ((rv = apply_sql_run(ctx,
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
	apply_reject_add(ctx, e, reason != NULL ? reason : xstrdup(why));
	return PROTO_OK;
}

proto_err
applyslow_run(apply_ctx *ctx, const proto_push *p, char *sqlstate, char *err,
    size_t errlen)
{
	proto_err rv;

	/* Check deferred FKs per event, not once at COMMIT for all. */
	if ((rv = apply_sql_run(
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
