/*
 * outbox_state.c: open and close the outbox (table layouts, prepared
 * statements), its log identity and its counters.
 *
 * The statements the outbox reuses (per table and for the log) are
 * prepared here, once, at open; outbox.c and rejects.c step them.
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
#include "sqlb.h"
#include "util.h"

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
add_key_match(strbuf *b, const capture_table *t)
{
	for (size_t i = 0; i < t->nkey; i++) {
		strbuf_printf(b, "%s", i ? " AND " : "");
		sqlb_ident(b, t->cols[i]);
		strbuf_printf(b, " IS ?%zu", i + 1);
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
prepare_synced(
    sqlite3 *db, ob_table *ot, bool at_rowid, char *err, size_t errlen)
{
	const capture_table *t = &ot->t;
	strbuf b = {0};
	proto_err rv;

	strbuf_printf(&b, "UPDATE ");
	sqlb_ident(&b, t->name);
	strbuf_printf(&b, " SET is_synced = 1 WHERE is_synced IS NOT 1");
	if (at_rowid)
		strbuf_printf(&b, " AND %s = ?%zu", t->rowid, t->ncols + 1);
	for (size_t i = 0; i < t->ncols; i++) {
		/* At a rowid, "+": the key is compared, not searched. */
		strbuf_printf(
		    &b, " AND %s", at_rowid && i < t->nkey ? "+" : "");
		sqlb_ident(&b, t->cols[i]);
		strbuf_printf(&b, i < t->nkey ? " = ?%zu" : " IS ?%zu", i + 1);
	}
	rv = db_prepare(
	    db, b.p, at_rowid ? &ot->synced_r : &ot->synced, err, errlen);
	strbuf_fini(&b);
	return rv;
}

/*
 * The row's values (and its rowid, if it has one) by key, or at the
 * rowid its log entry noted if it still holds that key (a rowid can be
 * reused after a delete, or renumbered by VACUUM).
 */
static proto_err
prepare_sel(sqlite3 *db, ob_table *ot, bool at_rowid, char *err, size_t errlen)
{
	const capture_table *t = &ot->t;
	strbuf b = {0};
	proto_err rv;

	strbuf_printf(&b, "SELECT ");
	for (size_t i = 0; i < t->ncols; i++) {
		strbuf_printf(&b, "%s", i ? ", " : "");
		sqlb_ident(&b, t->cols[i]);
	}
	if (t->rowid != NULL)
		strbuf_printf(&b, ", %s", t->rowid);
	strbuf_printf(&b, " FROM ");
	sqlb_ident(&b, t->name);
	strbuf_printf(&b, " WHERE ");
	if (at_rowid) {
		strbuf_printf(&b, "%s = ?%zu", t->rowid, t->nkey + 1);
		for (size_t i = 0; i < t->nkey; i++) {
			strbuf_printf(&b, " AND +");
			sqlb_ident(&b, t->cols[i]);
			strbuf_printf(&b, " IS ?%zu", i + 1);
		}
	} else {
		add_key_match(&b, t);
	}
	rv = db_prepare(
	    db, b.p, at_rowid ? &ot->sel_r : &ot->sel, err, errlen);
	strbuf_fini(&b);
	return rv;
}

/* The key of a log entry as SQL over column k: itself or json parts. */
static void
add_key_select(strbuf *b, const capture_table *t)
{
	if (t->nkey == 1) {
		strbuf_printf(b, "SELECT k");
		return;
	}
	for (size_t i = 0; i < t->nkey; i++)
		strbuf_printf(
		    b, "%sjson_extract(k, '$[%zu]')", i ? ", " : "SELECT ", i);
}

