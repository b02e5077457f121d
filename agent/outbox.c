/*
 * outbox.c: read pending log entries into a PUSH and process ACKs.
 *
 * All statements are prepared once at open (per table: read the row by
 * key, decode a composite key, mark the row synced) and reused, because
 * the agent must drain tens of thousands of events per second.
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "db.h"
#include "log.h"
#include "sqlb.h"
#include "util.h"

/* Per configured table: its layout and its statements. */
typedef struct {
	capture_table t;       /* layout from the catalog */
	sqlite3_stmt *sel;     /* SELECT cols FROM t WHERE key = ?1 */
	sqlite3_stmt *keyvals; /* composite: decode the parts of ?1 */
	sqlite3_stmt *synced;  /* is_synced = 1 if the row equals the sent */
	sqlite3_stmt *synced_dup; /* is_synced = 1 after a lost ack */
	int push_idx;             /* index in the current push, or -1 */
} ob_table;

struct outbox {
	const agent_conf *conf;  /* configuration (borrowed) */
	sqlite3 *db;             /* the POS file */
	ob_table *tables;        /* configured tables */
	size_t ntables;          /* number of tables */
	char log_id[33];         /* current log id */
	int64_t acked_seq;       /* meta acked_seq */
	int64_t acked_tag;       /* meta acked_tag */
	int64_t data_version;    /* last PRAGMA data_version seen */
	int64_t avg_bytes;       /* bytes per event in the last batch */
	int64_t pos_busy_until;  /* the POS wrote recently: yield until (ms) */
	int wal_pages;           /* WAL size after our last commit, pages */
	sqlite3_stmt *log_sel;   /* pending log rows in a seq range */
	sqlite3_stmt *set_err;   /* set err of one entry */
	sqlite3_stmt *del;       /* delete acked entries below a seq */
	sqlite3_stmt *meta_set;  /* write one meta row */
	sqlite3_stmt *tag_at;    /* tag of the entry at a seq */
	sqlite3_stmt *high;      /* max(seq) */
	sqlite3_stmt *dv;        /* PRAGMA data_version */
	sqlite3_stmt *retry_sel; /* entries to retry, at or below acked_seq */
	sqlite3_stmt *retry_any; /* is there one? */
	sqlite3_stmt *retry_del; /* end a retried entry: delete it */
	sqlite3_stmt *retry_clr; /* end a retried marker: clear retry */
	sqlite3_stmt *oldest;    /* ts of the oldest pending entry */
	sqlite3_stmt *meta_get;  /* one meta value */
	sqlite3_stmt *later;     /* is there a later entry of a row? */
};

static int64_t
now_epoch_s(void)
{
	return now_wall_ms() / 1000;
}

outbox_id_decision
outbox_id_decide(int64_t acked_seq, int64_t high_seq, int64_t w, int64_t t,
    bool have_entry, int64_t entry_tag)
{
	if (w == 0)
		return OUTBOX_ID_NEW_HUB;
	/* The hub saw more of this log than the file holds. */
	if (w > high_seq)
		return OUTBOX_ID_RESTORED;
	if (w < acked_seq)
		return OUTBOX_ID_HUB_BEHIND;
	/* Same seq range: only the random tag tells a lost ack from a
	 * restored file that has written as many events again. */
	if (have_entry && entry_tag == t)
		return OUTBOX_ID_TRUST;
	return OUTBOX_ID_RESTORED;
}

const char *
outbox_id_name(outbox_id_decision d)
{
	switch (d) {
	case OUTBOX_ID_NEW_HUB:
		return "new-hub";
	case OUTBOX_ID_TRUST:
		return "trust";
	case OUTBOX_ID_RESTORED:
		return "restored";
	case OUTBOX_ID_HUB_BEHIND:
		return "hub-behind";
	}
	return "unknown";
}

const char *
outbox_log_id(const outbox *ob)
{
	return ob->log_id;
}

sqlite3 *
outbox_db(outbox *ob)
{
	return ob->db;
}

/*
 * "c1" IS ?1 AND "c2" IS ?2 ...: one parameter per key part (a composite
 * key is decoded first, see key_decode). IS, not =: a NULL key part still
 * finds its row, whose event the hub then sets aside with the reason.
 * SQLite uses the key's index for IS as for =.
 */
static void
add_key_match(sqlb *b, const capture_table *t)
{
	for (size_t i = 0; i < t->nkey; i++) {
		sqlb_add(b, "%s", i ? " AND " : "");
		sqlb_ident(b, t->cols[i]);
		sqlb_add(b, " IS ?%zu", i + 1);
	}
}

/*
 * The ACK marks a row synced when it still holds exactly the values that
 * were sent: those are now in PostgreSQL, so is_synced = 1 is true. A row
 * changed since the send fails the comparison and stays 0 (its newer log
 * entry sends it again). This needs no lookup in the log. Touches only
 * is_synced: no trigger fires.
 */
