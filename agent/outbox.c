/*
 * outbox.c: read pending log entries into a PUSH and process ACKs.
 *
 * The statements used here are prepared once at open (outbox_state.c:
 * per table, read the row by key, decode a composite key, mark the row
 * synced) and reused, because the agent must drain tens of thousands of
 * events per second. Retry batches and the rejects are in rejects.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "laterset.h"
#include "log.h"
#include "outbox_int.h"
#include "platform.h"
#include "util.h"

int64_t
outbox_now_s(void)
{
	return plat_wall_ms() / 1000;
}

/* Copies one SQLite value into the arena; adds its size to *bytes. */
/* blob_copy stores n bytes at src in the arena as a bin value. */
static proto_err
blob_copy(
    proto_arena *a, const void *src, size_t n, proto_value *v, size_t *bytes)
{
	uint8_t *p;

	if ((p = proto_arena_alloc(a, n + 1)) == NULL)
		return PROTO_ENOMEM;
	if (n > 0)
		memcpy(p, src, n);
	*v = (proto_value) {.type = PROTO_BIN, .len = (uint32_t) n, .u.p = p};
	*bytes += n + 9; /* msgpack tag and length */
	return PROTO_OK;
}

static proto_err
value_copy(proto_arena *a, sqlite3_value *sv, proto_value *v, size_t *bytes)
{
	int n;

	switch (sqlite3_value_type(sv)) {
	case SQLITE_INTEGER:
		*v = (proto_value) {
		    .type = PROTO_INT, .u.i = sqlite3_value_int64(sv)};
		break;
	case SQLITE_FLOAT:
		*v = (proto_value) {
		    .type = PROTO_FLOAT, .u.f = sqlite3_value_double(sv)};
		break;
	case SQLITE_TEXT: {
		const char *s = (const char *) sqlite3_value_text(sv);
		n = sqlite3_value_bytes(sv);
		*v = (proto_value) {.type = PROTO_STR, .len = (uint32_t) n};
		if ((v->u.s = proto_arena_strndup(a, s, (size_t) n)) == NULL)
			return PROTO_ENOMEM;
		*bytes += (size_t) n;
		break;
	}
	case SQLITE_BLOB: {
		const void *src = sqlite3_value_blob(sv);
		n = sqlite3_value_bytes(sv);
		return blob_copy(a, src, (size_t) n, v, bytes);
	}
	default:
		*v = (proto_value) {.type = PROTO_NIL};
	}
	*bytes += 9; /* msgpack tag and length, or a number */
	return PROTO_OK;
}

/* Copies n columns of a stepped statement into a new value array. */
static proto_err
row_copy(
    proto_arena *a, sqlite3_stmt *st, size_t n, proto_event *ev, size_t *bytes)
{
	proto_err rv;

	if ((ev->vals = proto_arena_alloc(a, n * sizeof *ev->vals)) == NULL)
		return PROTO_ENOMEM;
	ev->nvals = (uint32_t) n;
	for (size_t i = 0; i < n; i++)
		if ((rv = value_copy(a, sqlite3_column_value(st, (int) i),
		         &ev->vals[i], bytes))
		    != PROTO_OK)
			return rv;
	return PROTO_OK;
}

/*
 * key_decode steps ot->keyvals over a composite log key k (the caller
 * resets it). Part i is then column 2i, unless column 2i + 1 holds hex:
 * then it is the BLOB that capture.c wrote as {"b": hex}.
 */
static proto_err
key_decode(
    outbox *ob, ob_table *ot, sqlite3_value *k, char *err, size_t errlen)
{
	sqlite3_bind_value(ot->keyvals, 1, k);
	if (sqlite3_step(ot->keyvals) == SQLITE_ROW)
		return PROTO_OK;
	return db_fail(
	    ob->db, "could not decode a composite key", err, errlen);
}

/* The hex digit's value, or -1. */
static int
hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * key_blob decodes the hex of a BLOB key part into a new buffer of *n
 * bytes (NULL on bad hex, which capture.c never writes: the part is then
 * matched as the text it is). The caller frees it.
 */
static uint8_t *
key_blob(sqlite3_stmt *kv, int col, size_t *n)
{
	const unsigned char *h = sqlite3_column_text(kv, col);
	size_t len = (size_t) sqlite3_column_bytes(kv, col);
	uint8_t *p;

	if (h == NULL || len % 2 != 0)
		return NULL;
	p = xmalloc(len / 2 + 1);
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hex_val(h[2 * i]);
		int lo = hex_val(h[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(p);
			return NULL;
		}
		p[i] = (uint8_t) (hi << 4 | lo);
	}
	*n = len / 2;
	return p;
}

