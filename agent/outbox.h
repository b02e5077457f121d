/*
 * outbox.h: the branch log in the POS file, seen from the sending side.
 *
 * The capture triggers append (seq, tbl, op, k, tag) rows to
 * _branchsync_log; the outbox reads the pending ones (seq > acked_seq, no
 * err) into a PUSH together with the rows' current values, and processes
 * ACKs: it marks rows synced, records rejects and deletes acknowledged log
 * entries, always keeping the newest acknowledged entry as a marker so
 * max(seq) never goes back and a seq is never reused.
 *
 * Transactions on the POS file are short: one read transaction per batch,
 * one BEGIN IMMEDIATE transaction per ack chunk of at most
 * OUTBOX_ACK_CHUNK events (OUTBOX_ACK_CHUNK_QUIET while the POS has not
 * written for a second); while the POS is writing, the agent also keeps
 * its share of the write lock near 1% (see outbox_ack_yield in outbox.c).
 * Retry batches and the rejects are in rejects.h.
 */
#ifndef AGENT_OUTBOX_H
#define AGENT_OUTBOX_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proto/err.h"
#include "proto/msg.h"

#define OUTBOX_ACK_CHUNK 64
/* The chunk while the POS has not written for a second (outbox.c). */
#define OUTBOX_ACK_CHUNK_QUIET 512

/*
 * The err of an entry set aside because its table is not configured, or
 * no longer fits capture (schemawatch.h requeues those once it does).
 */
#define OUTBOX_UNKNOWN_TABLE                                                  \
	"table is not configured in the agent or cannot be captured"

typedef struct outbox outbox;

/* Counters of the local log. */
typedef struct {
	int64_t acked_seq;   /* last seq the hub acknowledged */
	int64_t acked_tag;   /* tag of that entry */
	int64_t high_seq;    /* largest seq in the log (0 if empty) */
	int64_t pending;     /* events waiting to be sent */
	int64_t rejected;    /* entries the hub rejected (exact mode only) */
	int64_t retry;       /* entries waiting to be retried (exact only) */
	int64_t queue_bytes; /* approximate bytes waiting */
	int64_t oldest_ts;   /* capture time (epoch s) of the oldest pending
	                        event; 0 if none is pending or it has no ts */
	int64_t last_ack;    /* epoch s of the last ACK (meta), 0 if never */
} outbox_counts;

/* Outbox warning conditions, a bit set. */
enum {
	OUTBOX_WARN_EVENTS = 1, /* at least outbox_warn_events pending */
	OUTBOX_WARN_AGE = 2,    /* oldest pending at least outbox_warn_age_s */
};

/* What a WELCOME's watermark says about the local log. */
typedef enum {
	OUTBOX_ID_NEW_HUB,    /* watermark 0: the hub knows nothing of it */
	OUTBOX_ID_TRUST,      /* the watermark is ours: ack up to it */
	OUTBOX_ID_RESTORED,   /* the POS file was restored: new log id */
	OUTBOX_ID_HUB_BEHIND, /* below acked_seq: the hub lost acked events */
} outbox_id_decision;

/*
 * outbox_id_decide is the log identity check, as a pure function. w and t
 * are the WELCOME's watermark and tag; have_entry and entry_tag describe
 * the local log entry at seq w (the marker row when w == acked_seq).
 */
outbox_id_decision outbox_id_decide(int64_t acked_seq, int64_t high_seq,
    int64_t w, int64_t t, bool have_entry, int64_t entry_tag);

/* outbox_id_name returns a word for d, for logs and tests. */
const char *outbox_id_name(outbox_id_decision d);

/*
 * outbox_open opens conf->database (read-write, busy timeout), checks that
 * init was run, reads the log identity and the configured tables' layout
 * and prepares all statements. An up table that cannot be captured (gone,
 * key column gone: see capture_describe) is left out, as if it were not
 * configured; schemawatch.h says why. conf must outlive the outbox.
 * Errors: PROTO_EDB, PROTO_EINVAL (init not run), with a message in err.
 * On PROTO_OK the caller frees *out with outbox_close.
 */
proto_err outbox_open(
    const agent_config *conf, outbox **out, char *err, size_t errlen);

/* outbox_close finalizes and closes; outbox_close(NULL) does nothing. */
void outbox_close(outbox *ob);

/* outbox_log_id returns the current log id (borrowed, 32 hex digits). */
const char *outbox_log_id(const outbox *ob);

/* outbox_db returns the connection (borrowed), for tests and status. */
sqlite3 *outbox_db(outbox *ob);