static proto_err
prepare_synced(sqlite3 *db, ob_table *ot, sqlb *b, char *err, size_t errlen)
{
	const capture_table *t = &ot->t;

	sqlb_add(b, "UPDATE ");
	sqlb_ident(b, t->name);
	sqlb_add(b, " SET is_synced = 1 WHERE is_synced IS NOT 1");
	for (size_t i = 0; i < t->ncols; i++) {
		sqlb_add(b, " AND ");
		sqlb_ident(b, t->cols[i]);
		sqlb_add(b, i < t->nkey ? " = ?%zu" : " IS ?%zu", i + 1);
	}
	return db_prepare(db, b->s, &ot->synced, err, errlen);
}

/* The key of a log entry as SQL over column k: itself or json parts. */
static void
add_key_select(sqlb *b, const capture_table *t)
{
	if (t->nkey == 1) {
		sqlb_add(b, "SELECT k");
		return;
	}
	for (size_t i = 0; i < t->nkey; i++)
		sqlb_add(
		    b, "%sjson_extract(k, '$[%zu]')", i ? ", " : "SELECT ", i);
}

static void
add_key_tuple(sqlb *b, const capture_table *t)
{
	sqlb_add(b, t->nkey > 1 ? "(" : "");
	for (size_t i = 0; i < t->nkey; i++) {
		sqlb_add(b, "%s", i ? ", " : "");
		sqlb_ident(b, t->cols[i]);
	}
	sqlb_add(b, t->nkey > 1 ? ")" : "");
}

/*
 * For entries the hub reported as duplicates (an earlier ACK was lost),
 * the values sent now were not the ones applied, so the comparison above
 * proves nothing. Such a row is synced if no later entry of its key
 * exists: then the committed send read the row after its last write.
 * ?1 table, ?2 acked_seq, ?3 last duplicate seq. Runs only after a lost
 * ack, so the scan of the pending tail it needs is rare.
 */
static proto_err
prepare_synced_dup(
    sqlite3 *db, ob_table *ot, sqlb *b, char *err, size_t errlen)
{
	const capture_table *t = &ot->t;

	sqlb_add(b, "UPDATE ");
	sqlb_ident(b, t->name);
	sqlb_add(b, " SET is_synced = 1 WHERE is_synced IS NOT 1 AND ");
	add_key_tuple(b, t);
	sqlb_add(b, " IN (");
	add_key_select(b, t);
	/* "+tbl": walk the seq range, not every entry of the table in
	 * _branchsync_log_key. */
	sqlb_add(b,
	    " FROM _branchsync_log WHERE +tbl = ?1 AND seq > ?2 AND "
	    "seq <= ?3 AND op IN (1, 2) AND err IS NULL) AND ");
	add_key_tuple(b, t);
	sqlb_add(b, " NOT IN (");
	add_key_select(b, t);
	sqlb_add(b, " FROM _branchsync_log WHERE +tbl = ?1 AND seq > ?3)");
	return db_prepare(db, b->s, &ot->synced_dup, err, errlen);
}

static proto_err
prepare_table(sqlite3 *db, ob_table *ot, char *err, size_t errlen)
{
	const capture_table *t = &ot->t;
	sqlb b = {0};
	proto_err rv;

	sqlb_add(&b, "SELECT ");
	for (size_t i = 0; i < t->ncols; i++) {
		sqlb_add(&b, "%s", i ? ", " : "");
		sqlb_ident(&b, t->cols[i]);
	}
	sqlb_add(&b, " FROM ");
	sqlb_ident(&b, t->name);
	sqlb_add(&b, " WHERE ");
	add_key_match(&b, t);
	if ((rv = db_prepare(db, b.s, &ot->sel, err, errlen)) != PROTO_OK)
		goto done;
	sqlb_fini(&b);
	if (t->nkey > 1) {
		/* Part i: its value, and the hex of a BLOB part or NULL. */
		sqlb_add(&b, "SELECT ");
		for (size_t i = 0; i < t->nkey; i++)
			sqlb_add(&b,
			    "%sjson_extract(?1, '$[%zu]'), "
			    "json_extract(?1, '$[%zu].b')",
			    i ? ", " : "", i, i);
		if ((rv = db_prepare(db, b.s, &ot->keyvals, err, errlen))
		    != PROTO_OK)
			goto done;
		sqlb_fini(&b);
	}
	if (t->has_synced) {
		if ((rv = prepare_synced(db, ot, &b, err, errlen)) != PROTO_OK)
			goto done;
		sqlb_fini(&b);
		rv = prepare_synced_dup(db, ot, &b, err, errlen);
	}
done:
	sqlb_fini(&b);
	return rv;
}

