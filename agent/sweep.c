/*
 * sweep.c: queue existing rows as log entries, in short batches.
 *
 * See sweep.h for what is queued. The key of each entry comes from
 * capture_key_sql, the expression the triggers use, so an entry written
 * here and one written by a trigger for the same row are equal in
 * _branchsync_log(tbl, k), which the "nothing waiting" test probes.
 */
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "platform.h"
#include "sqlb.h"
#include "util.h"

/* Between batches the agent leaves the write lock to the POS this long,
 * at least, so a till waiting in its busy handler gets its turn. */
#define SWEEP_PAUSE_MIN_MS 2
#define SWEEP_PAUSE_MAX_MS 50

/* A log entry that will still be sent, or waits for an operator. */
#define WAITING                                                               \
	"(l.seq > (SELECT value FROM _branchsync_meta WHERE name = "          \
	"'acked_seq') OR l.err IS NOT NULL OR l.retry = 1)"

/*
 * The batch statement. With rowid: ?1, ?2 bound the rowid range; without
 * (WITHOUT ROWID): ?1 is a LIMIT, and each batch finds the rows the
 * previous ones did not queue through the "nothing waiting" test.
 */
static char *
insert_sql(const capture_table *t, sweep_mode mode, bool rowid)
{
	char *key = capture_key_sql(t, "r");
	strbuf b = {0};

	strbuf_printf(&b,
	    "INSERT INTO _branchsync_log(tbl, op, k, tag, ts) "
	    "SELECT ");
	sqlb_lit(&b, t->name);
	strbuf_printf(&b,
	    ", 2, %s, random(), CAST(strftime('%%s', 'now') AS INTEGER) "
	    "FROM ",
	    key);
	sqlb_ident(&b, t->name);
	strbuf_printf(&b, " AS r WHERE %s",
	    rowid ? "r.rowid BETWEEN ?1 AND ?2 AND " : "");
	if (mode == SWEEP_UNSYNCED)
		strbuf_printf(&b, "r.is_synced IS NOT 1 AND ");
	/* A NULL key is queued too: the hub sets its event aside with the
	 * reason, where the operator sees it. */
	strbuf_printf(&b,
	    "NOT EXISTS (SELECT 1 FROM _branchsync_log l WHERE "
	    "l.tbl = ");
	sqlb_lit(&b, t->name);
	/* "+": no affinity on our side, so the probe uses the (tbl, k)
	 * index rather than scanning every entry of the table. IS: a NULL
	 * key's entry is found as well. */
	strbuf_printf(&b, " AND l.k IS +(%s) AND " WAITING ")", key);
	strbuf_printf(&b, rowid ? " ORDER BY r.rowid" : " LIMIT ?1");
	free(key);
	return strbuf_take(&b);
}

/* Runs sql (one optional int64 argument) and returns its first column. */
static proto_err
scalar(sqlite3 *db, const char *sql, const int64_t *arg, int64_t *v,
    bool *found, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;
	int rc;

	if ((rv = db_prepare(db, sql, &st, err, errlen)) != PROTO_OK)
		return rv;
	if (arg != NULL)
		sqlite3_bind_int64(st, 1, *arg);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
	*v = *found ? sqlite3_column_int64(st, 0) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		rv = db_fail(
		    db, "could not read a table to sweep", err, errlen);
	sqlite3_finalize(st);
	return rv;
}

/* "SELECT <what> FROM "T"<rest>" as new text. */
static char *
table_sql(const capture_table *t, const char *what, const char *rest)
{
	strbuf b = {0};

	strbuf_printf(&b, "SELECT %s FROM ", what);
	sqlb_ident(&b, t->name);
	strbuf_printf(&b, "%s", rest);
	return strbuf_take(&b);
}

static bool
has_rowid(sqlite3 *db, const capture_table *t)
{
	char *sql = table_sql(t, "rowid", " LIMIT 0");
	sqlite3_stmt *st = NULL;
	bool yes = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK;

	sqlite3_finalize(st);
	free(sql);
	return yes;
}

/* State of one table's sweep. */
typedef struct {
	sqlite3 *db;                /* the POS file */
	const capture_table *t;     /* the table */
	sqlite3_stmt *ins;          /* the batch statement */
	sweep_progress_cb progress; /* or NULL */
	void *arg;                  /* for progress */
	int64_t total;              /* rows when the sweep began */
	int64_t checked;            /* rows looked at */
	int64_t *queued;            /* rows queued */
} sweeper;