static void
add_key_tuple(strbuf *b, const capture_table *t)
{
	strbuf_printf(b, t->nkey > 1 ? "(" : "");
	for (size_t i = 0; i < t->nkey; i++) {
		strbuf_printf(b, "%s", i ? ", " : "");
		sqlb_ident(b, t->cols[i]);
	}
	strbuf_printf(b, t->nkey > 1 ? ")" : "");
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
    sqlite3 *db, ob_table *ot, strbuf *b, char *err, size_t errlen)
{
	const capture_table *t = &ot->t;

	strbuf_printf(b, "UPDATE ");
	sqlb_ident(b, t->name);
	strbuf_printf(b, " SET is_synced = 1 WHERE is_synced IS NOT 1 AND ");
	add_key_tuple(b, t);
	strbuf_printf(b, " IN (");
	add_key_select(b, t);
	/* "+tbl": walk the seq range, not every entry of the table in
	 * _branchsync_log_key. */
	strbuf_printf(b,
	    " FROM _branchsync_log WHERE +tbl = ?1 AND seq > ?2 AND "
	    "seq <= ?3 AND op IN (1, 2) AND err IS NULL) AND ");
	add_key_tuple(b, t);
	strbuf_printf(b, " NOT IN (");
	add_key_select(b, t);
	strbuf_printf(
	    b, " FROM _branchsync_log WHERE +tbl = ?1 AND seq > ?3)");
	return db_prepare(db, b->p, &ot->synced_dup, err, errlen);
}

static proto_err
prepare_table(sqlite3 *db, ob_table *ot, char *err, size_t errlen)
{
	const capture_table *t = &ot->t;
	strbuf b = {0};
	proto_err rv;

	if ((rv = prepare_sel(db, ot, false, err, errlen)) != PROTO_OK
	    || (t->rowid != NULL
	        && (rv = prepare_sel(db, ot, true, err, errlen)) != PROTO_OK))
		goto done;
	if (t->nkey > 1) {
		/* Part i: its value, and the hex of a BLOB part or NULL. */
		strbuf_printf(&b, "SELECT ");
		for (size_t i = 0; i < t->nkey; i++)
			strbuf_printf(&b,
			    "%sjson_extract(?1, '$[%zu]'), "
			    "json_extract(?1, '$[%zu].b')",
			    i ? ", " : "", i, i);
		if ((rv = db_prepare(db, b.p, &ot->keyvals, err, errlen))
		    != PROTO_OK)
			goto done;
		strbuf_fini(&b);
	}
	if (t->has_synced) {
		if ((rv = prepare_synced(db, ot, false, err, errlen))
		        != PROTO_OK
		    || (t->rowid != NULL
		        && (rv = prepare_synced(db, ot, true, err, errlen))
		            != PROTO_OK))
			goto done;
		rv = prepare_synced_dup(db, ot, &b, err, errlen);
	}
done:
	strbuf_fini(&b);
	return rv;
}

