/*
 * schemawatch.c: notice POS schema changes, refit the capture triggers and
 * find the writes made while they were missing. See schemawatch.h.
 */
#include "schemawatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "platform.h"
#include "sweep.h"
#include "util.h"

struct schemawatch {
	const agent_config *conf; /* configuration (borrowed) */
	int64_t version;          /* schema_version last seen, -1 none yet */
	char **unfit;             /* per conf table: why it does not fit */
};

schemawatch *
schemawatch_new(const agent_config *conf)
{
	schemawatch *sw = xcalloc(1, sizeof *sw);

	sw->conf = conf;
	sw->version = -1;
	sw->unfit = xcalloc(conf->ntables + 1, sizeof *sw->unfit);
	return sw;
}

void
schemawatch_free(schemawatch *sw)
{
	if (sw == NULL)
		return;
	for (size_t i = 0; i < sw->conf->ntables; i++)
		free(sw->unfit[i]);
	free(sw->unfit);
	free(sw);
}

/* PRAGMA schema_version, or -1 on an error. */
static int64_t
schema_version(sqlite3 *db)
{
	char err[256];
	int64_t v;

	return db_schema_version(db, &v, err, sizeof err) == PROTO_OK ? v : -1;
}

bool
schemawatch_changed(schemawatch *sw, sqlite3 *db)
{
	int64_t v = schema_version(db);
	bool changed = v < 0 || v != sw->version;

	sw->version = v;
	return changed;
}

/* How many of t's three capture triggers are missing from the catalog. */
static proto_err
missing_triggers(sqlite3 *db, const capture_table *t, int *missing, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;

	*missing = 0;
	if ((rv = db_prepare(db,
	         "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND "
	         "name = ?1 AND tbl_name = ?2 COLLATE NOCASE",
	         &st, err, errlen))
	    != PROTO_OK)
		return rv;
	for (int kind = 0; kind < 3 && rv == PROTO_OK; kind++) {
		char *name, *sql = capture_trigger_sql(t, kind, &name);
		int rc;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			(*missing)++;
		else if (rc != SQLITE_ROW)
			rv = db_fail(
			    db, "could not read triggers", err, errlen);
		sqlite3_reset(st);
		free(name);
		free(sql);
	}
	sqlite3_finalize(st);
	return rv;
}

/* Runs sql (?1 = arg, ?2 = OUTBOX_UNKNOWN_TABLE) for one number. */
static proto_err
count_sql(sqlite3 *db, const char *sql, const char *arg, int64_t *v, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;

	*v = 0;
	if ((rv = db_prepare(db, sql, &st, err, errlen)) != PROTO_OK)
		return rv;
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_text(
		    st, 2, OUTBOX_UNKNOWN_TABLE, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	else
		rv = db_fail(db, "could not read the catalog", err, errlen);
	sqlite3_finalize(st);
	return rv;
}

/*
 * Entries of table set aside while it did not fit go back in the queue
 * as new entries (new seqs: the hub's watermark may be past the old
 * ones). *n counts them. One short write transaction.
 */
static void
bind_requeue(sqlite3_stmt *st, const void *table)
{
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, OUTBOX_UNKNOWN_TABLE, -1, SQLITE_STATIC);
}

static proto_err
requeue(sqlite3 *db, const char *table, int64_t *n, char *err, size_t errlen)
{
	static const char *const sql[2] = {
	    "INSERT INTO _branchsync_log(tbl, op, k, tag, ts) SELECT tbl, op, "
	    "k, random(), ts FROM _branchsync_log WHERE tbl = ?1 AND err = ?2 "
	    "ORDER BY seq",
	    "DELETE FROM _branchsync_log WHERE tbl = ?1 AND err = ?2 AND seq "
	    "IS NOT (SELECT value FROM _branchsync_meta WHERE name = "
	    "'acked_seq')",
	};
	proto_err rv;
	int64_t any = 0;

	*n = 0;
	/* Read first: the write lock only when there is work. */
	if ((rv = count_sql(db,
	         "SELECT count(*) FROM (SELECT 1 FROM _branchsync_log WHERE "
	         "tbl = ?1 AND err = ?2 LIMIT 1)",
	         table, &any, err, errlen))
	        != PROTO_OK
	    || any == 0)
		return rv;
	return db_tx_steps(db, sql, 2, bind_requeue, table, n,
	    "could not requeue entries", err, errlen);
}

