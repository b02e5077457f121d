/*
 * rejects.c: entries the hub rejected, seen from the branch: retry
 * batches and their ACKs, and the retry and discard asked by
 * "branchsync-agent rejects" or by a WELCOME's lists.
 */
#include "rejects.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "outbox_int.h"
#include "platform.h"
#include "util.h"

proto_err
rejects_read(outbox *ob, size_t max_events, size_t max_bytes,
    proto_arena *arena, proto_push *push, char *err, size_t errlen)
{
	return outbox_read_any(
	    ob, true, 0, max_events, max_bytes, arena, push, err, errlen);
}

proto_err
rejects_waiting(outbox *ob, bool *yes, char *err, size_t errlen)
{
	int64_t v;

	return outbox_scalar(
	    ob, ob->retry_any, ob->acked_seq, yes, &v, err, errlen);
}

/* Steps st (bound), resets it and clears its bindings. */
static proto_err
step_done(
    sqlite3 *db, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
	proto_err rv = PROTO_OK;

	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_fail(db, what, err, errlen);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rv;
}

/*
 * One event of a retry batch. ev->seq's entry ends unless rejected again;
 * an applied event marks its row synced first (value comparison).
 */
static proto_err
retry_one(outbox *ob, const proto_event *ev, ob_ack_ctx *c, bool applied,
    char *err, size_t errlen)
{
	const proto_outcome *out
	    = outbox_outcome_find(c->outs, c->nouts, &c->oi, ev->seq);
	const proto_event *mev;
	ob_table *ot = NULL;
	sqlite3_stmt *st;
	proto_err rv;

	if (out != NULL && out->code == PROTO_OUT_REJECTED) {
		st = outbox_err_bind(ob, ev->seq, out);
		return step_done(
		    ob->db, st, "could not process an ack", err, errlen);
	}
	if (ev->table < c->sent->ntables)
		ot = outbox_table_find(ob, c->sent->tables[ev->table].name);
	if (out == NULL && applied && ot != NULL && ot->synced != NULL
	    && (mev = outbox_ack_markable(c, ev->seq)) != NULL
	    && mev->nvals == ot->t.ncols) {
		st = ot->synced;
		for (uint32_t i = 0; i < mev->nvals; i++)
			db_bind_value(st, (int) i + 1, &mev->vals[i]);
		if ((rv = step_done(
		         ob->db, st, "could not process an ack", err, errlen))
		    != PROTO_OK)
			return rv;
	}
	/* The marker row stays: it holds max(seq) and the acked tag. */
	st = ev->seq == ob->acked_seq ? ob->retry_clr : ob->retry_del;
	sqlite3_bind_int64(st, 1, ev->seq);
	return step_done(ob->db, st, "could not process an ack", err, errlen);
}

proto_err
rejects_ack(outbox *ob, const proto_push *sent, int64_t dups,
    const proto_outcome *outs, size_t n, char *err, size_t errlen)
{
	ob_ack_ctx c = {sent, 0, outs, n, NULL, 0, 0, 0};
	size_t nnone = 0, oi = 0, i = 0;
	bool applied;
	proto_err rv = PROTO_OK;

	for (size_t k = 0; k < sent->nevents; k++)
		nnone += outbox_outcome_find(outs, n, &oi, sent->events[k].seq)
		    == NULL;
	/*
	 * The hub counts events it skipped as applied before (their reject
	 * was resolved or discarded there) but does not say which: without
	 * per-event DUPLICATE outcomes only "none" or "all" is certain.
	 */
	applied = dups <= 0;
	c.dups = applied ? 0 : sent->nevents;
	if (!applied && (uint64_t) dups < nnone)
		log_debug("AGENT-RETRY-ACK",
		    "%" PRId64 " of %zu retried events were duplicates; "
		    "their rows are not marked synced",
		    dups, nnone);
	outbox_ack_block(&c);
	while (rv == PROTO_OK && i < sent->nevents) {
		int64_t t0 = plat_mono_us();
		size_t end = i + OUTBOX_ACK_CHUNK < sent->nevents
		    ? i + OUTBOX_ACK_CHUNK
		    : sent->nevents;
		if ((rv = db_exec(ob->db, "BEGIN IMMEDIATE", err, errlen))
		    != PROTO_OK)
			break;
		for (; i < end && rv == PROTO_OK; i++)
			rv = retry_one(
			    ob, &sent->events[i], &c, applied, err, errlen);
		if (rv == PROTO_OK
		    && (rv = outbox_meta_put(
		            ob, "last_ack", outbox_now_s(), err, errlen))
		        == PROTO_OK)
			rv = db_exec(ob->db, "COMMIT", err, errlen);
		if (rv != PROTO_OK)
			db_rollback(ob->db);
		else if (i < sent->nevents)
			outbox_ack_yield(ob, plat_mono_us() - t0);
	}
	free(c.blocked);
	return rv;
}

/* "seq = ?1" for one seq, or every entry for ?1 NULL. */
#define SEQ_MATCH "(?1 IS NULL OR seq = ?1)"
#define ACKED_SEQ                                                             \
	"(SELECT value FROM _branchsync_meta WHERE name = 'acked_seq')"