static const struct {
	size_t off;      /* statement field in struct outbox */
	const char *sql; /* its text */
} global_stmts[] = {
    {offsetof(struct outbox, log_sel),
        "SELECT seq, tbl, op, k, tag, r FROM _branchsync_log WHERE seq > "
        "?1 AND seq <= ?2 AND err IS NULL ORDER BY seq LIMIT ?3"},
    {offsetof(struct outbox, set_err),
        "UPDATE _branchsync_log SET err = ?2, retry = NULL WHERE seq = ?1"},
    /* Compaction (outbox.c): the kept entries are the pending ones, the
     * marker at acked_seq, rejects and retries. */
    {offsetof(struct outbox, keep_fill),
        "INSERT INTO temp._bs_keep SELECT * FROM main._branchsync_log "
        "WHERE seq >= ?1 OR err IS NOT NULL OR retry IS NOT NULL"},
    {offsetof(struct outbox, keep_back),
        "INSERT INTO main._branchsync_log SELECT * FROM temp._bs_keep"},
    {offsetof(struct outbox, keep_drop), "DELETE FROM temp._bs_keep"},
    /* No WHERE: SQLite clears the table and its indexes page by page. */
    {offsetof(struct outbox, log_clear), "DELETE FROM main._branchsync_log"},
    {offsetof(struct outbox, low_sel),
        "SELECT coalesce(min(seq), 0) FROM _branchsync_log"},
    {offsetof(struct outbox, meta_set),
        "INSERT OR REPLACE INTO _branchsync_meta(name, value) "
        "VALUES (?1, ?2)"},
    {offsetof(struct outbox, tag_at),
        "SELECT tag FROM _branchsync_log WHERE seq = ?1"},
    {offsetof(struct outbox, high),
        "SELECT coalesce(max(seq), 0) FROM _branchsync_log"},
    {offsetof(struct outbox, dv), "PRAGMA data_version"},
    {offsetof(struct outbox, sv), "PRAGMA schema_version"},
    /* Retried entries were acknowledged once, so they lie at or below
     * acked_seq, among the entries kept there and the acknowledged ones
     * not compacted yet (outbox.c): a scan of at most those. */
    {offsetof(struct outbox, retry_sel),
        "SELECT seq, tbl, op, k, tag, r FROM _branchsync_log WHERE seq <= "
        "?1 "
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
    {offsetof(struct outbox, later_scan),
        "SELECT seq, tbl, k FROM _branchsync_log WHERE seq > ?1 ORDER BY "
        "seq"},
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

/* Called by SQLite after each of our commits in WAL mode. */
static int
wal_cb(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void) db;
	(void) name;
	((outbox *) arg)->wal_pages = pages;
	return SQLITE_OK;
}

bool
outbox_schema_stale(const outbox *ob)
{
	return ob->schema_stale;
}

proto_err
outbox_open(const agent_config *conf, outbox **out, char *err, size_t errlen)
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
	/* Before the layouts are read: a schema change after this point
	 * shows as another version in every batch read (read_batch). */
	if ((rv = db_schema_version(ob->db, &ob->schema_version, err, errlen))
	        != PROTO_OK
	    || (rv = read_meta(ob, err, errlen)) != PROTO_OK
	    || (rv = db_exec(ob->db, CAPTURE_LOG_KEY_INDEX, err, errlen))
	        != PROTO_OK
	    || (rv = db_exec(ob->db,
	            "PRAGMA temp_store = MEMORY; CREATE TEMP TABLE _bs_keep "
	            "AS "
	            "SELECT * FROM main._branchsync_log WHERE 0",
	            err, errlen))
	        != PROTO_OK
	    || (rv = describe_tables(ob, err, errlen)) != PROTO_OK
	    || (rv = prepare_all(ob, err, errlen)) != PROTO_OK)
		goto fail;
	ob->low = outbox_low(ob);
	ob->ls = laterset_new();
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
		sqlite3_finalize(ob->tables[i].sel_r);
		sqlite3_finalize(ob->tables[i].keyvals);
		sqlite3_finalize(ob->tables[i].synced);
		sqlite3_finalize(ob->tables[i].synced_r);
		sqlite3_finalize(ob->tables[i].synced_dup);
		capture_table_fini(&ob->tables[i].t);
	}
	free(ob->tables);
	laterset_free(ob->ls);
	sqlite3_close_v2(ob->db);
	free(ob);
}

int64_t
outbox_low(outbox *ob)
{
	int64_t v = 0;

	if (sqlite3_step(ob->low_sel) == SQLITE_ROW)
		v = sqlite3_column_int64(ob->low_sel, 0);
	sqlite3_reset(ob->low_sel);
	return v;
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

static proto_err
new_log_id(outbox *ob, char *err, size_t errlen)
{
	uint8_t raw[16];
	char hex[33];
	proto_err rv = PROTO_OK;

	if (plat_rand_bytes(raw, sizeof raw) != PROTO_OK) {
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

proto_err
outbox_scalar(outbox *ob, sqlite3_stmt *st, int64_t arg, bool *found,
    int64_t *v, char *err, size_t errlen)
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

	if ((rv = outbox_scalar(ob, ob->high, 0, &found, &high, err, errlen))
	        != PROTO_OK
	    || (w > 0
	        && (rv = outbox_scalar(
	                ob, ob->tag_at, w, &found, &tag, err, errlen))
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
	rv = outbox_scalar(ob, st, arg, &found, v, err, errlen);
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
	if ((rv = outbox_scalar(
	         ob, ob->high, 0, &found, &st->high_seq, err, errlen))
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
	if ((rv = outbox_scalar(ob, ob->oldest, ob->acked_seq, &found,
	         &st->oldest_ts, err, errlen))
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
