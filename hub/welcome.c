/*
 * welcome.c: the WELCOME answer to a HELLO. It tells an agent where its
 * log stands on the hub (watermark and tag), the hub's version and batch
 * limits, and which of its rejected events an operator asked to retry or
 * discarded, so that the agent can resend or drop them.
 */
#include "apply_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

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
	ARRAY_GROW(ctx->wlist, ctx->wlist_cap, n);
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
welcome_fill(apply_ctx *ctx, const char *log_id, proto_welcome *w, char *err,
    size_t errlen)
{
	proto_err rv;

	memset(w, 0, sizeof *w);
	rv = apply_watermark_read(
	    ctx, log_id, false, &w->watermark, &w->tag, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	w->version = BS_VERSION;
	w->max_events = ctx->conf->max_batch_events;
	w->max_bytes = ctx->conf->max_message_bytes;
	return hello_lists(ctx, log_id, w, err, errlen);
}