static const struct {
	size_t off;      /* statement field in struct outbox */
	const char *sql; /* its text */
} global_stmts[] = {
    {offsetof(struct outbox, log_sel),
        "SELECT seq, tbl, op, k, tag FROM _branchsync_log WHERE seq > ?1 "
        "AND seq <= ?2 AND err IS NULL ORDER BY seq LIMIT ?3"},
    {offsetof(struct outbox, set_err),
        "UPDATE _branchsync_log SET err = ?2, retry = NULL WHERE seq = ?1"},
    {offsetof(struct outbox, del),
        "DELETE FROM _branchsync_log WHERE seq < ?1 AND err IS NULL AND "
        "retry IS NULL"},
    {offsetof(struct outbox, meta_set),
        "INSERT OR REPLACE INTO _branchsync_meta(name, value) "
        "VALUES (?1, ?2)"},
    {offsetof(struct outbox, tag_at),
        "SELECT tag FROM _branchsync_log WHERE seq = ?1"},
    {offsetof(struct outbox, high),
        "SELECT coalesce(max(seq), 0) FROM _branchsync_log"},
    {offsetof(struct outbox, dv), "PRAGMA data_version"},
    /* Retried entries were acknowledged once, so they lie at or below
     * acked_seq, among the few entries kept there: a short scan. */
    {offsetof(struct outbox, retry_sel),
        "SELECT seq, tbl, op, k, tag FROM _branchsync_log WHERE seq <= ?1 "
        "AND retry = 1 AND err IS NULL ORDER BY seq LIMIT ?2"},
    {offsetof(struct outbox, retry_any),
        "SELECT 1 FROM _branchsync_log WHERE seq <= ?1 AND retry = 1 AND "
        "err IS NULL LIMIT 1"},
    {offsetof(struct outbox, retry_del),
        "DELETE FROM _branchsync_log WHERE seq = ?1 AND retry = 1"},
    {offsetof(struct outbox, retry_clr),
        "UPDATE _branchsync_log SET retry = NULL WHERE seq = ?1"},
    {offsetof(struct outbox, oldest),
        "SELECT coalesce(ts, 0) FROM _branchsync_log WHERE seq > ?1 AND "
        "err IS NULL ORDER BY seq LIMIT 1"},
    {offsetof(struct outbox, meta_get),
        "SELECT value FROM _branchsync_meta WHERE name = ?1"},
    /* On _branchsync_log_key (tbl, k; seq is the rowid): one probe. */
    {offsetof(struct outbox, later),
        "SELECT 1 FROM _branchsync_log WHERE tbl = ?1 AND k = ?2 AND "
        "seq > ?3 LIMIT 1"},
};

static proto_err
prepare_all(outbox *ob, char *err, size_t errlen)
{
	proto_err rv;

	for (size_t i = 0; i < ARRAY_LEN(global_stmts); i++) {
		sqlite3_stmt **st = (sqlite3_stmt **) (void *) ((char *) ob
		    + global_stmts[i].off);
		if ((rv = db_prepare(
		         ob->db, global_stmts[i].sql, st, err, errlen))
		    != PROTO_OK)
			return rv;
	}
	for (size_t i = 0; i < ob->ntables; i++)
		if ((rv = prepare_table(ob->db, &ob->tables[i], err, errlen))
		    != PROTO_OK)
			return rv;
	return PROTO_OK;
}

/* Reads log_id, acked_seq and acked_tag; fails if init was not run. */
static proto_err
read_meta(outbox *ob, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	bool schema = false;
	proto_err rv;
	int rc;

	if (sqlite3_table_column_metadata(ob->db, NULL, "_branchsync_meta",
	        "value", NULL, NULL, NULL, NULL, NULL)
	    != SQLITE_OK)
		goto not_init;
	if ((rv = db_prepare(ob->db,
	         "SELECT name, value FROM _branchsync_meta", &st, err, errlen))
	    != PROTO_OK)
		return rv;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *) sqlite3_column_text(st, 0);
		const char *text = (const char *) sqlite3_column_text(st, 1);
		if (!strcmp(name, "schema"))
			schema = true;
		else if (!strcmp(name, "log_id") && text != NULL)
			snprintf(ob->log_id, sizeof ob->log_id, "%s", text);
		else if (!strcmp(name, "acked_seq"))
			ob->acked_seq = sqlite3_column_int64(st, 1);
		else if (!strcmp(name, "acked_tag"))
			ob->acked_tag = sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE)
		rv = db_fail(
		    ob->db, "could not read _branchsync_meta", err, errlen);
	sqlite3_finalize(st);
	if (rv != PROTO_OK)
		return rv;
	if (schema && strlen(ob->log_id) == 32) {
		/* Columns added by a later init: an older log needs it. */
		if (sqlite3_table_column_metadata(ob->db, NULL,
		        "_branchsync_log", "ts", NULL, NULL, NULL, NULL, NULL)
		        == SQLITE_OK
		    && sqlite3_table_column_metadata(ob->db, NULL,
		           "_branchsync_log", "retry", NULL, NULL, NULL, NULL,
		           NULL)
		        == SQLITE_OK)
			return PROTO_OK;
		snprintf(err, errlen,
		    "the log in \"%s\" was set up by an older version; run "
		    "\"branchsync-agent init\" again",
		    ob->conf->database);
		return PROTO_EINVAL;
	}