/* One batch in its own write transaction; *n = rows queued. */
static proto_err
batch(sweeper *s, int64_t a, int64_t b, int64_t *n, char *err, size_t errlen)
{
	int64_t t0 = plat_mono_ms(), pause;
	proto_err rv;

	*n = 0;
	if ((rv = db_exec(s->db, "BEGIN IMMEDIATE", err, errlen)) != PROTO_OK)
		return rv;
	sqlite3_bind_int64(s->ins, 1, a);
	sqlite3_bind_int64(s->ins, 2, b);
	if (sqlite3_step(s->ins) != SQLITE_DONE)
		rv = db_fail(s->db, "could not queue rows", err, errlen);
	else
		*n = sqlite3_changes(s->db);
	sqlite3_reset(s->ins);
	if (rv == PROTO_OK)
		rv = db_exec(s->db, "COMMIT", err, errlen);
	if (rv != PROTO_OK) {
		db_rollback(s->db);
		*n = 0;
		return rv;
	}
	*s->queued += *n;
	pause = plat_mono_ms() - t0;
	plat_sleep_ms(pause < SWEEP_PAUSE_MIN_MS ? SWEEP_PAUSE_MIN_MS
	        : pause > SWEEP_PAUSE_MAX_MS     ? SWEEP_PAUSE_MAX_MS
	                                         : pause);
	return PROTO_OK;
}

static void
report(sweeper *s)
{
	if (s->checked > s->total)
		s->checked = s->total;
	if (s->progress != NULL)
		s->progress(
		    s->arg, s->t->name, s->checked, s->total, *s->queued);
}

/* Walks rowid ranges of SWEEP_BATCH_ROWS rows up to the max at start. */
static proto_err
by_rowid(sweeper *s, char *err, size_t errlen)
{
	char rest[80], *min_sql = table_sql(s->t, "min(rowid)", ""),
	               *max_sql = table_sql(s->t, "max(rowid)", ""), *hi_sql;
	int64_t lo, end, hi, n;
	bool found;
	proto_err rv;

	snprintf(rest, sizeof rest,
	    " WHERE rowid >= ?1 ORDER BY rowid LIMIT 1 OFFSET %d",
	    SWEEP_BATCH_ROWS - 1);
	hi_sql = table_sql(s->t, "rowid", rest);
	if ((rv = scalar(s->db, min_sql, NULL, &lo, &found, err, errlen))
	        != PROTO_OK
	    || !found
	    || (rv = scalar(s->db, max_sql, NULL, &end, &found, err, errlen))
	        != PROTO_OK)
		goto done;
	for (;;) {
		if ((rv = scalar(s->db, hi_sql, &lo, &hi, &found, err, errlen))
		    != PROTO_OK)
			break;
		if (!found || hi > end)
			hi = end;
		if ((rv = batch(s, lo, hi, &n, err, errlen)) != PROTO_OK)
			break;
		s->checked += SWEEP_BATCH_ROWS;
		report(s);
		if (hi >= end || plat_stop_requested())
			break;
		lo = hi + 1;
	}
done:
	free(min_sql);
	free(max_sql);
	free(hi_sql);
	return rv;
}

/* WITHOUT ROWID: LIMIT batches until one queues nothing. */
static proto_err
by_limit(sweeper *s, char *err, size_t errlen)
{
	int64_t n;
	proto_err rv;

	do {
		rv = batch(s, SWEEP_BATCH_ROWS, 0, &n, err, errlen);
		s->checked = *s->queued;
		report(s);
	} while (rv == PROTO_OK && n > 0 && !plat_stop_requested());
	return rv;
}

proto_err
sweep_table(sqlite3 *db, const capture_table *t, sweep_mode mode,
    sweep_progress_cb progress, void *arg, int64_t *queued, char *err,
    size_t errlen)
{
	sweeper s = {db, t, NULL, progress, arg, 0, 0, queued};
	bool rowid, found;
	char *sql;
	proto_err rv;

	*queued = 0;
	if (mode == SWEEP_UNSYNCED && !t->has_synced)
		return PROTO_OK;
	rowid = has_rowid(db, t);
	sql = table_sql(t, "count(*)", "");
	rv = scalar(db, sql, NULL, &s.total, &found, err, errlen);
	free(sql);
	if (rv != PROTO_OK)
		return rv;
	sql = insert_sql(t, mode, rowid);
	rv = db_prepare(db, sql, &s.ins, err, errlen);
	free(sql);
	if (rv == PROTO_OK)
		rv = rowid ? by_rowid(&s, err, errlen)
		           : by_limit(&s, err, errlen);
	sqlite3_finalize(s.ins);
	if (rv == PROTO_OK && s.checked < s.total) {
		s.checked = s.total;
		report(&s);
	}
	return rv;
}

#define ACKED "(SELECT value FROM _branchsync_meta WHERE name = 'acked_seq')"

static void
bind_range(sqlite3_stmt *st, const void *arg)
{
	const int64_t *r = arg;
	sqlite3_bind_int64(st, 1, r[0]);
	sqlite3_bind_int64(st, 2, r[1]);
}

