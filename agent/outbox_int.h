/*
 * outbox_int.h: what outbox.c, outbox_state.c and rejects.c share, and
 * nothing else includes. Not for use outside these files.
 *
 * struct outbox holds the connection to the POS file and every statement
 * prepared at open; ob_ack_ctx is what one ACK said, consulted by the
 * ack chunks of a normal batch (outbox.c) and of a retry batch
 * (rejects.c).
 */
#ifndef AGENT_OUTBOX_INT_H
#define AGENT_OUTBOX_INT_H

#include "capture.h"
#include "outbox.h"

/*
 * The agent checkpoints the WAL itself (PASSIVE, after an ack) once it
 * has this many pages, in place of SQLite's auto-checkpoint at 1000.
 */
#define WAL_CHECKPOINT_PAGES 800

/* Per configured table: its layout and its statements. */
typedef struct {
	capture_table t;       /* layout from the catalog */
	sqlite3_stmt *sel;     /* SELECT cols[, rowid] FROM t WHERE key = ?1 */
	sqlite3_stmt *sel_r;   /* the same at a rowid, if the key matches */
	sqlite3_stmt *keyvals; /* composite: decode the parts of ?1 */
	sqlite3_stmt *synced;  /* is_synced = 1 if the row equals the sent */
	sqlite3_stmt *synced_r;   /* the same at the rowid it was read at */
	sqlite3_stmt *synced_dup; /* is_synced = 1 after a lost ack */
	int push_idx;             /* index in the current push, or -1 */
} ob_table;

struct outbox {
	const agent_config *conf; /* configuration (borrowed) */
	sqlite3 *db;              /* the POS file */
	ob_table *tables;         /* configured tables */
	size_t ntables;           /* number of tables */
	char log_id[33];          /* current log id */
	int64_t acked_seq;        /* meta acked_seq */
	int64_t acked_tag;        /* meta acked_tag */
	int64_t data_version;     /* last PRAGMA data_version seen */
	int64_t schema_version;   /* PRAGMA schema_version of the layouts */
	bool schema_stale;        /* a read saw another schema_version */
	int64_t avg_bytes;        /* bytes per event in the last batch */
	int64_t pos_busy_until;  /* the POS wrote recently: yield until (ms) */
	int wal_pages;           /* WAL size after our last commit, pages */
	sqlite3_stmt *log_sel;   /* pending log rows in a seq range */
	sqlite3_stmt *set_err;   /* set err of one entry */
	int64_t low;             /* no acked entry to compact below this */
	sqlite3_stmt *keep_fill; /* copy the entries to keep aside */
	sqlite3_stmt *keep_back; /* and back, after the log was cleared */
	sqlite3_stmt *keep_drop; /* empty the copy */
	sqlite3_stmt *log_clear; /* DELETE FROM _branchsync_log */
	sqlite3_stmt *low_sel;   /* min(seq) */
	sqlite3_stmt *meta_set;  /* write one meta row */
	sqlite3_stmt *tag_at;    /* tag of the entry at a seq */
	sqlite3_stmt *high;      /* max(seq) */
	sqlite3_stmt *dv;        /* PRAGMA data_version */
	sqlite3_stmt *sv;        /* PRAGMA schema_version */
	sqlite3_stmt *retry_sel; /* entries to retry, at or below acked_seq */
	sqlite3_stmt *retry_any; /* is there one? */
	sqlite3_stmt *retry_del; /* end a retried entry: delete it */
	sqlite3_stmt *retry_clr; /* end a retried marker: clear retry */
	sqlite3_stmt *oldest;    /* ts of the oldest pending entry */
	sqlite3_stmt *meta_get;  /* one meta value */
	sqlite3_stmt *later;     /* is there a later entry of a row? */
	sqlite3_stmt *later_scan; /* entries after a seq, for ls */
	struct laterset *ls;      /* rows with entries ahead (outbox.c) */
	int64_t later_lo;         /* ls holds the entries in (lo, hi] */
	int64_t later_hi;
	bool later_ok; /* ls is in step with the reads */
};

/* What one ACK said, and what was sent, for the chunks to consult. */
typedef struct {
	const proto_push *sent;    /* the batch, or NULL after a lost ack */
	size_t dups;               /* its first dups events were duplicates */
	const proto_outcome *outs; /* non-success outcomes, sorted by seq */
	size_t nouts;              /* number of outcomes */
	const proto_event **blocked; /* sent events rejected or in conflict */
	size_t nblocked;             /* number of blocked events */
	size_t oi;                   /* cursor into outs */
	size_t si;                   /* cursor into sent->events */
} ob_ack_ctx;

/* outbox_now_s returns the wall clock in epoch seconds. */
int64_t outbox_now_s(void);

/* outbox_low returns the log's lowest seq (0 if it is empty). */
int64_t outbox_low(outbox *ob);

/* outbox_table_find returns the configured table name, or NULL. */
ob_table *outbox_table_find(outbox *ob, const char *name);

/*
 * outbox_read_any reads a batch as outbox_read does: of pending entries
 * after max(after, acked_seq), or with retry of the entries marked for
 * retry (after unused). Entries of unconfigured tables are set aside on
 * the way. PROTO_OK, PROTO_ENOMEM or PROTO_EDB.
 */
proto_err outbox_read_any(outbox *ob, bool retry, int64_t after,
    size_t max_events, size_t max_bytes, proto_arena *arena, proto_push *push,
    char *err, size_t errlen);

/* outbox_meta_put writes meta row name = v. PROTO_OK or PROTO_EDB. */
proto_err outbox_meta_put(
    outbox *ob, const char *name, int64_t v, char *err, size_t errlen);

/*
 * outbox_outcome_find returns seq's outcome in the n outcomes outs
 * (sorted by seq), or NULL, moving the cursor *oi forward: seqs are
 * looked up in ascending order.
 */
const proto_outcome *outbox_outcome_find(
    const proto_outcome *outs, size_t n, size_t *oi, int64_t seq);

/*
 * outbox_err_bind binds seq and the rejected outcome's reason ("rejected"
 * if it gives none) to the statement that sets an entry's err, and
 * returns that statement for the caller to step and reset.
 */
sqlite3_stmt *outbox_err_bind(
    outbox *ob, int64_t seq, const proto_outcome *out);

/*
 * outbox_ack_markable returns the sent event at seq if it may mark its
 * row synced: applied as sent (not a duplicate) and no event of the same
 * key blocked (c->blocked); NULL otherwise. Seqs in ascending order.
 */
const proto_event *outbox_ack_markable(ob_ack_ctx *c, int64_t seq);

/*
 * outbox_ack_block fills c->blocked with the sent events rejected or in
 * conflict; the caller frees c->blocked.
 */
void outbox_ack_block(ob_ack_ctx *c);

/*
 * outbox_ack_yield pauses after a write transaction that took took_us
 * while the POS is writing, keeping the agent's share of the write lock
 * near 1% (see outbox.c); true if it did (the POS is writing).
 */
bool outbox_ack_yield(outbox *ob, int64_t took_us);

/*
 * outbox_scalar steps st (binding arg to ?1 if it has a parameter) and
 * reads one integer: *found says whether there was a row, *v is its value
 * or 0. PROTO_OK or PROTO_EDB.
 */
proto_err outbox_scalar(outbox *ob, sqlite3_stmt *st, int64_t arg, bool *found,
    int64_t *v, char *err, size_t errlen);

#endif /* AGENT_OUTBOX_INT_H */