not_init:
	snprintf(err, errlen,
	    "database \"%s\" is not set up; run \"branchsync-agent init\" "
	    "first",
	    ob->conf->database);
	return PROTO_EINVAL;
}

static proto_err
describe_tables(outbox *ob, char *err, size_t errlen)
{
	capture_table *ts = xcalloc(ob->conf->ntables, sizeof *ts);
	proto_err rv = PROTO_OK;
	int nstale = 0;

	ob->tables = xcalloc(ob->conf->ntables, sizeof *ob->tables);
	/* Only up tables are captured; down tables belong to the inbox. */
	for (size_t i = 0; i < ob->conf->ntables && rv == PROTO_OK; i++) {
		if (ob->conf->tables[i].down)
			continue;
		rv = capture_describe(ob->db, &ob->conf->tables[i],
		    &ob->tables[ob->ntables].t, err, errlen);
		/* Cannot be captured: left out (schemawatch.h). */
		if (rv == PROTO_EINVAL)
			rv = PROTO_OK;
		else if (rv == PROTO_OK) {
			ts[ob->ntables] = ob->tables[ob->ntables].t;
			ob->ntables++;
		}
	}
	/* Writes to a column missing from an UPDATE OF list would be
	 * silently left out, so say so loudly. */
	if (rv == PROTO_OK
	    && (rv = capture_stale(
	            ob->db, ts, ob->ntables, &nstale, err, errlen))
	        == PROTO_OK
	    && nstale > 0)
		log_warn("AGENT-STALE-TRIGGERS",
		    "%d capture triggers in \"%s\" differ from the "
		    "configuration or schema; run \"branchsync-agent init\" "
		    "(a running agent refreshes them itself)",
		    nstale, ob->conf->database);
	free(ts);
	return rv;
}

#define WAL_CHECKPOINT_PAGES 800

/* Called by SQLite after each of our commits in WAL mode. */
static int
wal_cb(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void) db;
	(void) name;
	((outbox *) arg)->wal_pages = pages;
	return SQLITE_OK;
}

proto_err
outbox_open(const agent_conf *conf, outbox **out, char *err, size_t errlen)
{
	outbox *ob = xcalloc(1, sizeof *ob);
	proto_err rv;

	*out = NULL;
	ob->conf = conf;
	ob->avg_bytes = 64;
	if ((rv = db_open(
	         conf->database, conf->busy_timeout_ms, &ob->db, err, errlen))
	    != PROTO_OK)
		goto fail;
	db_tune(ob->db);
	if ((rv = read_meta(ob, err, errlen)) != PROTO_OK
	    || (rv = db_exec(ob->db, CAPTURE_LOG_KEY_INDEX, err, errlen))
	        != PROTO_OK
	    || (rv = describe_tables(ob, err, errlen)) != PROTO_OK
	    || (rv = prepare_all(ob, err, errlen)) != PROTO_OK)
		goto fail;
	/* Replaces SQLite's auto-checkpoint on this connection: see above. */
	sqlite3_wal_hook(ob->db, wal_cb, ob);
	outbox_changed(ob);
	*out = ob;
	return PROTO_OK;
fail:
	outbox_close(ob);
	return rv;
}

void
outbox_close(outbox *ob)
{
	if (ob == NULL)
		return;
	for (size_t i = 0; i < ARRAY_LEN(global_stmts); i++)
		sqlite3_finalize(*(sqlite3_stmt **) (void *) ((char *) ob
		    + global_stmts[i].off));
	for (size_t i = 0; i < ob->ntables; i++) {
		sqlite3_finalize(ob->tables[i].sel);
		sqlite3_finalize(ob->tables[i].keyvals);
		sqlite3_finalize(ob->tables[i].synced);
		sqlite3_finalize(ob->tables[i].synced_dup);
		capture_table_fini(&ob->tables[i].t);
	}
	free(ob->tables);
	sqlite3_close_v2(ob->db);
	free(ob);
}