/* Table i does not fit: say so once per reason. */
static void
note_unfit(schemawatch *sw, size_t i, const char *why)
{
	const char *name = sw->conf->tables[i].name;

	if (sw->unfit[i] != NULL && !strcmp(sw->unfit[i], why))
		return;
	free(sw->unfit[i]);
	sw->unfit[i] = xstrdup(why);
	log_error("AGENT-TABLE-UNFIT",
	    "table \"%s\" cannot be captured: %s; its writes are not sent "
	    "until the table or the configuration is fixed, the other "
	    "tables' are",
	    name, why);
}

/* Table t (conf index i) fits: requeue what was set aside for it. */
static proto_err
note_fit(schemawatch *sw, sqlite3 *db, size_t i, bool first, char *err,
    size_t errlen)
{
	const char *name = sw->conf->tables[i].name;
	int64_t n = 0;
	proto_err rv;

	if (!first && sw->unfit[i] == NULL)
		return PROTO_OK;
	if (sw->unfit[i] != NULL)
		log_notice("AGENT-TABLE-FIT",
		    "table \"%s\" can be captured again", name);
	free(sw->unfit[i]);
	sw->unfit[i] = NULL;
	if ((rv = requeue(db, name, &n, err, errlen)) == PROTO_OK && n > 0)
		log_notice("AGENT-REQUEUED",
		    "queued again %" PRId64 " entries of table \"%s\" set "
		    "aside while it could not be captured",
		    n, name);
	return rv;
}

/* The triggers of t were missing: its writes meanwhile need finding. */
static proto_err
note_missing(sqlite3 *db, const capture_table *t, char *err, size_t errlen)
{
	if (t->has_synced)
		return sweep_mark_set(db, "sweep", t->name, err, errlen);
	log_warn("AGENT-TABLE-UNCHECKED",
	    "the capture triggers of table \"%s\" were missing (a rebuild by "
	    "a POS upgrade?) and it has no is_synced column: writes made "
	    "meanwhile cannot be found; run \"branchsync-agent init "
	    "--initial-load\" to send all its rows again",
	    t->name);
	return sweep_mark_set(db, "unchecked", t->name, err, errlen);
}

/* Checks up table i; adds it to fit when it can be captured. */
static proto_err
refit_table(schemawatch *sw, sqlite3 *db, size_t i, bool first,
    agent_config *fit, bool *need, char *err, size_t errlen)
{
	const agent_table_config *tc = &sw->conf->tables[i];
	capture_table t;
	char why[512];
	int missing = 0, stale = 0;
	proto_err rv;

	rv = capture_describe(db, tc, &t, why, sizeof why);
	if (rv == PROTO_EINVAL) {
		note_unfit(sw, i, why);
		return PROTO_OK;
	}
	if (rv != PROTO_OK) {
		snprintf(err, errlen, "%s", why);
		return rv;
	}
	if ((rv = note_fit(sw, db, i, first, err, errlen)) == PROTO_OK
	    && (rv = missing_triggers(db, &t, &missing, err, errlen))
	        == PROTO_OK
	    && missing > 0)
		rv = note_missing(db, &t, err, errlen);
	if (rv == PROTO_OK
	    && (rv = capture_stale(db, &t, 1, &stale, err, errlen)) == PROTO_OK
	    && stale > 0)
		*need = true;
	capture_table_fini(&t);
	fit->tables[fit->ntables++] = *tc;
	return rv;
}

/* At the first refit: tables still waiting for a full check. */
static void
remind_unchecked(sqlite3 *db)
{
	char err[256], **names;
	size_t n;

	if (sweep_marks(db, "unchecked", &names, &n, err, sizeof err)
	    != PROTO_OK)
		return;
	for (size_t i = 0; i < n; i++)
		log_warn("AGENT-TABLE-UNCHECKED",
		    "table \"%s\" still needs a full check since its capture "
		    "triggers were missing; run \"branchsync-agent init "
		    "--initial-load\"",
		    names[i]);
	sweep_marks_free(names, n);
}