/*
 * outbox_read fills push->tables and push->events with the next pending
 * events in seq order after seq max(after, acked_seq) (so the next batch
 * can be read while the previous one waits for its ACK processing): at
 * most max_events, and stopping after about max_bytes of values (at least
 * one event). Row values are read in the
 * same read transaction as the log rows. All memory comes from arena,
 * which the caller owns and resets; push->hdr is not touched. Events of
 * tables that are not configured are set aside with an err. Returns
 * PROTO_OK (push->nevents == 0: nothing pending) or PROTO_EDB.
 */
proto_err outbox_read(outbox *ob, int64_t after, size_t max_events,
    size_t max_bytes, proto_arena *arena, proto_push *push, char *err,
    size_t errlen);

/*
 * outbox_ack processes an ACK up to watermark w for the batch sent (NULL
 * when there is none: the WELCOME of a lost ack); dups is the ACK's
 * duplicates count, i.e. the first dups events of sent were applied
 * before. Rejected outcomes (sorted by seq; outs may be NULL when n is 0)
 * get their reason in err and stay. A row of an applied insert/update
 * gets is_synced = 1 if it still equals the values sent (so a change made
 * since keeps it 0) and no event of its key was rejected or in conflict;
 * a row of a duplicate gets it if no later event of its key is waiting.
 * Works in chunks of OUTBOX_ACK_CHUNK (OUTBOX_ACK_CHUNK_QUIET while the POS
 * is quiet), each its own transaction, then
 * compacts the log when that is cheap (outbox_compact; a failure there is
 * logged, the next ack tries again). Returns PROTO_OK or PROTO_EDB
 * (chunks already committed stay committed).
 */
proto_err outbox_ack(outbox *ob, int64_t w, const proto_push *sent,
    int64_t dups, const proto_outcome *outs, size_t n, char *err,
    size_t errlen);

/*
 * outbox_compact removes the acknowledged entries of the log in one
 * transaction, keeping the pending ones, the newest acknowledged one (the
 * marker of max(seq) and its tag), rejects and retries. It does so when
 * at least min entries were acknowledged since the last compaction and
 * none is pending (or, in a log that never empties, when very many were
 * and few are pending); min 0 compacts in any case. outbox_ack calls it with a
 * minimum of its own; the sender with 1 whenever its log has drained, and
 * when it stops. It never waits for the write lock: while another
 * connection (the POS) holds it, it does nothing. Returns PROTO_OK or
 * PROTO_EDB (then nothing changed).
 */
proto_err outbox_compact(outbox *ob, int64_t min, char *err, size_t errlen);

/*
 * outbox_welcome applies the identity check for a WELCOME (w, t): on
 * TRUST it acks up to w, on RESTORED it stores a new random log id. Sets
 * *d. Returns PROTO_OK or PROTO_EDB.
 */
proto_err outbox_welcome(outbox *ob, int64_t w, int64_t t,
    outbox_id_decision *d, char *err, size_t errlen);

/*
 * outbox_stats fills st. With exact, pending, rejected and retry are
 * counted (slow on a big backlog: for "status"); otherwise pending is
 * estimated from seq numbers (0 when no entry above acked_seq waits) and
 * rejected and retry are 0. oldest_ts and last_ack are read either way
 * (primary-key lookups). Returns PROTO_OK or PROTO_EDB.
 */
proto_err outbox_stats(
    outbox *ob, bool exact, outbox_counts *st, char *err, size_t errlen);

/*
 * outbox_stall_since decides, as a pure function, whether the queue is
 * stalled: events are pending and neither an ACK (last_ack) nor the oldest
 * pending event's capture (oldest; 0 unknown) nor start (when watching
 * began; 0 unknown) happened within stall_ms before now (all in one time
 * base). Returns the time the stall began (the latest of the three), or 0
 * when not stalled or nothing is known.
 */
int64_t outbox_stall_since(int64_t pending, int64_t now, int64_t last_ack,
    int64_t oldest, int64_t start, int64_t stall_ms);

/*
 * outbox_warn_decide returns the OUTBOX_WARN_* bits for pending events of
 * which the oldest is age_s old (age_s < 0: unknown), given the
 * thresholds. A pure function.
 */
int outbox_warn_decide(
    int64_t pending, int64_t age_s, int64_t warn_events, int64_t warn_age_s);

/*
 * outbox_changed reports whether another connection committed to the file
 * since the previous call (PRAGMA data_version); true on errors, so the
 * caller looks instead of sleeping.
 */
bool outbox_changed(outbox *ob);

/*
 * outbox_schema_stale says that a batch read found the POS file's schema
 * changed since the outbox was opened: it read nothing, and every read
 * reads nothing until the outbox is reopened after a refit.
 */
bool outbox_schema_stale(const outbox *ob);

#endif /* AGENT_OUTBOX_H */