bool
outbox_changed(outbox *ob)
{
	int64_t v;
	bool changed = true;

	if (sqlite3_step(ob->dv) == SQLITE_ROW) {
		v = sqlite3_column_int64(ob->dv, 0);
		changed = v != ob->data_version;
		ob->data_version = v;
	}
	sqlite3_reset(ob->dv);
	return changed;
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

/* Fills ev from the table's current row, or the key if it is gone. */
static proto_err
event_fill(outbox *ob, ob_table *ot, int op, sqlite3_value *k, proto_arena *a,
    proto_event *ev, size_t *bytes, char *err, size_t errlen)
{
	proto_err rv;
	int rc;

	ev->ahead = false;
	if (op == 3) {
		ev->op = PROTO_OP_DELETE;
		return key_copy(ob, ot, k, a, ev, bytes, err, errlen);
	}
	if ((rv = key_bind(ob, ot, k, ot->sel, err, errlen)) != PROTO_OK)
		return rv;
	rc = sqlite3_step(ot->sel);
	if (rc == SQLITE_ROW) {
		ev->op = PROTO_OP_UPSERT;
		ev->ahead = is_later(ob, ot->t.name, k, ev->seq);
		rv = row_copy(a, ot->sel, ot->t.ncols, ev, bytes);
	} else if (rc == SQLITE_DONE) {
		/* Deleted since: a later delete event is pending. */
		ev->op = PROTO_OP_NONE;
		rv = key_copy(ob, ot, k, a, ev, bytes, err, errlen);
	} else {
		rv = db_fail(
		    ob->db, "could not read a captured row", err, errlen);
	}
	sqlite3_reset(ot->sel);
	return rv;
}

static ob_table *
find_table(outbox *ob, const char *name)
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

/* Steps the log rows and reads each row's values, inside a read txn. */
static proto_err
read_events(outbox *ob, sqlite3_stmt *sel, size_t max_bytes, proto_arena *a,
    proto_push *push, seq_list *unknown, size_t *bytes, char *err,
    size_t errlen)
{
	proto_err rv = PROTO_OK;
	int rc;

	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *tbl = (const char *) sqlite3_column_text(sel, 1);
		ob_table *ot = find_table(ob, tbl != NULL ? tbl : "");
		proto_event *ev = &push->events[push->nevents];
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
		         sqlite3_column_value(sel, 3), a, ev, bytes, err,
		         errlen))
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
	if (retry) {
		sqlite3_bind_int64(sel, 1, ob->acked_seq);
		sqlite3_bind_int64(sel, 2, (sqlite3_int64) max_events);
	} else {
		sqlite3_bind_int64(
		    sel, 1, after > ob->acked_seq ? after : ob->acked_seq);
		sqlite3_bind_int64(sel, 2, INT64_MAX);
		sqlite3_bind_int64(sel, 3, (sqlite3_int64) max_events);
	}
	rv = read_events(
	    ob, sel, max_bytes, a, push, unknown, &bytes, err, errlen);
	if (rv == PROTO_OK)
		rv = db_exec(ob->db, "COMMIT", err, errlen);
	if (rv != PROTO_OK)
		db_rollback(ob->db);
	else if (push->nevents > 0)
		ob->avg_bytes = (int64_t) (bytes / push->nevents);
	return rv;
}

static proto_err
read_any(outbox *ob, bool retry, int64_t after, size_t max_events,
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
	return read_any(
	    ob, false, after, max_events, max_bytes, arena, push, err, errlen);
}

proto_err
outbox_read_retry(outbox *ob, size_t max_events, size_t max_bytes,
    proto_arena *arena, proto_push *push, char *err, size_t errlen)
{
	return read_any(
	    ob, true, 0, max_events, max_bytes, arena, push, err, errlen);
}

/* One acknowledged log entry, copied out of the log statement. */
typedef struct {
	int64_t seq;      /* position in the log */
	int64_t tag;      /* its random tag */
	int op;           /* 1 insert, 2 update, 3 delete */
	ob_table *ot;     /* its table, or NULL if not configured */
	sqlite3_value *k; /* its key (sqlite3_value_dup) */
} ack_row;

static proto_err
meta_put(outbox *ob, const char *name, int64_t v, char *err, size_t errlen)
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

/* Reads the next up to OUTBOX_ACK_CHUNK pending entries with seq <= w. */
static proto_err
ack_rows(
    outbox *ob, int64_t w, ack_row *rows, size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st = ob->log_sel;
	int rc;

	*n = 0;
	sqlite3_bind_int64(st, 1, ob->acked_seq);
	sqlite3_bind_int64(st, 2, w);
	sqlite3_bind_int64(st, 3, OUTBOX_ACK_CHUNK);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tbl = (const char *) sqlite3_column_text(st, 1);
		ack_row *r = &rows[(*n)++];
		r->seq = sqlite3_column_int64(st, 0);
		r->op = sqlite3_column_int(st, 2);
		r->ot = find_table(ob, tbl != NULL ? tbl : "");
		r->k = sqlite3_value_dup(sqlite3_column_value(st, 3));
		r->tag = sqlite3_column_int64(st, 4);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(
		    ob->db, "could not read _branchsync_log", err, errlen);
	return PROTO_OK;
}

