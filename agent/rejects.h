/*
 * rejects.h: entries the hub rejected, seen from the branch.
 *
 * A rejected entry stays in _branchsync_log with its reason in err. An
 * operator retries it ("branchsync-agent rejects retry", or at the hub,
 * which a WELCOME lists): it is marked retry = 1 and sent again in a
 * retry batch of its own, whose ACK never moves acked_seq; or discards
 * it: the entry is deleted, except the marker row (seq == acked_seq),
 * which only loses err and retry.
 */
#ifndef AGENT_REJECTS_H
#define AGENT_REJECTS_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox.h"
#include "proto/err.h"
#include "proto/msg.h"

/* One rejected (or retried) log entry, for "rejects list". */
typedef struct {
	int64_t seq;  /* its seq */
	char *table;  /* its table */
	int op;       /* 1 insert, 2 update, 3 delete */
	char *key;    /* the key as a JSON array */
	char *reason; /* why the hub rejected it; NULL while retried */
	bool retry;   /* waiting to be sent again */
	int64_t ts;   /* capture time, epoch s, 0 if unknown */
} rejects_entry;

/*
 * rejects_read fills push with the entries marked for retry (seq
 * order, at most max_events, about max_bytes), rows read now as in
 * outbox_read. push->nevents == 0 when there are none. PROTO_OK or
 * PROTO_EDB.
 */
proto_err rejects_read(outbox *ob, size_t max_events, size_t max_bytes,
    proto_arena *arena, proto_push *push, char *err, size_t errlen);

/*
 * rejects_waiting sets *yes when an entry waits to be retried (cheap:
 * retried entries lie at or below acked_seq).
 */
proto_err rejects_waiting(outbox *ob, bool *yes, char *err, size_t errlen);

/*
 * rejects_ack processes the ACK of a retry batch: REJECTED keeps the
 * entry with the new reason (retry cleared); CONFLICT and DUPLICATE
 * outcomes, and events the hub counted as duplicates, end the entry;
 * other events were applied now: the row is marked synced by the usual
 * value comparison and the entry ends. An ended entry is deleted, except
 * the marker row (seq == acked_seq), whose retry is cleared. dups is the
 * ACK's duplicates count: when it cannot tell which events without an
 * outcome were duplicates, none of them marks its row. acked_seq never
 * moves. Records the ACK time. PROTO_OK or PROTO_EDB.
 */
proto_err rejects_ack(outbox *ob, const proto_push *sent, int64_t dups,
    const proto_outcome *outs, size_t n, char *err, size_t errlen);

/*
 * rejects_retry marks rejected entries for retry: err = NULL and
 * retry = 1 (an entry above acked_seq, never sent, only loses its err and
 * is sent as a pending event). seqs NULL: all rejected entries. With
 * strict, a seq that is not a rejected entry is an error (PROTO_EINVAL,
 * nothing changed); otherwise it is skipped. *changed counts the entries
 * changed. One short write transaction on db; works while "run" runs.
 */
proto_err rejects_retry(sqlite3 *db, const int64_t *seqs, size_t n,
    bool strict, int64_t *changed, char *err, size_t errlen);

/*
 * rejects_discard drops rejected (or retried) entries: deleted,
 * except the marker row (seq == acked_seq), which only loses err and
 * retry. Arguments as for rejects_retry.
 */
proto_err rejects_discard(sqlite3 *db, const int64_t *seqs, size_t n,
    bool strict, int64_t *changed, char *err, size_t errlen);

/*
 * rejects_welcome applies a WELCOME's lists: rejected entries with a
 * seq in retry are marked for retry, those in discard are discarded; other
 * seqs are skipped. *nretry and *ndiscard count the entries changed.
 */
proto_err rejects_welcome(outbox *ob, const proto_welcome *w, int64_t *nretry,
    int64_t *ndiscard, char *err, size_t errlen);

/*
 * rejects_list lists rejected and retried entries in seq order into a
 * new array *out of *n entries; free with rejects_list_free.
 */
proto_err rejects_list(
    outbox *ob, rejects_entry **out, size_t *n, char *err, size_t errlen);

void rejects_list_free(rejects_entry *r, size_t n);

#endif /* AGENT_REJECTS_H */