/* key_bind binds the key of log entry k to ?1..?nkey of st. */
static proto_err
key_bind(outbox *ob, ob_table *ot, sqlite3_value *k, sqlite3_stmt *st,
    char *err, size_t errlen)
{
	proto_err rv = PROTO_OK;

	if (ot->t.nkey == 1) {
		sqlite3_bind_value(st, 1, k);
		return PROTO_OK;
	}
	if ((rv = key_decode(ob, ot, k, err, errlen)) == PROTO_OK)
		for (size_t i = 0; i < ot->t.nkey; i++) {
			size_t n;
			uint8_t *p
			    = key_blob(ot->keyvals, 2 * (int) i + 1, &n);
			if (p != NULL)
				sqlite3_bind_blob64(
				    st, (int) i + 1, p, n, SQLITE_TRANSIENT);
			else
				sqlite3_bind_value(st, (int) i + 1,
				    sqlite3_column_value(
				        ot->keyvals, 2 * (int) i));
			free(p);
		}
	sqlite3_reset(ot->keyvals);
	return rv;
}

/* The key values of a log entry, for DELETE and NONE events. */
static proto_err
key_copy(outbox *ob, ob_table *ot, sqlite3_value *k, proto_arena *a,
    proto_event *ev, size_t *bytes, char *err, size_t errlen)
{
	proto_err rv;
	size_t nkey = ot->t.nkey;

	if ((ev->vals = proto_arena_alloc(a, nkey * sizeof *ev->vals)) == NULL)
		return PROTO_ENOMEM;
	ev->nvals = (uint32_t) nkey;
	if (nkey == 1)
		return value_copy(a, k, &ev->vals[0], bytes);
	if ((rv = key_decode(ob, ot, k, err, errlen)) != PROTO_OK)
		goto done;
	for (size_t i = 0; i < nkey && rv == PROTO_OK; i++) {
		size_t n;
		uint8_t *p = key_blob(ot->keyvals, 2 * (int) i + 1, &n);
		if (p != NULL)
			rv = blob_copy(a, p, n, &ev->vals[i], bytes);
		else
			rv = value_copy(a,
			    sqlite3_column_value(ot->keyvals, 2 * (int) i),
			    &ev->vals[i], bytes);
		free(p);
	}
done:
	sqlite3_reset(ot->keyvals);
	return rv;
}

/*
 * is_later: the row has a log entry after ev's: its current values, read
 * for ev, belong to that later write. They may refer to rows whose own
 * entries come after ev's batch (a parent inserted since, a key reused
 * after a delete), so ev goes out "ahead": the hub skips it if it fails,
 * and the later entry brings the row in its place.
 */