/* Finds seq's outcome in the sorted outcomes, moving *oi forward. */
static const proto_outcome *
outcome_of(const proto_outcome *outs, size_t n, size_t *oi, int64_t seq)
{
	while (*oi < n && outs[*oi].seq < seq)
		(*oi)++;
	return *oi < n && outs[*oi].seq == seq ? &outs[*oi] : NULL;
}

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
} ack_ctx;

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
static const proto_event *
ack_markable(ack_ctx *c, int64_t seq)
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

/* Rejected: keep the entry with its reason. Applied: maybe mark synced. */
static proto_err
ack_one(outbox *ob, const ack_row *r, ack_ctx *c, char *err, size_t errlen)
{
	const proto_outcome *out
	    = outcome_of(c->outs, c->nouts, &c->oi, r->seq);
	const proto_event *ev;
	sqlite3_stmt *st;
	proto_err rv = PROTO_OK;

	if (out != NULL && out->code == PROTO_OUT_REJECTED) {
		st = ob->set_err;
		sqlite3_bind_int64(st, 1, r->seq);
		sqlite3_bind_text(st, 2,
		    out->reason != NULL && out->reason[0] ? out->reason
		                                          : "rejected",
		    -1, SQLITE_TRANSIENT);
	} else if (r->ot != NULL && r->ot->synced != NULL
	    && (ev = ack_markable(c, r->seq)) != NULL
	    && ev->nvals == r->ot->t.ncols) {
		st = r->ot->synced;
		for (uint32_t i = 0; i < ev->nvals; i++)
			db_bind_value(st, (int) i + 1, &ev->vals[i]);
	} else {
		return PROTO_OK;
	}
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_fail(ob->db, "could not process an ack", err, errlen);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rv;
}

