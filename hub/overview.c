/*
 * overview.c: every branch's state, read from PostgreSQL (see overview.h),
 * and its three renderings: JSON (/api/status, "status --json"),
 * Prometheus text (/metrics) and the one-screen table of "status".
 */
#include "overview.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "util.h"

/* Most characters of last_error shown in the status table. */
#define ERROR_SHOWN 72

/*
 * One row per branch, ordered by code. Times are whole epoch seconds of
 * the database clock (now() is the same for every row of a statement), so
 * a hub whose clock is off still judges "silent" right. A branch's status
 * rows (one per till, see migrate.h) add up: queues and counts are summed, the
 * latest time and the oldest pending age win; with one row, it is that
 * row.
 */
static const char *const overview_sql
    = "SELECT b.code, b.enabled,"
      " floor(extract(epoch FROM s.last_seen))::bigint,"
      " s.queue_events, s.queue_bytes, s.oldest_age_s, s.agent_version,"
      " coalesce(s.applied_total, 0), coalesce(s.rejected_total, 0),"
      " coalesce(s.conflict_total, 0),"
      " (SELECT count(*) FROM branchsync.reject r WHERE r.branch_id = b.id"
      "  AND r.state IN ('open', 'retry')),"
      " (SELECT count(*) FROM branchsync.conflict c"
      "  WHERE c.branch_id = b.id AND c.resolution IS NULL),"
      " s.last_error, floor(extract(epoch FROM s.last_error_at))::bigint,"
      " floor(extract(epoch FROM s.last_pull))::bigint,"
      " floor(extract(epoch FROM now()))::bigint"
      " FROM branchsync.branch b LEFT JOIN (SELECT branch_id,"
      "  max(last_seen) AS last_seen, sum(queue_events) AS queue_events,"
      "  sum(queue_bytes) AS queue_bytes,"
      "  max(oldest_age_s) AS oldest_age_s, (array_agg(agent_version"
      "  ORDER BY last_seen DESC NULLS LAST))[1] AS agent_version,"
      "  sum(applied_total) AS applied_total,"
      "  sum(rejected_total) AS rejected_total,"
      "  sum(conflict_total) AS conflict_total, (array_agg(last_error"
      "  ORDER BY last_error_at DESC NULLS LAST))[1] AS last_error,"
      "  max(last_error_at) AS last_error_at, max(last_pull) AS last_pull"
      "  FROM branchsync.branch_status GROUP BY branch_id) s"
      " ON s.branch_id = b.id ORDER BY b.code";

/*
 * One row per till, ordered by branch code and till code: the columns of
 * overview_sql from the till's own status row, open rejects and conflicts
 * left out (they are counted per branch).
 */
static const char *const tills_sql
    = "SELECT b.code, t.code, t.enabled AND b.enabled,"
      " floor(extract(epoch FROM s.last_seen))::bigint,"
      " s.queue_events, s.queue_bytes, s.oldest_age_s, s.agent_version,"
      " coalesce(s.applied_total, 0), coalesce(s.rejected_total, 0),"
      " coalesce(s.conflict_total, 0), NULL, NULL,"
      " s.last_error, floor(extract(epoch FROM s.last_error_at))::bigint,"
      " floor(extract(epoch FROM s.last_pull))::bigint"
      " FROM branchsync.till t JOIN branchsync.branch b"
      " ON b.id = t.branch_id LEFT JOIN branchsync.branch_status s"
      " ON s.branch_id = t.branch_id AND s.till_id = t.id"
      " ORDER BY b.code, t.code";

/* num reads column c of row r: -1 when NULL. */
static int64_t
num(const PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c))
		return -1;
	return strtoll(PQgetvalue(res, r, c), NULL, 10);
}

ov_state
overview_state(const ov_branch *b, int64_t now, const ov_limits *l)
{
	if (!b->enabled)
		return OV_DISABLED;
	if (b->last_seen < 0)
		return OV_NEVER;
	if (now - b->last_seen >= l->silent_seconds)
		return OV_SILENT;
	if ((b->queue_events >= 0 && b->queue_events >= l->behind_events)
	    || (b->oldest_age_s >= 0 && b->oldest_age_s >= l->behind_seconds))
		return OV_BEHIND;
	return OV_OK;
}

const char *
overview_state_name(ov_state s)
{
	switch (s) {
	case OV_OK:
		return "ok";
	case OV_BEHIND:
		return "behind";
	case OV_SILENT:
		return "silent";
	case OV_NEVER:
		return "never";
	case OV_DISABLED:
		return "disabled";
	}
	return "unknown";
}