/* Runs the statements of sql for each seq (or once for all). */
static proto_err
reject_change(sqlite3 *db, const char *const *sql, size_t nsql,
    const int64_t *seqs, size_t n, bool strict, int64_t *changed, char *err,
    size_t errlen)
{
	sqlite3_stmt *st[2] = {NULL, NULL};
	proto_err rv;

	*changed = 0;
	if ((rv = db_exec(db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	for (size_t i = 0; i < nsql && rv == PROTO_OK; i++)
		rv = db_prepare(db, sql[i], &st[i], err, errlen);
	for (size_t k = 0; k < (seqs != NULL ? n : 1) && rv == PROTO_OK; k++) {
		int64_t c = 0;
		for (size_t i = 0; i < nsql && rv == PROTO_OK; i++) {
			if (seqs != NULL)
				sqlite3_bind_int64(st[i], 1, seqs[k]);
			rv = step_done(db, st[i], "could not change the log",
			    err, errlen);
			c += sqlite3_changes(db);
		}
		if (rv == PROTO_OK && c == 0 && strict && seqs != NULL) {
			snprintf(err, errlen,
			    "no rejected entry with seq %" PRId64
			    " in _branchsync_log",
			    seqs[k]);
			rv = PROTO_EINVAL;
		}
		*changed += c;
	}
	for (size_t i = 0; i < nsql; i++)
		sqlite3_finalize(st[i]);
	if (rv == PROTO_OK)
		rv = db_exec(db, "COMMIT", err, errlen);
	if (rv != PROTO_OK) {
		db_rollback(db);
		*changed = 0;
	}
	return rv;
}

proto_err
rejects_retry(sqlite3 *db, const int64_t *seqs, size_t n, bool strict,
    int64_t *changed, char *err, size_t errlen)
{
	/* Above acked_seq an entry was never acknowledged (set aside as of
	 * an unknown table): it is just pending again. */
	static const char *const sql[] = {
	    "UPDATE _branchsync_log SET err = NULL, retry = CASE WHEN seq > "
	    "" ACKED_SEQ " THEN NULL ELSE 1 END WHERE err IS NOT NULL AND "
	    "" SEQ_MATCH,
	};

	return reject_change(
	    db, sql, ARRAY_LEN(sql), seqs, n, strict, changed, err, errlen);
}

proto_err
rejects_discard(sqlite3 *db, const int64_t *seqs, size_t n, bool strict,
    int64_t *changed, char *err, size_t errlen)
{
	static const char *const sql[] = {
	    "DELETE FROM _branchsync_log WHERE (err IS NOT NULL OR retry = 1) "
	    "AND seq IS NOT " ACKED_SEQ " AND " SEQ_MATCH,
	    "UPDATE _branchsync_log SET err = NULL, retry = NULL WHERE (err "
	    "IS NOT NULL OR retry = 1) AND seq IS " ACKED_SEQ
	    " AND " SEQ_MATCH,
	};

	return reject_change(
	    db, sql, ARRAY_LEN(sql), seqs, n, strict, changed, err, errlen);
}

proto_err
rejects_welcome(outbox *ob, const proto_welcome *w, int64_t *nretry,
    int64_t *ndiscard, char *err, size_t errlen)
{
	proto_err rv = PROTO_OK;

	*nretry = *ndiscard = 0;
	if (w->nretry > 0)
		rv = rejects_retry(
		    ob->db, w->retry, w->nretry, false, nretry, err, errlen);
	if (rv == PROTO_OK && w->ndiscard > 0)
		rv = rejects_discard(ob->db, w->discard, w->ndiscard, false,
		    ndiscard, err, errlen);
	return rv;
}

static char *
col_dup(sqlite3_stmt *st, int i)
{
	const char *t = (const char *) sqlite3_column_text(st, i);
	return t != NULL ? xstrdup(t) : NULL;
}

proto_err
rejects_list(
    outbox *ob, rejects_entry **out, size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rv = db_prepare(ob->db,
	         "SELECT seq, tbl, op, k, CASE typeof(k) WHEN 'blob' THEN "
	         "json_array(json_object('b', hex(k))) ELSE json_array(k) "
	         "END, "
	         "err, retry IS 1, "
	         "coalesce(ts, 0) FROM _branchsync_log WHERE err IS NOT NULL "
	         "OR retry = 1 ORDER BY seq",
	         &st, err, errlen))
	    != PROTO_OK)
		return rv;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rejects_entry *r;
		const char *tbl = (const char *) sqlite3_column_text(st, 1);
		ob_table *ot = outbox_table_find(ob, tbl != NULL ? tbl : "");
		*out = xrealloc(*out, (*n + 1) * sizeof **out);
		r = &(*out)[(*n)++];
		r->seq = sqlite3_column_int64(st, 0);
		r->table = xstrdup(tbl != NULL ? tbl : "");
		r->op = sqlite3_column_int(st, 2);
		/* A composite key is stored as its JSON array already. */
		r->key = col_dup(st, ot != NULL && ot->t.nkey > 1 ? 3 : 4);
		r->reason = col_dup(st, 5);
		r->retry = sqlite3_column_int(st, 6);
		r->ts = sqlite3_column_int64(st, 7);
	}
	if (rc != SQLITE_DONE)
		rv = db_fail(
		    ob->db, "could not read _branchsync_log", err, errlen);
	sqlite3_finalize(st);
	if (rv != PROTO_OK) {
		rejects_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rv;
}

void
rejects_list_free(rejects_entry *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].table);
		free(r[i].key);
		free(r[i].reason);
	}
	free(r);
}