/* One chunk in one short write transaction; *n = entries done. */
static proto_err
ack_chunk(
    outbox *ob, int64_t w, ack_ctx *c, size_t *n, char *err, size_t errlen)
{
	ack_row rows[OUTBOX_ACK_CHUNK];
	proto_err rv;

	*n = 0;
	if ((rv = db_exec(ob->db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	if ((rv = ack_rows(ob, w, rows, n, err, errlen)) != PROTO_OK)
		goto done;
	for (size_t i = 0; i < *n && rv == PROTO_OK; i++)
		rv = ack_one(ob, &rows[i], c, err, errlen);
	if (rv != PROTO_OK || *n == 0)
		goto done;
	/* Keep the chunk's last entry: it marks max(seq) and the tag. */
	sqlite3_bind_int64(ob->del, 1, rows[*n - 1].seq);
	if (sqlite3_step(ob->del) != SQLITE_DONE)
		rv = db_fail(
		    ob->db, "could not delete acked entries", err, errlen);
	sqlite3_reset(ob->del);
	if (rv == PROTO_OK
	    && (rv = meta_put(ob, "acked_seq", rows[*n - 1].seq, err, errlen))
	        == PROTO_OK
	    && (rv = meta_put(ob, "acked_tag", rows[*n - 1].tag, err, errlen))
	        == PROTO_OK
	    && (rv = meta_put(ob, "last_ack", now_epoch_s(), err, errlen))
	        == PROTO_OK)
		rv = db_exec(ob->db, "COMMIT", err, errlen);
done:
	if (rv != PROTO_OK || *n == 0)
		db_rollback(ob->db);
	else {
		ob->acked_seq = rows[*n - 1].seq;
		ob->acked_tag = rows[*n - 1].tag;
	}
	for (size_t i = 0; i < *n; i++)
		sqlite3_value_free(rows[i].k);
	return rv;
}

/*
 * POS writes come first. SQLite's busy handler makes a POS commit that
 * meets one of our write transactions sleep at least 1 ms, so short
 * transactions alone do not keep the POS fast: what counts is how often
 * we hold the write lock. While the POS has committed within the last
 * second, the agent stays off the lock YIELD_FACTOR times as long as its
 * last transaction took (1 to 50 ms), which keeps its share near 1% and
 * a colliding POS commit rare. A quiet POS gives the agent full speed;
 * acks overlap the hub's apply of the next batch, so the pause mostly
 * costs nothing.
 */
#define YIELD_FACTOR 199

static void
ack_yield(outbox *ob, int64_t took_us)
{
	int64_t now = now_mono_ms(), ms;

	if (outbox_changed(ob))
		ob->pos_busy_until = now + 1000;
	if (now >= ob->pos_busy_until)
		return;
	ms = took_us * YIELD_FACTOR / 1000;
	sleep_ms(ms < 1 ? 1 : ms > 50 ? 50 : ms);
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
static void
ack_block(ack_ctx *c)
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

proto_err
outbox_ack(outbox *ob, int64_t w, const proto_push *sent, int64_t dups,
    const proto_outcome *outs, size_t n, char *err, size_t errlen)
{
	ack_ctx c = {sent, 0, outs, n, NULL, 0, 0, 0};
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
	ack_block(&c);
	while (rv == PROTO_OK) {
		int64_t t0 = now_mono_us();
		rv = ack_chunk(ob, w, &c, &done, err, errlen);
		if (rv != PROTO_OK || done < OUTBOX_ACK_CHUNK)
			break;
		ack_yield(ob, now_mono_us() - t0);
	}
	free(c.blocked);
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

static proto_err
new_log_id(outbox *ob, char *err, size_t errlen)
{
	uint8_t raw[16];
	char hex[33];
	proto_err rv = PROTO_OK;

	if (rand_bytes(raw, sizeof raw) != PROTO_OK) {
		snprintf(err, errlen, "could not read random bytes");
		return PROTO_EIO;
	}
	hex_encode(raw, sizeof raw, hex);
	sqlite3_bind_text(ob->meta_set, 1, "log_id", -1, SQLITE_STATIC);
	sqlite3_bind_text(ob->meta_set, 2, hex, -1, SQLITE_STATIC);
	if (sqlite3_step(ob->meta_set) != SQLITE_DONE)
		rv = db_fail(
		    ob->db, "could not store a new log id", err, errlen);
	sqlite3_reset(ob->meta_set);
	if (rv == PROTO_OK)
		memcpy(ob->log_id, hex, sizeof hex);
	return rv;
}

static proto_err
scalar(outbox *ob, sqlite3_stmt *st, int64_t arg, bool *found, int64_t *v,
    char *err, size_t errlen)
{
	int rc;

	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, arg);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	*v = *found ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(
		    ob->db, "could not read _branchsync_log", err, errlen);
	return PROTO_OK;
}

proto_err
outbox_welcome(outbox *ob, int64_t w, int64_t t, outbox_id_decision *d,
    char *err, size_t errlen)
{
	int64_t high, tag = 0;
	bool found = false;
	proto_err rv;

	if ((rv = scalar(ob, ob->high, 0, &found, &high, err, errlen))
	        != PROTO_OK
	    || (w > 0
	        && (rv = scalar(ob, ob->tag_at, w, &found, &tag, err, errlen))
	            != PROTO_OK))
		return rv;
	*d = outbox_id_decide(ob->acked_seq, high, w, t, w > 0 && found, tag);
	if (*d == OUTBOX_ID_TRUST)
		return outbox_ack(ob, w, NULL, 0, NULL, 0, err, errlen);
	if (*d == OUTBOX_ID_RESTORED)
		return new_log_id(ob, err, errlen);
	return PROTO_OK;
}

static proto_err
count(outbox *ob, const char *sql, int64_t arg, int64_t *v, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	bool found;
	proto_err rv;

	if ((rv = db_prepare(ob->db, sql, &st, err, errlen)) != PROTO_OK)
		return rv;
	rv = scalar(ob, st, arg, &found, v, err, errlen);
	sqlite3_finalize(st);
	return rv;
}

proto_err
outbox_stats(
    outbox *ob, bool exact, outbox_counts *st, char *err, size_t errlen)
{
	bool found;
	proto_err rv;
	int rc;

	memset(st, 0, sizeof *st);
	st->acked_seq = ob->acked_seq;
	st->acked_tag = ob->acked_tag;
	if ((rv = scalar(ob, ob->high, 0, &found, &st->high_seq, err, errlen))
	    != PROTO_OK)
		return rv;
	/* seq numbers above acked_seq are dense, so this is close. */
	st->pending = st->high_seq - st->acked_seq;
	if (exact
	    && ((rv = count(ob,
	             "SELECT count(*) FROM _branchsync_log WHERE seq > ?1 AND "
	             "err IS NULL",
	             ob->acked_seq, &st->pending, err, errlen))
	            != PROTO_OK
	        || (rv = count(ob,
	                "SELECT count(*) FROM _branchsync_log WHERE err IS "
	                "NOT "
	                "NULL",
	                0, &st->rejected, err, errlen))
	            != PROTO_OK))
		return rv;
	if (exact
	    && (rv = count(ob,
	            "SELECT count(*) FROM _branchsync_log WHERE retry = 1 AND "
	            "err IS NULL",
	            0, &st->retry, err, errlen))
	        != PROTO_OK)
		return rv;
	if ((rv = scalar(ob, ob->oldest, ob->acked_seq, &found, &st->oldest_ts,
	         err, errlen))
	    != PROTO_OK)
		return rv;
	/* Only entries set aside above acked_seq: nothing to send. */
	if (!found)
		st->pending = 0;
	sqlite3_bind_text(ob->meta_get, 1, "last_ack", -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(ob->meta_get)) == SQLITE_ROW)
		st->last_ack = sqlite3_column_int64(ob->meta_get, 0);
	else if (rc != SQLITE_DONE)
		rv = db_fail(
		    ob->db, "could not read _branchsync_meta", err, errlen);
	sqlite3_reset(ob->meta_get);
	if (rv != PROTO_OK)
		return rv;
	st->queue_bytes = st->pending * ob->avg_bytes;
	return PROTO_OK;
}

int64_t
outbox_stall_since(int64_t pending, int64_t now, int64_t last_ack,
    int64_t oldest, int64_t start, int64_t stall_ms)
{
	int64_t since = last_ack;

	if (pending <= 0)
		return 0;
	/* Waiting counts from the latest sign of life: an ACK, the first
	 * pending write (after an idle spell), or when we began to watch. */
	if (oldest > since)
		since = oldest;
	if (start > since)
		since = start;
	if (since <= 0 || now - since < stall_ms)
		return 0;
	return since;
}

int
outbox_warn_decide(
    int64_t pending, int64_t age_s, int64_t warn_events, int64_t warn_age_s)
{
	int w = 0;

	if (pending <= 0)
		return 0;
	if (pending >= warn_events)
		w |= OUTBOX_WARN_EVENTS;
	if (age_s >= 0 && age_s >= warn_age_s)
		w |= OUTBOX_WARN_AGE;
	return w;
}

proto_err
outbox_has_retry(outbox *ob, bool *yes, char *err, size_t errlen)
{
	int64_t v;

	return scalar(ob, ob->retry_any, ob->acked_seq, yes, &v, err, errlen);
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
retry_one(outbox *ob, const proto_event *ev, ack_ctx *c, bool applied,
    char *err, size_t errlen)
{
	const proto_outcome *out
	    = outcome_of(c->outs, c->nouts, &c->oi, ev->seq);
	const proto_event *mev;
	ob_table *ot = NULL;
	sqlite3_stmt *st;
	proto_err rv;

	if (out != NULL && out->code == PROTO_OUT_REJECTED) {
		st = ob->set_err;
		sqlite3_bind_int64(st, 1, ev->seq);
		sqlite3_bind_text(st, 2,
		    out->reason != NULL && out->reason[0] ? out->reason
		                                          : "rejected",
		    -1, SQLITE_TRANSIENT);
		return step_done(
		    ob->db, st, "could not process an ack", err, errlen);
	}
	if (ev->table < c->sent->ntables)
		ot = find_table(ob, c->sent->tables[ev->table].name);
	if (out == NULL && applied && ot != NULL && ot->synced != NULL
	    && (mev = ack_markable(c, ev->seq)) != NULL
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
outbox_ack_retry(outbox *ob, const proto_push *sent, int64_t dups,
    const proto_outcome *outs, size_t n, char *err, size_t errlen)
{
	ack_ctx c = {sent, 0, outs, n, NULL, 0, 0, 0};
	size_t nnone = 0, oi = 0, i = 0;
	bool applied;
	proto_err rv = PROTO_OK;

	for (size_t k = 0; k < sent->nevents; k++)
		nnone += outcome_of(outs, n, &oi, sent->events[k].seq) == NULL;
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
	ack_block(&c);
	while (rv == PROTO_OK && i < sent->nevents) {
		int64_t t0 = now_mono_us();
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
		    && (rv = meta_put(
		            ob, "last_ack", now_epoch_s(), err, errlen))
		        == PROTO_OK)
			rv = db_exec(ob->db, "COMMIT", err, errlen);
		if (rv != PROTO_OK)
			db_rollback(ob->db);
		else if (i < sent->nevents)
			ack_yield(ob, now_mono_us() - t0);
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
outbox_reject_retry(sqlite3 *db, const int64_t *seqs, size_t n, bool strict,
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
outbox_reject_discard(sqlite3 *db, const int64_t *seqs, size_t n, bool strict,
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
outbox_welcome_lists(outbox *ob, const proto_welcome *w, int64_t *nretry,
    int64_t *ndiscard, char *err, size_t errlen)
{
	proto_err rv = PROTO_OK;

	*nretry = *ndiscard = 0;
	if (w->nretry > 0)
		rv = outbox_reject_retry(
		    ob->db, w->retry, w->nretry, false, nretry, err, errlen);
	if (rv == PROTO_OK && w->ndiscard > 0)
		rv = outbox_reject_discard(ob->db, w->discard, w->ndiscard,
		    false, ndiscard, err, errlen);
	return rv;
}

static char *
col_dup(sqlite3_stmt *st, int i)
{
	const char *t = (const char *) sqlite3_column_text(st, i);
	return t != NULL ? xstrdup(t) : NULL;
}

proto_err
outbox_rejects(
    outbox *ob, outbox_reject **out, size_t *n, char *err, size_t errlen)
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
		outbox_reject *r;
		const char *tbl = (const char *) sqlite3_column_text(st, 1);
		ob_table *ot = find_table(ob, tbl != NULL ? tbl : "");
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
		outbox_rejects_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rv;
}

void
outbox_rejects_free(outbox_reject *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].table);
		free(r[i].key);
		free(r[i].reason);
	}
	free(r);
}