/* read_row fills b from row r of overview_sql, from column c on. */
static void
read_row(const PGresult *res, int r, int c, ov_branch *b)
{
	b->code = xstrdup(PQgetvalue(res, r, c));
	b->enabled = PQgetvalue(res, r, c + 1)[0] == 't';
	b->last_seen = num(res, r, c + 2);
	b->queue_events = num(res, r, c + 3);
	b->queue_bytes = num(res, r, c + 4);
	b->oldest_age_s = num(res, r, c + 5);
	b->agent_version = xstrdup(PQgetvalue(res, r, c + 6));
	b->applied_total = num(res, r, c + 7);
	b->rejected_total = num(res, r, c + 8);
	b->conflict_total = num(res, r, c + 9);
	b->open_rejects = num(res, r, c + 10);
	b->open_conflicts = num(res, r, c + 11);
	b->last_error = xstrdup(PQgetvalue(res, r, c + 12));
	b->last_error_at = num(res, r, c + 13);
	b->last_pull = num(res, r, c + 14);
}

/*
 * read_tills attaches to each branch of out its tills, in code order. A
 * branch with tills is as bad as its worst enabled till, short of
 * "never": one till never seen makes it "silent".
 */
static proto_err
read_tills(
    PGconn *conn, const ov_limits *lim, ov_list *out, char *err, size_t errlen)
{
	PGresult *res;
	proto_err rv;
	size_t i = 0;

	rv = db_exec(conn, tills_sql, 0, NULL, PGRES_TUPLES_OK, &res, NULL,
	    err, errlen);
	if (rv != PROTO_OK)
		return rv;
	for (int r = 0; r < PQntuples(res); r++) {
		ov_branch *b, *t;
		while (i < out->n
		    && strcmp(out->v[i].code, PQgetvalue(res, r, 0)))
			i++;
		if (i == out->n)
			break; /* a branch added since: next time */
		b = &out->v[i];
		b->tills = xrealloc(b->tills, (b->ntills + 1) * sizeof *t);
		t = &b->tills[b->ntills++];
		memset(t, 0, sizeof *t);
		read_row(res, r, 1, t);
		t->state = overview_state(t, out->now, lim);
		if (t->state != OV_DISABLED && b->state != OV_DISABLED
		    && b->state < t->state)
			b->state = t->state < OV_SILENT ? t->state : OV_SILENT;
	}
	PQclear(res);
	return PROTO_OK;
}

proto_err
overview_read(
    PGconn *conn, const ov_limits *lim, ov_list *out, char *err, size_t errlen)
{
	PGresult *res;
	proto_err rv;
	int n;

	rv = db_exec(conn, overview_sql, 0, NULL, PGRES_TUPLES_OK, &res, NULL,
	    err, errlen);
	if (rv != PROTO_OK)
		return rv;
	n = PQntuples(res);
	out->n = (size_t) n;
	out->v = xcalloc(out->n ? out->n : 1, sizeof *out->v);
	out->now = n > 0 ? num(res, 0, 15) : 0;
	for (int r = 0; r < n; r++) {
		ov_branch *b = &out->v[r];

		read_row(res, r, 0, b);
		b->state = overview_state(b, out->now, lim);
	}
	PQclear(res);
	if (n > 0
	    && (rv = read_tills(conn, lim, out, err, errlen)) != PROTO_OK) {
		overview_free(out);
		return rv;
	}
	if (n == 0) {
		/* No row to carry now(): ask for it alone. */
		rv = db_exec(conn,
		    "SELECT floor(extract(epoch FROM now()))::bigint", 0, NULL,
		    PGRES_TUPLES_OK, &res, NULL, err, errlen);
		if (rv != PROTO_OK) {
			overview_free(out);
			return rv;
		}
		out->now = num(res, 0, 0);
		PQclear(res);
	}
	return PROTO_OK;
}

/* branch_free frees what b owns, its tills included. */
static void
branch_free(ov_branch *b)
{
	for (size_t i = 0; i < b->ntills; i++)
		branch_free(&b->tills[i]);
	free(b->tills);
	free(b->code);
	free(b->agent_version);
	free(b->last_error);
}