/* One batch of sweep_move_pending: entries in (lo, hi], one transaction. */
static proto_err
move_batch(sqlite3 *db, int64_t lo, int64_t hi, int64_t *moved, char *err,
    size_t errlen)
{
	static const char *const sql[2] = {
	    "INSERT INTO _branchsync_log(tbl, op, k, tag, ts) SELECT tbl, op, "
	    "k, random(), ts FROM _branchsync_log WHERE seq > ?1 AND seq <= "
	    "?2 AND seq > " ACKED " AND err IS NULL AND retry IS NULL ORDER "
	    "BY seq",
	    "DELETE FROM _branchsync_log WHERE seq > ?1 AND seq <= ?2 AND seq "
	    "> " ACKED " AND err IS NULL AND retry IS NULL",
	};
	const int64_t range[2] = {lo, hi};
	int64_t n = 0;
	proto_err rv = db_tx_steps(db, sql, 2, bind_range, range, &n,
	    "could not move log entries", err, errlen);

	*moved += n;
	return rv;
}

/* The meta row of a requested move: its value is hi. */
#define MOVE_MARK "move_after"

proto_err
sweep_move_request(sqlite3 *db, int64_t hi, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;

	/* Two sweeps before the move: the earlier request stands, so what
	 * the first one queued stays before what the second one queued. */
	if ((rv = db_prepare(db,
	         "INSERT OR IGNORE INTO _branchsync_meta(name, value) VALUES "
	         "('" MOVE_MARK "', ?1)",
	         &st, err, errlen))
	    != PROTO_OK)
		return rv;
	sqlite3_bind_int64(st, 1, hi);
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_fail(
		    db, "could not update _branchsync_meta", err, errlen);
	sqlite3_finalize(st);
	return rv;
}

proto_err
sweep_move_pending(sqlite3 *db, int64_t *moved, char *err, size_t errlen)
{
	int64_t lo = 0, hi = 0, acked;
	bool found;
	proto_err rv;

	*moved = 0;
	if ((rv = scalar(db,
	         "SELECT value FROM _branchsync_meta WHERE name = "
	         "'" MOVE_MARK "'",
	         NULL, &hi, &found, err, errlen))
	        != PROTO_OK
	    || !found)
		return rv;
	if ((rv = scalar(
	         db, "SELECT " ACKED, NULL, &acked, &found, err, errlen))
	    != PROTO_OK)
		return rv;
	for (lo = acked; lo < hi && rv == PROTO_OK; lo += SWEEP_BATCH_ROWS) {
		int64_t b
		    = hi - lo > SWEEP_BATCH_ROWS ? lo + SWEEP_BATCH_ROWS : hi;
		rv = move_batch(db, lo, b, moved, err, errlen);
	}
	/* A crash before this line moves the rest (or nothing) again. */
	if (rv == PROTO_OK)
		rv = db_exec(db,
		    "DELETE FROM _branchsync_meta WHERE name = '" MOVE_MARK
		    "'",
		    err, errlen);
	return rv;
}

/* Runs one statement on the mark "kind:name". */
static proto_err
mark_exec(sqlite3 *db, const char *sql, const char *kind, const char *name,
    char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char *mark;
	proto_err rv;

	if ((rv = db_prepare(db, sql, &st, err, errlen)) != PROTO_OK)
		return rv;
	mark = xmalloc(strlen(kind) + strlen(name) + 2);
	sprintf(mark, "%s:%s", kind, name);
	sqlite3_bind_text(st, 1, mark, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_fail(
		    db, "could not update _branchsync_meta", err, errlen);
	sqlite3_finalize(st);
	free(mark);
	return rv;
}

proto_err
sweep_mark_set(
    sqlite3 *db, const char *kind, const char *name, char *err, size_t errlen)
{
	return mark_exec(db,
	    "INSERT OR IGNORE INTO _branchsync_meta(name, value) VALUES (?1, "
	    "CAST(strftime('%s', 'now') AS INTEGER))",
	    kind, name, err, errlen);
}

proto_err
sweep_mark_clear(
    sqlite3 *db, const char *kind, const char *name, char *err, size_t errlen)
{
	return mark_exec(db, "DELETE FROM _branchsync_meta WHERE name = ?1",
	    kind, name, err, errlen);
}

proto_err
sweep_marks(sqlite3 *db, const char *kind, char ***names, size_t *n, char *err,
    size_t errlen)
{
	size_t plen = strlen(kind) + 1;
	sqlite3_stmt *st;
	proto_err rv;
	int rc;

	*names = NULL;
	*n = 0;
	if ((rv = db_prepare(db,
	         "SELECT name FROM _branchsync_meta WHERE substr(name, 1, "
	         "?2) = ?1 ORDER BY name",
	         &st, err, errlen))
	    != PROTO_OK)
		return rv;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t) plen - 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *m = (const char *) sqlite3_column_text(st, 0);
		if (m == NULL || strlen(m) <= plen || m[plen - 1] != ':')
			continue;
		*names = xrealloc(*names, (*n + 1) * sizeof **names);
		(*names)[(*n)++] = xstrdup(m + plen);
	}
	if (rc != SQLITE_DONE)
		rv = db_fail(
		    db, "could not read _branchsync_meta", err, errlen);
	sqlite3_finalize(st);
	return rv;
}

void
sweep_marks_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