proto_err
schemawatch_refit(schemawatch *sw, sqlite3 *db, char *err, size_t errlen)
{
	agent_config fit = *sw->conf;
	capture_result res = {0};
	bool first = sw->version < 0, need = false;
	int64_t ours = 0;
	proto_err rv = PROTO_OK;

	if (first)
		remind_unchecked(db);
	fit.tables = xcalloc(sw->conf->ntables + 1, sizeof *fit.tables);
	fit.ntables = 0;
	for (size_t i = 0; i < sw->conf->ntables && rv == PROTO_OK; i++) {
		if (sw->conf->tables[i].down)
			fit.tables[fit.ntables++] = sw->conf->tables[i];
		else
			rv = refit_table(
			    sw, db, i, first, &fit, &need, err, errlen);
	}
	/* Ours beyond 3 per fitting table: of tables left out, to drop. */
	if (rv == PROTO_OK
	    && (rv = count_sql(db,
	            "SELECT count(*) FROM sqlite_master WHERE type = "
	            "'trigger' AND name LIKE '\\_branchsync\\_%' ESCAPE "
	            "'\\'",
	            NULL, &ours, err, errlen))
	        == PROTO_OK) {
		size_t nup = 0;
		for (size_t i = 0; i < fit.ntables; i++)
			nup += !fit.tables[i].down;
		need |= ours != (int64_t) (3 * nup);
	}
	/* Tables left out lose their triggers: a trigger naming a column
	 * that is gone would make every POS write to the table fail. */
	/* Only when something differs: install takes the write lock. */
	if (rv == PROTO_OK && need
	    && (rv = capture_install(db, &fit, false, &res, err, errlen))
	        == PROTO_OK
	    && (res.created > 0 || res.dropped > 0))
		log_notice("AGENT-TRIGGERS-REINSTALLED",
		    "capture triggers refreshed in \"%s\": %d created, %d "
		    "dropped",
		    sw->conf->database, res.created, res.dropped);
	free(fit.tables);
	sw->version = schema_version(db);
	return rv;
}

/* Sweeps the one marked table name, if it is an up table that fits. */
static proto_err
sweep_one(schemawatch *sw, sqlite3 *db, const char *name, int64_t *queued,
    char *err, size_t errlen)
{
	const agent_table_config *tc = agent_config_find(sw->conf, name);
	capture_table t;
	char why[512];
	int64_t n = 0;
	proto_err rv;

	if (capture_describe(db, tc, &t, why, sizeof why) != PROTO_OK)
		return PROTO_OK; /* unfit: said so; the mark stays */
	rv = sweep_table(db, &t, SWEEP_UNSYNCED, NULL, NULL, &n, err, errlen);
	capture_table_fini(&t);
	*queued += n;
	if (rv != PROTO_OK)
		return rv;
	log_info("AGENT-SWEEP",
	    "queued %" PRId64 " rows of table \"%s\" with is_synced = 0 "
	    "and no log entry (written while its capture triggers were "
	    "missing)",
	    n, name);
	return sweep_mark_clear(db, "sweep", name, err, errlen);
}

/* The log's largest seq now. */
static proto_err
high_seq(sqlite3 *db, int64_t *hi, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	proto_err rv;

	if ((rv = db_prepare(db,
	         "SELECT coalesce(max(seq), 0) FROM _branchsync_log", &st, err,
	         errlen))
	    != PROTO_OK)
		return rv;
	if (sqlite3_step(st) == SQLITE_ROW)
		*hi = sqlite3_column_int64(st, 0);
	else
		rv = db_fail(
		    db, "could not read _branchsync_log", err, errlen);
	sqlite3_finalize(st);
	return rv;
}

static bool
is_marked(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/*
 * Tables are swept in the order of the configuration file (parents
 * first, as for the hub's foreign keys); marks of tables no longer
 * configured as up are dropped. Then the entries captured before the
 * sweep are to move behind the swept rows (sweep_move_request; the
 * sender moves them where it is safe).
 */
proto_err
schemawatch_sweep(
    schemawatch *sw, sqlite3 *db, int64_t *queued, char *err, size_t errlen)
{
	const agent_config *c = sw->conf;
	char **names;
	size_t n;
	int64_t total = 0, hi = 0;
	proto_err rv;

	if ((rv = sweep_marks(db, "sweep", &names, &n, err, errlen))
	        != PROTO_OK
	    || n == 0 || (rv = high_seq(db, &hi, err, errlen)) != PROTO_OK)
		goto done;
	for (size_t i = 0;
	     i < c->ntables && rv == PROTO_OK && !plat_stop_requested(); i++)
		if (!c->tables[i].down
		    && is_marked(names, n, c->tables[i].name))
			rv = sweep_one(
			    sw, db, c->tables[i].name, &total, err, errlen);
	for (size_t i = 0; i < n && rv == PROTO_OK; i++) {
		const agent_table_config *tc = agent_config_find(c, names[i]);
		if (tc == NULL || tc->down)
			rv = sweep_mark_clear(
			    db, "sweep", names[i], err, errlen);
	}
	if (total > 0) {
		char err2[512];
		if (sweep_move_request(db, hi, err2, sizeof err2) != PROTO_OK
		    && rv == PROTO_OK) {
			snprintf(err, errlen, "%s", err2);
			rv = PROTO_EDB;
		}
	}
done:
	sweep_marks_free(names, n);
	if (queued != NULL)
		*queued = total;
	return rv;
}