void
overview_free(ov_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		branch_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* jint is v as a JSON integer, null when unknown (< 0). */
static json_t *
jint(int64_t v)
{
	return v < 0 ? json_null() : json_integer((json_int_t) v);
}

/* jstr is s as a JSON string, null when empty (or not UTF-8). */
static json_t *
jstr(const char *s)
{
	json_t *j = s[0] != '\0' ? json_string(s) : NULL;

	return j != NULL ? j : json_null();
}

/* till_json is the object of one till: a branch's fields minus the
 * open rejects and conflicts, which are counted per branch. */
static json_t *
till_json(const ov_branch *t)
{
	return json_pack("{s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:I, "
	                 "s:I, s:o, s:o, s:o}",
	    "code", t->code, "enabled", t->enabled, "state",
	    overview_state_name(t->state), "last_seen", jint(t->last_seen),
	    "queue_events", jint(t->queue_events), "queue_bytes",
	    jint(t->queue_bytes), "oldest_age_s", jint(t->oldest_age_s),
	    "agent_version", jstr(t->agent_version), "applied_total",
	    (json_int_t) t->applied_total, "rejected_total",
	    (json_int_t) t->rejected_total, "conflict_total",
	    (json_int_t) t->conflict_total, "last_error", jstr(t->last_error),
	    "last_error_at", jint(t->last_error_at), "last_pull",
	    jint(t->last_pull));
}

json_t *
overview_json(const ov_list *l, const ov_limits *lim)
{
	json_t *branches = json_array();

	for (size_t i = 0; i < l->n; i++) {
		const ov_branch *b = &l->v[i];
		json_t *o, *tills;

		json_array_append_new(branches,
		    o = json_pack(
		        "{s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:I, "
		        "s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
		        "code", b->code, "enabled", b->enabled, "state",
		        overview_state_name(b->state), "last_seen",
		        jint(b->last_seen), "queue_events",
		        jint(b->queue_events), "queue_bytes",
		        jint(b->queue_bytes), "oldest_age_s",
		        jint(b->oldest_age_s), "agent_version",
		        jstr(b->agent_version), "applied_total",
		        (json_int_t) b->applied_total, "rejected_total",
		        (json_int_t) b->rejected_total, "conflict_total",
		        (json_int_t) b->conflict_total, "open_rejects",
		        (json_int_t) b->open_rejects, "open_conflicts",
		        (json_int_t) b->open_conflicts, "last_error",
		        jstr(b->last_error), "last_error_at",
		        jint(b->last_error_at), "last_pull",
		        jint(b->last_pull)));
		if (b->ntills == 0)
			continue; /* the object of a branch without tills */
		tills = json_array();
		for (size_t k = 0; k < b->ntills; k++)
			json_array_append_new(tills, till_json(&b->tills[k]));
		json_object_set_new(o, "tills", tills);
	}
	return json_pack("{s:{s:s, s:I, s:I, s:I, s:I}, s:o}", "hub",
	    "version", BS_VERSION, "now", (json_int_t) l->now, "behind_events",
	    (json_int_t) lim->behind_events, "behind_seconds",
	    (json_int_t) lim->behind_seconds, "silent_seconds",
	    (json_int_t) lim->silent_seconds, "branches", branches);
}

/* Offsets of the metrics that are derived, not read. */
#define OV_UP          ((size_t) -1)
#define OV_BEHIND_FLAG ((size_t) -2)

/* The per-branch metrics: an int64_t field of ov_branch, or derived. */
static const struct {
	const char *name, *type, *help;
	size_t field; /* offsetof(ov_branch, ...), OV_UP or OV_BEHIND_FLAG */
} branch_metrics[] = {
    {"branchsync_branch_queue_events", "gauge",
        "Events waiting at the branch, as its agent last reported.",
        offsetof(ov_branch, queue_events)},
    {"branchsync_branch_queue_bytes", "gauge",
        "Bytes of the events waiting at the branch, as last reported.",
        offsetof(ov_branch, queue_bytes)},
    {"branchsync_branch_oldest_pending_seconds", "gauge",
        "Age of the oldest event waiting at the branch, as last reported.",
        offsetof(ov_branch, oldest_age_s)},
    {"branchsync_branch_last_seen_timestamp_seconds", "gauge",
        "When the branch's agent last made a request (Unix time).",
        offsetof(ov_branch, last_seen)},
    {"branchsync_branch_last_pull_timestamp_seconds", "gauge",
        "When the branch last read master data changes (Unix time).",
        offsetof(ov_branch, last_pull)},
    {"branchsync_branch_applied_events_total", "counter",
        "Events of the branch applied to PostgreSQL.",
        offsetof(ov_branch, applied_total)},
    {"branchsync_branch_rejected_events_total", "counter",
        "Events of the branch rejected (recorded, not applied).",
        offsetof(ov_branch, rejected_total)},
    {"branchsync_branch_conflicts_total", "counter",
        "Conflicts recorded for the branch.",
        offsetof(ov_branch, conflict_total)},
    {"branchsync_branch_open_rejects", "gauge",
        "Rejects of the branch waiting for an operator.",
        offsetof(ov_branch, open_rejects)},
    {"branchsync_branch_open_conflicts", "gauge",
        "Conflicts of the branch without a resolution.",
        offsetof(ov_branch, open_conflicts)},
    {"branchsync_branch_up", "gauge",
        "1 when the branch was seen within silent_seconds, else 0.", OV_UP},
    {"branchsync_branch_behind", "gauge",
        "1 when the branch is behind (behind_events, behind_seconds).",
        OV_BEHIND_FLAG},
};

/* metric_value is what metric m shows of b; -1 leaves the sample out. */
static int64_t
metric_value(const ov_branch *b, size_t field)
{
	int64_t v;

	if (field == OV_UP)
		return b->state == OV_OK || b->state == OV_BEHIND;
	if (field == OV_BEHIND_FLAG)
		return b->state == OV_BEHIND;
	memcpy(&v, (const char *) b + field, sizeof v);
	return v;
}

/* till_prom appends metric m of every till as branchsync_till_...,
 * labels branch and till. */
static void
till_prom(const ov_list *l, size_t m, strbuf *out)
{
	const char *rest
	    = branch_metrics[m].name + strlen("branchsync_branch_");
	char name[128];
	bool head = false;

	snprintf(name, sizeof name, "branchsync_till_%s", rest);
	for (size_t i = 0; i < l->n; i++)
		for (size_t k = 0; k < l->v[i].ntills; k++) {
			const ov_branch *t = &l->v[i].tills[k];
			int64_t v = metric_value(t, branch_metrics[m].field);
			if (t->state == OV_DISABLED || v < 0)
				continue;
			if (!head)
				prom_head(out, name, branch_metrics[m].type,
				    branch_metrics[m].help);
			head = true;
			prom_sample2_i(out, name, "branch", l->v[i].code,
			    "till", t->code, v);
		}
}

void
overview_render_prom(const ov_list *l, strbuf *out)
{
	for (size_t m = 0; m < ARRAY_LEN(branch_metrics); m++)
		if (branch_metrics[m].field
		        != offsetof(ov_branch, open_rejects)
		    && branch_metrics[m].field
		        != offsetof(ov_branch, open_conflicts))
			till_prom(l, m, out);
	for (size_t m = 0; m < ARRAY_LEN(branch_metrics); m++) {
		prom_head(out, branch_metrics[m].name, branch_metrics[m].type,
		    branch_metrics[m].help);
		for (size_t i = 0; i < l->n; i++) {
			const ov_branch *b = &l->v[i];
			int64_t v = metric_value(b, branch_metrics[m].field);

			if (b->state != OV_DISABLED && v >= 0)
				prom_sample_i(out, branch_metrics[m].name,
				    "branch", b->code, v);
		}
	}
}

void
overview_duration(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%" PRId64 " s", s);
	else if (s < 120 * 60)
		snprintf(buf, len, "%" PRId64 " min", s / 60);
	else if (s < 48 * 3600)
		snprintf(buf, len, "%" PRId64 " h", s / 3600);
	else
		snprintf(buf, len, "%" PRId64 " d", s / 86400);
}

enum {
	C_BRANCH,
	C_STATE,
	C_QUEUE,
	C_AGE,
	C_SEEN,
	C_REJ,
	C_CONF,
	C_VER,
	C_ERR,
	NCOL
};

static const char *const col_names[NCOL] = {"BRANCH", "STATE", "QUEUE", "AGE",
    "LAST_SEEN", "REJECTS", "CONFLICTS", "VERSION", "LAST_ERROR"};

/* Room for one cell; longer agent versions and errors are cut. */
#define CELL_MAX 128

/*
 * cells formats branch b's line of the status table; for a till, of is
 * its branch, and the first cell reads "BRANCH/TILL".
 */
static void
cells(const ov_branch *b, const ov_branch *of, int64_t now,
    char c[NCOL][CELL_MAX])
{
	char d[32];
	size_t i;

	if (of != NULL)
		snprintf(
		    c[C_BRANCH], CELL_MAX, "%.60s/%.60s", of->code, b->code);
	else
		snprintf(c[C_BRANCH], CELL_MAX, "%s", b->code);
	snprintf(c[C_STATE], CELL_MAX, "%s", overview_state_name(b->state));
	if (b->queue_events >= 0)
		snprintf(c[C_QUEUE], CELL_MAX, "%" PRId64, b->queue_events);
	else
		snprintf(c[C_QUEUE], CELL_MAX, "-");
	if (b->oldest_age_s >= 0)
		overview_duration(b->oldest_age_s, c[C_AGE], CELL_MAX);
	else
		snprintf(c[C_AGE], CELL_MAX, "-");
	if (b->last_seen >= 0) {
		overview_duration(now - b->last_seen, d, sizeof d);
		snprintf(c[C_SEEN], CELL_MAX, "%s ago", d);
	} else
		snprintf(c[C_SEEN], CELL_MAX, "never");
	snprintf(c[C_REJ], CELL_MAX, b->open_rejects >= 0 ? "%" PRId64 : "-",
	    b->open_rejects);
	snprintf(c[C_CONF], CELL_MAX,
	    b->open_conflicts >= 0 ? "%" PRId64 : "-", b->open_conflicts);
	snprintf(c[C_VER], CELL_MAX, "%.40s",
	    b->agent_version[0] != '\0' ? b->agent_version : "-");
	if (b->last_error[0] != '\0') {
		overview_duration(
		    b->last_error_at >= 0 ? now - b->last_error_at : 0, d,
		    sizeof d);
		snprintf(c[C_ERR], CELL_MAX, "%s ago: %.*s%s", d, ERROR_SHOWN,
		    b->last_error,
		    strlen(b->last_error) > ERROR_SHOWN ? "..." : "");
	} else
		snprintf(c[C_ERR], CELL_MAX, "-");
	/* One line per branch, whatever an agent or a server wrote. */
	for (int k = 0; k < NCOL; k++)
		for (i = 0; c[k][i] != '\0'; i++)
			if ((unsigned char) c[k][i] < 0x20 || c[k][i] == 0x7f)
				c[k][i] = ' ';
}

int
overview_print(FILE *f, const ov_list *l, const ov_limits *lim)
{
	size_t w[NCOL], count[OV_DISABLED + 1] = {0}, nrows = l->n, r = 0;
	char(*c)[NCOL][CELL_MAX];
	int rc = 0;

	for (size_t i = 0; i < l->n; i++)
		nrows += l->v[i].ntills;
	c = xcalloc(nrows ? nrows : 1, sizeof *c);
	for (int k = 0; k < NCOL; k++)
		w[k] = strlen(col_names[k]);
	/* Each branch's line, then one line per till under it. */
	for (size_t i = 0; i < l->n; i++) {
		cells(&l->v[i], NULL, l->now, c[r++]);
		for (size_t t = 0; t < l->v[i].ntills; t++)
			cells(&l->v[i].tills[t], &l->v[i], l->now, c[r++]);
		count[l->v[i].state]++;
		if (l->v[i].state != OV_OK && l->v[i].state != OV_DISABLED)
			rc = 2;
	}
	for (r = 0; r < nrows; r++)
		for (int k = 0; k < NCOL; k++)
			if (strlen(c[r][k]) > w[k])
				w[k] = strlen(c[r][k]);
	cli_printf(f,
	    "branchsync-hub " BS_VERSION ": behind_events %" PRId64
	    ", behind_seconds %" PRId64 ", silent_seconds %" PRId64 "\n\n",
	    lim->behind_events, lim->behind_seconds, lim->silent_seconds);
	for (int k = 0; k < NCOL; k++)
		cli_printf(f, k < NCOL - 1 ? "%-*s  " : "%-.*s\n", (int) w[k],
		    col_names[k]);
	for (r = 0; r < nrows; r++)
		for (int k = 0; k < NCOL; k++)
			cli_printf(f, k < NCOL - 1 ? "%-*s  " : "%-.*s\n",
			    (int) w[k], c[r][k]);
	free(c);
	cli_printf(f,
	    "\n%zu branch%s: %zu ok, %zu behind, %zu silent, %zu never seen",
	    l->n, l->n == 1 ? "" : "es", count[OV_OK], count[OV_BEHIND],
	    count[OV_SILENT], count[OV_NEVER]);
	if (count[OV_DISABLED] > 0)
		cli_printf(f, ", %zu disabled", count[OV_DISABLED]);
	cli_printf(f, "\n");
	if (l->n == 0)
		cli_printf(f,
		    "hint: add a branch with \"branchsync-hub branch "
		    "add CODE -c FILE\"\n");
	return rc;
}