static bool
is_later(outbox *ob, const char *tbl, sqlite3_value *k, int64_t seq)
{
	bool yes;

	sqlite3_bind_text(ob->later, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_value(ob->later, 2, k);
	sqlite3_bind_int64(ob->later, 3, seq);
	yes = sqlite3_step(ob->later) == SQLITE_ROW;
	sqlite3_reset(ob->later);
	return yes;
}

/*
 * Steps sel_r at the rowid r the log entry noted, which holds the row if
 * it still has the entry's key; else (reset) sel by key. *st is the
 * statement stepped, its result in *rc; the caller resets it.
 */
static proto_err
row_find(outbox *ob, ob_table *ot, sqlite3_value *k, int64_t r,
    sqlite3_stmt **st, int *rc, char *err, size_t errlen)
{
	proto_err rv;

	if (r != 0 && ot->sel_r != NULL) {
		*st = ot->sel_r;
		if ((rv = key_bind(ob, ot, k, *st, err, errlen)) != PROTO_OK)
			return rv;
		sqlite3_bind_int64(*st, (int) ot->t.nkey + 1, r);
		if ((*rc = sqlite3_step(*st)) != SQLITE_DONE)
			return PROTO_OK;
		sqlite3_reset(*st);
	}
	*st = ot->sel;
	if ((rv = key_bind(ob, ot, k, *st, err, errlen)) == PROTO_OK)
		*rc = sqlite3_step(*st);
	return rv;
}

/*
 * Fills ev from the table's current row, or the key if it is gone. With
 * maybe_later false, the row is known to have no later entry.
 */
static proto_err
event_fill(outbox *ob, ob_table *ot, int op, sqlite3_value *k, int64_t r,
    bool maybe_later, proto_arena *a, proto_event *ev, size_t *bytes,
    char *err, size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;
	int rc;

	ev->ahead = false;
	ev->rowid = 0;
	if (op == 3) {
		ev->op = PROTO_OP_DELETE;
		return key_copy(ob, ot, k, a, ev, bytes, err, errlen);
	}
	if ((rv = row_find(ob, ot, k, r, &st, &rc, err, errlen)) != PROTO_OK) {
		sqlite3_reset(st);
		return rv;
	}
	if (rc == SQLITE_ROW) {
		ev->op = PROTO_OP_UPSERT;
		ev->ahead
		    = maybe_later && is_later(ob, ot->t.name, k, ev->seq);
		if (ot->t.rowid != NULL)
			ev->rowid
			    = sqlite3_column_int64(st, (int) ot->t.ncols);
		rv = row_copy(a, st, ot->t.ncols, ev, bytes);
	} else if (rc == SQLITE_DONE) {
		/* Deleted since: a later delete event is pending. */
		ev->op = PROTO_OP_NONE;
		rv = key_copy(ob, ot, k, a, ev, bytes, err, errlen);
	} else {
		rv = db_fail(
		    ob->db, "could not read a captured row", err, errlen);
	}
	sqlite3_reset(st);
	return rv;
}

ob_table *
outbox_table_find(outbox *ob, const char *name)
{
	for (size_t i = 0; i < ob->ntables; i++)
		if (!strcmp(ob->tables[i].t.name, name))
			return &ob->tables[i];
	return NULL;
}

/* The table's index in push, adding it on first use (names borrowed). */
static uint32_t
push_table_idx(ob_table *ot, proto_push *push)
{
	if (ot->push_idx < 0) {
		proto_table *pt = &push->tables[push->ntables];
		pt->name = ot->t.name;
		pt->ncols = (uint32_t) ot->t.ncols;
		pt->cols = (const char **) ot->t.cols;
		pt->nkey = (uint32_t) ot->t.nkey;
		ot->push_idx = (int) push->ntables++;
	}
	return (uint32_t) ot->push_idx;
}

/* Seqs of entries whose table is not configured (any more). */
typedef struct {
	int64_t *seq; /* the entries */
	size_t n;     /* how many */
} seq_list;

/*
 * The laterset (laterset.h) holds the entries in (later_lo, later_hi]
 * that the batch reads have not passed yet, and later_ok says it does.
 * later_extend, in the read transaction of a batch that starts after seq
 * `from`, adds the entries written since the last scan: each entry is
 * scanned once while the reads go on where the last one stopped. A read
 * from anywhere else (a resend after an error), or a log that went back
 * (a restored file), starts the set again from `from`.
 */
static void
later_extend(outbox *ob, int64_t from)
{
	int64_t high = 0;
	bool found;
	char err[256];
	int rc;

	if (outbox_scalar(ob, ob->high, 0, &found, &high, err, sizeof err)
	    != PROTO_OK) {
		ob->later_ok = false;
		return;
	}
	if (!ob->later_ok || from != ob->later_lo || high < ob->later_hi) {
		laterset_clear(
		    ob->ls, high > from ? (size_t) (high - from) : 0);
		ob->later_lo = ob->later_hi = from;
	}
	sqlite3_bind_int64(ob->later_scan, 1, ob->later_hi);
	while ((rc = sqlite3_step(ob->later_scan)) == SQLITE_ROW) {
		const char *tbl
		    = (const char *) sqlite3_column_text(ob->later_scan, 1);
		laterset_add(ob->ls,
		    laterset_hash(tbl != NULL ? tbl : "",
		        sqlite3_column_value(ob->later_scan, 2)));
		ob->later_hi = sqlite3_column_int64(ob->later_scan, 0);
	}
	sqlite3_reset(ob->later_scan);
	ob->later_ok = rc == SQLITE_DONE;
}

/*
 * later_pass takes the entry at seq, which the batch read has reached,
 * out of the laterset and sets *maybe: false if its row has no later
 * entry. false (the set no longer fits the read) if seq is not the next
 * entry the set expects; the read then asks the index.
 */
static bool
later_pass(
    outbox *ob, int64_t seq, const char *tbl, sqlite3_value *k, bool *maybe)
{
	uint64_t h;

	if (seq <= ob->later_lo || seq > ob->later_hi) {
		ob->later_ok = false;
		return false;
	}
	h = laterset_hash(tbl, k);
	laterset_remove(ob->ls, h);
	ob->later_lo = seq;
	*maybe = laterset_maybe(ob->ls, h);
	return true;
}

/* Steps the log rows and reads each row's values, inside a read txn. */
static proto_err
read_events(outbox *ob, sqlite3_stmt *sel, bool filter, size_t max_bytes,
    proto_arena *a, proto_push *push, seq_list *unknown, size_t *bytes,
    char *err, size_t errlen)
{
	proto_err rv = PROTO_OK;
	int rc;

	filter = filter && ob->later_ok;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *tbl = (const char *) sqlite3_column_text(sel, 1);
		ob_table *ot = outbox_table_find(ob, tbl != NULL ? tbl : "");
		proto_event *ev = &push->events[push->nevents];
		bool maybe = true;
		if (filter)
			filter = later_pass(ob, sqlite3_column_int64(sel, 0),
			    tbl != NULL ? tbl : "",
			    sqlite3_column_value(sel, 3), &maybe);
		if (ot == NULL) {
			unknown->seq = xrealloc(
			    unknown->seq, (unknown->n + 1) * sizeof(int64_t));
			unknown->seq[unknown->n++]
			    = sqlite3_column_int64(sel, 0);
			continue;
		}
		ev->seq = sqlite3_column_int64(sel, 0);
		ev->tag = sqlite3_column_int64(sel, 4);
		ev->table = push_table_idx(ot, push);
		if ((rv = event_fill(ob, ot, sqlite3_column_int(sel, 2),
		         sqlite3_column_value(sel, 3),
		         sqlite3_column_int64(sel, 5), maybe, a, ev, bytes,
		         err, errlen))
		    != PROTO_OK)
			break;
		*bytes += 16;
		push->nevents++;
		if (*bytes >= max_bytes)
			break;
	}
	if (rv == PROTO_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = db_fail(
		    ob->db, "could not read _branchsync_log", err, errlen);
	sqlite3_reset(sel);
	return rv;
}

/* Sets aside entries of unconfigured tables, in one short write txn. */
static proto_err
mark_unknown(outbox *ob, const seq_list *unknown, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = db_exec(ob->db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	for (size_t i = 0; i < unknown->n && rv == PROTO_OK; i++) {
		sqlite3_bind_int64(ob->set_err, 1, unknown->seq[i]);
		sqlite3_bind_text(
		    ob->set_err, 2, OUTBOX_UNKNOWN_TABLE, -1, SQLITE_STATIC);
		if (sqlite3_step(ob->set_err) != SQLITE_DONE)
			rv = db_fail(ob->db, "could not set aside an entry",
			    err, errlen);
		sqlite3_reset(ob->set_err);
	}
	if (rv == PROTO_OK)
		rv = db_exec(ob->db, "COMMIT", err, errlen);
	if (rv != PROTO_OK)
		db_rollback(ob->db);
	else
		log_warn("AGENT-UNKNOWN-TABLE",
		    "set aside %zu log entries of tables not configured",
		    unknown->n);
	return rv;
}

/* A batch of pending entries (retry false) or of retried ones. */
static proto_err
read_batch(outbox *ob, bool retry, int64_t after, size_t max_events,
    size_t max_bytes, proto_arena *a, proto_push *push, seq_list *unknown,
    char *err, size_t errlen)
{
	sqlite3_stmt *sel = retry ? ob->retry_sel : ob->log_sel;
	size_t bytes = 0;
	proto_err rv;

	push->ntables = push->nevents = 0;
	push->tables = proto_arena_alloc(a, ob->ntables * sizeof(proto_table));
	push->events = proto_arena_alloc(a, max_events * sizeof(proto_event));
	if (push->tables == NULL || push->events == NULL)
		return PROTO_ENOMEM;
	for (size_t i = 0; i < ob->ntables; i++)
		ob->tables[i].push_idx = -1;
	/* One read transaction: the log rows and the row values agree. */
	if ((rv = db_exec(ob->db, "BEGIN", err, errlen)) != PROTO_OK)
		return rv;
	/*
	 * In the same snapshot: a POS upgrade that rebuilt a table since the
	 * layouts were read dropped its triggers, so rows written since may
	 * have no entries while their children have (an item of a sale whose
	 * row went uncaptured). Nothing of such a snapshot is sent: the
	 * sender refits and sweeps first (schemawatch.h).
	 */
	if (sqlite3_step(ob->sv) != SQLITE_ROW
	    || sqlite3_column_int64(ob->sv, 0) != ob->schema_version)
		ob->schema_stale = true;
	sqlite3_reset(ob->sv);
	if (ob->schema_stale) {
		db_rollback(ob->db);
		return PROTO_OK;
	}
	if (retry) {
		sqlite3_bind_int64(sel, 1, ob->acked_seq);
		sqlite3_bind_int64(sel, 2, (sqlite3_int64) max_events);
	} else {
		sqlite3_bind_int64(
		    sel, 1, after > ob->acked_seq ? after : ob->acked_seq);
		sqlite3_bind_int64(sel, 2, INT64_MAX);
		sqlite3_bind_int64(sel, 3, (sqlite3_int64) max_events);
	}
	if (!retry)
		later_extend(
		    ob, after > ob->acked_seq ? after : ob->acked_seq);
	rv = read_events(
	    ob, sel, !retry, max_bytes, a, push, unknown, &bytes, err, errlen);
	if (rv == PROTO_OK)
		rv = db_exec(ob->db, "COMMIT", err, errlen);
	if (rv != PROTO_OK)
		db_rollback(ob->db);
	else if (push->nevents > 0)
		ob->avg_bytes = (int64_t) (bytes / push->nevents);
	return rv;
}

proto_err
outbox_read_any(outbox *ob, bool retry, int64_t after, size_t max_events,
    size_t max_bytes, proto_arena *arena, proto_push *push, char *err,
    size_t errlen)
{
	seq_list unknown = {0};
	proto_err rv;

	for (;;) {
		rv = read_batch(ob, retry, after, max_events, max_bytes, arena,
		    push, &unknown, err, errlen);
		if (rv != PROTO_OK || unknown.n == 0)
			break;
		rv = mark_unknown(ob, &unknown, err, errlen);
		free(unknown.seq);
		unknown = (seq_list) {0};
		/* A batch of only unknown entries: look again at once. */
		if (rv != PROTO_OK || push->nevents > 0)
			break;
	}
	free(unknown.seq);
	return rv;
}

proto_err
outbox_read(outbox *ob, int64_t after, size_t max_events, size_t max_bytes,
    proto_arena *arena, proto_push *push, char *err, size_t errlen)
{
	return outbox_read_any(
	    ob, false, after, max_events, max_bytes, arena, push, err, errlen);
}

/* One acknowledged log entry, copied out of the log statement. */
typedef struct {
	int64_t seq;  /* position in the log */
	int64_t tag;  /* its random tag */
	int op;       /* 1 insert, 2 update, 3 delete */
	ob_table *ot; /* its table, or NULL if not configured */
} ack_row;

proto_err
outbox_meta_put(
    outbox *ob, const char *name, int64_t v, char *err, size_t errlen)
{
	proto_err rv = PROTO_OK;

	sqlite3_bind_text(ob->meta_set, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(ob->meta_set, 2, v);
	if (sqlite3_step(ob->meta_set) != SQLITE_DONE)
		rv = db_fail(
		    ob->db, "could not update _branchsync_meta", err, errlen);
	sqlite3_reset(ob->meta_set);
	return rv;
}

/* Reads the next up to `chunk` pending entries with seq <= w. */
static proto_err
ack_rows(outbox *ob, int64_t w, size_t chunk, ack_row *rows, size_t *n,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = ob->log_sel;
	int rc;

	*n = 0;
	sqlite3_bind_int64(st, 1, ob->acked_seq);
	sqlite3_bind_int64(st, 2, w);
	sqlite3_bind_int64(st, 3, (sqlite3_int64) chunk);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tbl = (const char *) sqlite3_column_text(st, 1);
		ack_row *r = &rows[(*n)++];
		r->seq = sqlite3_column_int64(st, 0);
		r->op = sqlite3_column_int(st, 2);
		r->ot = outbox_table_find(ob, tbl != NULL ? tbl : "");
		r->tag = sqlite3_column_int64(st, 4);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(
		    ob->db, "could not read _branchsync_log", err, errlen);
	return PROTO_OK;
}

/* Finds seq's outcome in the sorted outcomes, moving *oi forward. */
const proto_outcome *
outbox_outcome_find(
    const proto_outcome *outs, size_t n, size_t *oi, int64_t seq)
{
	while (*oi < n && outs[*oi].seq < seq)
		(*oi)++;
	return *oi < n && outs[*oi].seq == seq ? &outs[*oi] : NULL;
}

static bool
same_key(const proto_event *a, const proto_event *b, uint32_t nkey)
{
	if (a->table != b->table)
		return false;
	for (uint32_t i = 0; i < nkey; i++)
		if (!proto_value_eq(&a->vals[i], &b->vals[i]))
			return false;
	return true;
}

/*
 * The sent event at seq, if it may mark its row synced: applied as sent
 * (not a duplicate) and no event of the same key was rejected or kept
 * out by a conflict in this batch (the hub applies the last per key).
 */
const proto_event *
outbox_ack_markable(ob_ack_ctx *c, int64_t seq)
{
	const proto_push *p = c->sent;
	const proto_event *ev;

	if (p == NULL)
		return NULL;
	while (c->si < p->nevents && p->events[c->si].seq < seq)
		c->si++;
	if (c->si >= p->nevents || c->si < c->dups)
		return NULL;
	ev = &p->events[c->si];
	if (ev->seq != seq || ev->op != PROTO_OP_UPSERT)
		return NULL;
	for (size_t i = 0; i < c->nblocked; i++)
		if (same_key(ev, c->blocked[i], p->tables[ev->table].nkey))
			return NULL;
	return ev;
}

sqlite3_stmt *
outbox_err_bind(outbox *ob, int64_t seq, const proto_outcome *out)
{
	sqlite3_stmt *st = ob->set_err;

	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2,
	    out->reason != NULL && out->reason[0] ? out->reason : "rejected",
	    -1, SQLITE_TRANSIENT);
	return st;
}

/* Binds ev's values to st and steps it: its changes, or -1 on an error. */
static int
synced_step(sqlite3 *db, sqlite3_stmt *st, const proto_event *ev)
{
	int n;

	for (uint32_t i = 0; i < ev->nvals; i++)
		db_bind_value(st, (int) i + 1, &ev->vals[i]);
	n = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(db) : -1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return n;
}

/*
 * is_synced = 1 for ev's row if it still holds ev's values: at the rowid
 * it was read at, else (a rowid renumbered, or the row changed since) by
 * key.
 */
static proto_err
mark_synced(
    outbox *ob, ob_table *ot, const proto_event *ev, char *err, size_t errlen)
{
	int n = 0;

	if (ev->rowid != 0 && ot->synced_r != NULL) {
		sqlite3_bind_int64(
		    ot->synced_r, (int) ev->nvals + 1, ev->rowid);
		n = synced_step(ob->db, ot->synced_r, ev);
	}
	if (n == 0)
		n = synced_step(ob->db, ot->synced, ev);
	return n < 0 ? db_fail(ob->db, "could not process an ack", err, errlen)
	             : PROTO_OK;
}

/* Rejected: keep the entry with its reason. Applied: maybe mark synced. */
static proto_err
ack_one(outbox *ob, const ack_row *r, ob_ack_ctx *c, char *err, size_t errlen)
{
	const proto_outcome *out
	    = outbox_outcome_find(c->outs, c->nouts, &c->oi, r->seq);
	const proto_event *ev;
	sqlite3_stmt *st;
	proto_err rv = PROTO_OK;

	if (out != NULL && out->code == PROTO_OUT_REJECTED) {
		st = outbox_err_bind(ob, r->seq, out);
	} else if (r->ot != NULL && r->ot->synced != NULL
	    && (ev = outbox_ack_markable(c, r->seq)) != NULL
	    && ev->nvals == r->ot->t.ncols) {
		return mark_synced(ob, r->ot, ev, err, errlen);
	} else {
		return PROTO_OK;
	}
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_fail(ob->db, "could not process an ack", err, errlen);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rv;
}

/* One chunk (at most `chunk`) in one short write transaction; *n =
 * entries done. */
static proto_err
ack_chunk(outbox *ob, int64_t w, size_t chunk, ob_ack_ctx *c, size_t *n,
    char *err, size_t errlen)
{
	ack_row rows[OUTBOX_ACK_CHUNK_QUIET];
	proto_err rv;

	*n = 0;
	if ((rv = db_exec(ob->db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	if ((rv = ack_rows(ob, w, chunk, rows, n, err, errlen)) != PROTO_OK)
		goto done;
	for (size_t i = 0; i < *n && rv == PROTO_OK; i++)
		rv = ack_one(ob, &rows[i], c, err, errlen);
	if (rv != PROTO_OK || *n == 0)
		goto done;
	/* The entries stay until a compaction (outbox_compact). */
	if ((rv = outbox_meta_put(
	         ob, "acked_seq", rows[*n - 1].seq, err, errlen))
	        == PROTO_OK
	    && (rv = outbox_meta_put(
	            ob, "acked_tag", rows[*n - 1].tag, err, errlen))
	        == PROTO_OK
	    && (rv = outbox_meta_put(
	            ob, "last_ack", outbox_now_s(), err, errlen))
	        == PROTO_OK)
		rv = db_exec(ob->db, "COMMIT", err, errlen);
done:
	if (rv != PROTO_OK || *n == 0)
		db_rollback(ob->db);
	else {
		ob->acked_seq = rows[*n - 1].seq;
		ob->acked_tag = rows[*n - 1].tag;
	}
	return rv;
}

/*
 * POS writes come first. SQLite's busy handler makes a POS commit that
 * meets one of our write transactions sleep at least 1 ms, so short
 * transactions alone do not keep the POS fast: what counts is how often
 * we hold the write lock. While the POS has committed within the last
 * second, the agent stays off the lock YIELD_FACTOR times as long as its
 * last transaction took (1 to 50 ms), which keeps its share near 1% and
 * a colliding POS commit rare. A quiet POS gives the agent full speed,
 * in chunks of OUTBOX_ACK_CHUNK_QUIET: a commit that comes then waits for
 * one such chunk (a few ms) and turns the chunks small again; acks
 * overlap the hub's apply of the next batch, so the pause mostly costs
 * nothing.
 */
#define YIELD_FACTOR 199

/* pos_busy: the POS (another connection) committed within a second. */
static bool
pos_busy(outbox *ob)
{
	int64_t now = plat_mono_ms();

	if (outbox_changed(ob))
		ob->pos_busy_until = now + 1000;
	return now < ob->pos_busy_until;
}

bool
outbox_ack_yield(outbox *ob, int64_t took_us)
{
	int64_t ms;

	if (!pos_busy(ob))
		return false;
	ms = took_us * YIELD_FACTOR / 1000;
	plat_sleep_ms(ms < 1 ? 1 : ms > 50 ? 50 : ms);
	return true;
}

/* Marks rows of duplicate entries in (acked_seq, hi], one transaction. */
static proto_err
ack_dups(outbox *ob, int64_t hi, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = db_exec(ob->db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	for (size_t i = 0; i < ob->ntables && rv == PROTO_OK; i++) {
		sqlite3_stmt *st = ob->tables[i].synced_dup;
		if (st == NULL)
			continue;
		sqlite3_bind_text(
		    st, 1, ob->tables[i].t.name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, ob->acked_seq);
		sqlite3_bind_int64(st, 3, hi);
		if (sqlite3_step(st) != SQLITE_DONE)
			rv = db_fail(
			    ob->db, "could not process an ack", err, errlen);
		sqlite3_reset(st);
	}
	if (rv == PROTO_OK)
		rv = db_exec(ob->db, "COMMIT", err, errlen);
	if (rv != PROTO_OK)
		db_rollback(ob->db);
	return rv;
}

/* The sent events whose outcome keeps their key from being marked. */
void
outbox_ack_block(ob_ack_ctx *c)
{
	size_t si = 0;

	if (c->sent == NULL || c->nouts == 0)
		return;
	c->blocked = xcalloc(c->nouts, sizeof *c->blocked);
	for (size_t i = 0; i < c->nouts; i++) {
		const proto_outcome *o = &c->outs[i];
		if (o->code != PROTO_OUT_REJECTED
		    && o->code != PROTO_OUT_CONFLICT)
			continue;
		while (
		    si < c->sent->nevents && c->sent->events[si].seq < o->seq)
			si++;
		if (si < c->sent->nevents && c->sent->events[si].seq == o->seq)
			c->blocked[c->nblocked++] = &c->sent->events[si];
	}
}

/*
 * Compaction. An acknowledged entry is not deleted on its own: its entry
 * in the (tbl, k) index sits on a random page, so deleting a batch's
 * entries wrote about a page per event, then checkpointed it. They stay
 * below acked_seq (nothing reads them there) until the log is compacted
 * in one transaction: the entries to keep (the pending ones, the marker
 * at acked_seq that keeps max(seq) and its tag, rejects and retries) are
 * copied aside, the log is cleared (a DELETE without WHERE frees the
 * table's and the indexes' pages without visiting rows) and the copy goes
 * back. It runs once nothing is pending, so it is never on the way of
 * a drain: after the ack that empties the log when at least COMPACT_MIN
 * entries wait, and whenever the sender finds nothing to send (outbox.h).
 * A log that never empties (a POS that always writes a little faster) is
 * compacted once COMPACT_BUSY entries wait and few are pending (at most
 * COMPACT_PENDING, and an eighth of those freed), so the copy stays
 * small. The log never holds more than it held before a drain began.
 */
#define COMPACT_MIN     1024
#define COMPACT_BUSY    131072
#define COMPACT_PENDING 2048

static proto_err
step_done(outbox *ob, sqlite3_stmt *st, char *err, size_t errlen)
{
	proto_err rv = PROTO_OK;

	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_fail(
		    ob->db, "could not compact _branchsync_log", err, errlen);
	sqlite3_reset(st);
	return rv;
}

proto_err
outbox_compact(outbox *ob, int64_t min, char *err, size_t errlen)
{
	int64_t high, freed = ob->acked_seq - ob->low, pending;
	bool found, got;
	proto_err rv;

	if ((rv = outbox_scalar(ob, ob->high, 0, &found, &high, err, errlen))
	    != PROTO_OK)
		return rv;
	pending = high - ob->acked_seq;
	if (min > 0 && (freed < min || pending > 0)
	    && (freed < COMPACT_BUSY || pending > COMPACT_PENDING
	        || pending * 8 > freed))
		return PROTO_OK;
	/* Housekeeping: behind a POS transaction, it waits for next time. */
	if ((rv = db_begin_nowait(
	         ob->db, ob->conf->busy_timeout_ms, &got, err, errlen))
	        != PROTO_OK
	    || !got)
		return rv;
	sqlite3_bind_int64(ob->keep_fill, 1, ob->acked_seq);
	if ((rv = step_done(ob, ob->keep_fill, err, errlen)) == PROTO_OK
	    && (rv = step_done(ob, ob->log_clear, err, errlen)) == PROTO_OK
	    && (rv = step_done(ob, ob->keep_back, err, errlen)) == PROTO_OK)
		rv = db_exec(ob->db, "COMMIT", err, errlen);
	if (rv != PROTO_OK)
		db_rollback(ob->db);
	else
		ob->low = ob->acked_seq;
	(void) step_done(ob, ob->keep_drop, err, errlen);
	return rv;
}

proto_err
outbox_ack(outbox *ob, int64_t w, const proto_push *sent, int64_t dups,
    const proto_outcome *outs, size_t n, char *err, size_t errlen)
{
	ob_ack_ctx c = {sent, 0, outs, n, NULL, 0, 0, 0};
	int64_t dup_hi = w;
	size_t done;
	proto_err rv = PROTO_OK;

	if (sent != NULL) {
		c.dups = dups < 0                     ? 0
		    : (uint64_t) dups > sent->nevents ? sent->nevents
		                                      : (size_t) dups;
		dup_hi = c.dups > 0 ? sent->events[c.dups - 1].seq : 0;
	}
	if (dup_hi > w)
		dup_hi = w;
	if (dup_hi > ob->acked_seq)
		rv = ack_dups(ob, dup_hi, err, errlen);
	outbox_ack_block(&c);
	/* Nothing to ack (a WELCOME of an idle branch): no write lock, which
	 * a POS transaction may hold for a while. */
	/* A quiet POS: fewer, longer transactions (see above). */
	for (bool busy = pos_busy(ob); rv == PROTO_OK && w > ob->acked_seq;) {
		int64_t t0 = plat_mono_us();
		size_t chunk
		    = busy ? OUTBOX_ACK_CHUNK : OUTBOX_ACK_CHUNK_QUIET;
		rv = ack_chunk(ob, w, chunk, &c, &done, err, errlen);
		if (rv != PROTO_OK || done < chunk)
			break;
		busy = outbox_ack_yield(ob, plat_mono_us() - t0);
	}
	free(c.blocked);
	if (rv == PROTO_OK
	    && outbox_compact(ob, COMPACT_MIN, err, errlen) != PROTO_OK)
		log_warn("AGENT-COMPACT", "%s", err);
	/*
	 * Checkpoint here, where the POS does not wait for it: in WAL mode the
	 * commit that finds the WAL past its limit runs the checkpoint, and
	 * the agent's writes would otherwise make that the POS's commit more
	 * often. Only past WAL_CHECKPOINT_PAGES (below SQLite's default
	 * auto-checkpoint of 1000), since each checkpoint costs an fsync that
	 * a POS commit at synchronous=FULL may queue behind. PASSIVE never
	 * blocks a writer; on a rollback journal there is no WAL.
	 */
	if (rv == PROTO_OK && ob->wal_pages >= WAL_CHECKPOINT_PAGES) {
		sqlite3_wal_checkpoint_v2(
		    ob->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		ob->wal_pages = 0;
	}
	return rv;
}
