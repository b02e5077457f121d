/*
 * apply.h: applying HELLO and PUSH requests to PostgreSQL.
 *
 * A PUSH is applied in one transaction (see apply.c for the algorithm):
 * the (branch, log_id) watermark row is locked, events at or below it are
 * duplicates, the rest are collapsed to the last event per (table, key) and
 * written with one set-based statement per table and kind. If that fails
 * for a reason tied to the data, the batch is retried event by event under
 * savepoints and the failing events are recorded in branchsync.reject.
 * Events at or below the watermark that still have an open or retry
 * reject are applied again (an operator's retry, or a resend after a lost
 * ACK). Tables with a conflict policy record the rows they keep out in
 * branchsync.conflict. HELLO answers with the seqs an operator asked to
 * retry or discarded.
 *
 * An apply_ctx belongs to one worker thread and one PostgreSQL connection;
 * it caches per table shape the SQL it built, and keeps its buffers between
 * requests so a steady stream of batches allocates nothing.
 */
#ifndef HUB_APPLY_H
#define HUB_APPLY_H

#include <libpq-fe.h>
#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "proto/msg.h"

typedef struct apply_ctx apply_ctx;

/*
 * apply_new returns a context for one worker. conf and cat are borrowed
 * and must outlive it. Aborts on OOM like every xmalloc user.
 */
apply_ctx *apply_new(const hub_config *conf, const catalog *cat);

/* apply_free frees ctx (not its connection); apply_free(NULL) is a no-op. */
void apply_free(apply_ctx *ctx);

/*
 * apply_set_conn makes ctx use conn (borrowed; NULL while disconnected)
 * and forgets whatever was tied to the previous connection.
 */
void apply_set_conn(apply_ctx *ctx, PGconn *conn);

/*
 * apply_set_till says which till the next apply_hello and apply_push act
 * for: its id (branchsync.till.id, 0 for the branch's own key) and code
 * (NULL for none; copied), as authenticated. Its status row is the one
 * updated, and up tables with a till_column get the till in that column
 * (the id for an integer column, the code for a text one).
 */
void apply_set_till(apply_ctx *ctx, int till_id, const char *till);

/*
 * apply_hello records the agent's reported state in branch_status and
 * fills w with the watermark and tag of (branch_id, hello log_id), 0 if
 * unknown, and the retry and discard seq lists of that log (owned by ctx,
 * valid until its next call). PROTO_EDB with a reason in err on failure.
 */
proto_err apply_hello(apply_ctx *ctx, int branch_id, const proto_hello *h,
    proto_welcome *w, char *err, size_t errlen);

/* The longest log_id a request may carry (the agent's are 32 hex digits). */
#define APPLY_LOG_ID_MAX 64

/*
 * apply_check_hdr checks the shape of a request's header before it is
 * authenticated: log_id present and at most APPLY_LOG_ID_MAX bytes (the
 * decoder has already refused names that are not UTF-8). PROTO_OK, or
 * PROTO_EPROTO with the reason in err.
 */
proto_err apply_check_hdr(const proto_agent_hdr *h, char *err, size_t errlen);

/*
 * apply_check is the part of apply_push that needs no database: seqs
 * strictly increase, every event fits its table, and every pushed table
 * shape is mapped onto the allow-list (the [table] sections and the
 * catalog), or given the reason its events are rejected. PROTO_OK, or
 * PROTO_EPROTO with err (nothing of the batch can be applied).
 */
proto_err apply_check(
    apply_ctx *ctx, const proto_push *p, char *err, size_t errlen);

/*
 * apply_event_reason, after apply_check returned PROTO_OK for p, returns
 * why event e would be rejected before any SQL (its table is not on the
 * allow-list or its shape does not fit, a key value is NULL, a value
 * holds a NUL byte), as a
 * string the caller frees; NULL if the event goes to PostgreSQL.
 */
char *apply_event_reason(apply_ctx *ctx, const proto_push *p, uint32_t e);

/*
 * apply_push applies an authenticated PUSH and fills ack. Strings and
 * outcomes in ack are owned by ctx and valid until its next call.
 * Returns PROTO_OK (committed; some events may be rejected or recorded
 * as conflicts, see the outcomes), PROTO_EPROTO (seqs not strictly increasing
 * or a malformed event: nothing applied) or PROTO_EDB (nothing applied; may be
 * retried; the connection may be lost). err says why.
 */
proto_err apply_push(apply_ctx *ctx, int branch_id, const proto_push *p,
    proto_ack *ack, char *err, size_t errlen);

#endif /* HUB_APPLY_H */
