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
#include "util.h"

/* Most characters of last_error shown in the status table. */
#define ERROR_SHOWN 72

/*
 * One row per branch, ordered by code. Times are whole epoch seconds of
 * the database clock (now() is the same for every row of a statement), so
 * a hub whose clock is off still judges "silent" right.
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
      " FROM branchsync.branch b"
      " LEFT JOIN branchsync.branch_status s ON s.branch_id = b.id"
      " ORDER BY b.code";

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

		b->code = xstrdup(PQgetvalue(res, r, 0));
		b->enabled = PQgetvalue(res, r, 1)[0] == 't';
		b->last_seen = num(res, r, 2);
		b->queue_events = num(res, r, 3);
		b->queue_bytes = num(res, r, 4);
		b->oldest_age_s = num(res, r, 5);
		b->agent_version = xstrdup(PQgetvalue(res, r, 6));
		b->applied_total = num(res, r, 7);
		b->rejected_total = num(res, r, 8);
		b->conflict_total = num(res, r, 9);
		b->open_rejects = num(res, r, 10);
		b->open_conflicts = num(res, r, 11);
		b->last_error = xstrdup(PQgetvalue(res, r, 12));
		b->last_error_at = num(res, r, 13);
		b->last_pull = num(res, r, 14);
		b->state = overview_state(b, out->now, lim);
	}
	PQclear(res);
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

void
overview_free(ov_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].code);
		free(l->v[i].agent_version);
		free(l->v[i].last_error);
	}
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

json_t *
overview_json(const ov_list *l, const ov_limits *lim)
{
	json_t *branches = json_array();

	for (size_t i = 0; i < l->n; i++) {
		const ov_branch *b = &l->v[i];

		json_array_append_new(branches,
		    json_pack("{s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:I, "
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

void
overview_render_prom(const ov_list *l, strbuf *out)
{
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

/* cells formats branch b's line of the status table. */
static void
cells(const ov_branch *b, int64_t now, char c[NCOL][CELL_MAX])
{
	char d[32];
	size_t i;

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
	snprintf(c[C_REJ], CELL_MAX, "%" PRId64, b->open_rejects);
	snprintf(c[C_CONF], CELL_MAX, "%" PRId64, b->open_conflicts);
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
	char(*c)[NCOL][CELL_MAX] = xcalloc(l->n ? l->n : 1, sizeof *c);
	size_t w[NCOL], count[OV_DISABLED + 1] = {0};
	int rc = 0;

	for (int k = 0; k < NCOL; k++)
		w[k] = strlen(col_names[k]);
	for (size_t i = 0; i < l->n; i++) {
		cells(&l->v[i], l->now, c[i]);
		for (int k = 0; k < NCOL; k++)
			if (strlen(c[i][k]) > w[k])
				w[k] = strlen(c[i][k]);
		count[l->v[i].state]++;
		if (l->v[i].state != OV_OK && l->v[i].state != OV_DISABLED)
			rc = 2;
	}
	fprintf(f,
	    "branchsync-hub " BS_VERSION ": behind_events %" PRId64
	    ", behind_seconds %" PRId64 ", silent_seconds %" PRId64 "\n\n",
	    lim->behind_events, lim->behind_seconds, lim->silent_seconds);
	for (int k = 0; k < NCOL; k++)
		fprintf(f, k < NCOL - 1 ? "%-*s  " : "%-.*s\n", (int) w[k],
		    col_names[k]);
	for (size_t i = 0; i < l->n; i++)
		for (int k = 0; k < NCOL; k++)
			fprintf(f, k < NCOL - 1 ? "%-*s  " : "%-.*s\n",
			    (int) w[k], c[i][k]);
	free(c);
	fprintf(f,
	    "\n%zu branch%s: %zu ok, %zu behind, %zu silent, %zu never seen",
	    l->n, l->n == 1 ? "" : "es", count[OV_OK], count[OV_BEHIND],
	    count[OV_SILENT], count[OV_NEVER]);
	if (count[OV_DISABLED] > 0)
		fprintf(f, ", %zu disabled", count[OV_DISABLED]);
	fprintf(f, "\n");
	if (l->n == 0)
		fprintf(f,
		    "hint: add a branch with \"branchsync-hub branch "
		    "add CODE -c FILE\"\n");
	return rc;
}
