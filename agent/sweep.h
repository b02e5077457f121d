/*
 * sweep.h: queue existing rows of an up table as log entries.
 *
 * Two uses, one mechanism. After a POS upgrade rebuilt a table (which
 * drops its capture triggers), the rows written before the triggers came
 * back are found by is_synced: SWEEP_UNSYNCED queues every row with
 * is_synced 0 or NULL. Before branchsync was installed, every row is new
 * to the center: SWEEP_ALL ("init --initial-load") queues them all.
 *
 * Either way a row is queued only when it has no log entry that will
 * still be sent: none above acked_seq, none set aside (err) or marked for
 * retry. So a sweep run twice, or interrupted and run again, queues each
 * row once. A queued entry is an update (op 2) of the row's key, written
 * with capture_key_sql, so the sender reads the row's current values as
 * for any captured write; the hub upserts by key, so a row queued again
 * later is harmless.
 *
 * Memory is bounded: each batch is one INSERT ... SELECT over a range of
 * at most SWEEP_BATCH_ROWS rowids (a WITHOUT ROWID table: LIMIT
 * SWEEP_BATCH_ROWS) in its own short BEGIN IMMEDIATE transaction, so the
 * POS waits for at most one batch. Rows inserted after the sweep began
 * are not looked at: the triggers capture them.
 */
#ifndef AGENT_SWEEP_H
#define AGENT_SWEEP_H

#include <sqlite3.h>
#include <stdint.h>

#include "capture.h"
#include "config.h"
#include "proto/err.h"

#define SWEEP_BATCH_ROWS 5000

typedef enum {
	SWEEP_UNSYNCED, /* rows with is_synced 0 or NULL */
	SWEEP_ALL,      /* every row */
} sweep_mode;

/*
 * Called after each batch: rows checked so far of about total rows of
 * table, and how many of them were queued.
 */
typedef void (*sweep_progress_cb)(void *arg, const char *table,
    int64_t checked, int64_t total, int64_t queued);

/*
 * sweep_table queues the rows of t (described from db) that mode selects
 * and that have no entry waiting in the log; *queued counts them (also
 * on error: batches already committed stay). SWEEP_UNSYNCED on a table
 * without is_synced queues nothing. progress may be NULL. Returns
 * PROTO_OK or PROTO_EDB with a message in err.
 */
proto_err sweep_table(sqlite3 *db, const capture_table *t, sweep_mode mode,
    sweep_progress_cb progress, void *arg, int64_t *queued, char *err,
    size_t errlen);

/*
 * Entries captured before a sweep may refer to the rows it queues (an
 * item written while its sale's table had no trigger), so they must
 * reach the center after them: they are moved to the end of the log, in
 * their order, with new seqs. But an entry above acked_seq may already
 * be applied at the hub (a lost ACK), and one the hub saw must keep its
 * seq, or its next HELLO would take the file for a restored one. So the
 * move is only requested here and done by the sender where no request
 * is in flight and its session agrees with the hub's watermark.
 *
 * sweep_move_request records in _branchsync_meta ("move_after") that
 * the entries with seq <= hi (the log's end when the sweep began) are to
 * be moved. An earlier request that is not carried out yet is kept: the
 * entries it names were captured before every sweep since, and what the
 * first sweep queued stays before what a later one queued (an interrupted
 * run, or several rebuilds while the hub is away). PROTO_OK or
 * PROTO_EDB.
 *
 * sweep_move_pending carries out a recorded request and removes it: the
 * entries above acked_seq and up to hi that are still to be sent (not
 * set aside, not retried) move behind the rest, in batches of
 * SWEEP_BATCH_ROWS entries, one transaction each; an entry moved twice
 * by a crash is sent twice, which the hub's upsert makes harmless.
 * *moved counts them (0 without a request). PROTO_OK or PROTO_EDB.
 */
proto_err sweep_move_request(
    sqlite3 *db, int64_t hi, char *err, size_t errlen);
proto_err sweep_move_pending(
    sqlite3 *db, int64_t *moved, char *err, size_t errlen);

/*
 * sweep_mark_set records in _branchsync_meta that table name needs a
 * sweep ("sweep:NAME") or a full check ("unchecked:NAME"), so the need
 * outlives a crash; sweep_mark_clear removes the mark. kind is "sweep" or
 * "unchecked". PROTO_OK or PROTO_EDB.
 */
proto_err sweep_mark_set(
    sqlite3 *db, const char *kind, const char *name, char *err, size_t errlen);
proto_err sweep_mark_clear(
    sqlite3 *db, const char *kind, const char *name, char *err, size_t errlen);

/*
 * sweep_marks returns the table names marked with kind, as a new array
 * of *n strings (free with sweep_marks_free). PROTO_OK or PROTO_EDB.
 */
proto_err sweep_marks(sqlite3 *db, const char *kind, char ***names, size_t *n,
    char *err, size_t errlen);
void sweep_marks_free(char **names, size_t n);

#endif /* AGENT_SWEEP_H */
