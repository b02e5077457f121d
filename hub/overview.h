/*
 * overview.h: every branch's state as operators see it, read from
 * PostgreSQL (branch, branch_status, reject, conflict), so that any hub
 * on the database, "branchsync-hub status" and SQL dashboards agree.
 *
 * A branch is
 *   never   registered, never seen;
 *   silent  last seen silent_seconds ago or more;
 *   behind  seen, but queue_events >= behind_events or
 *           oldest_age_s >= behind_seconds;
 *   ok      otherwise.
 * A disabled branch is always "disabled".
 */
#ifndef HUB_OVERVIEW_H
#define HUB_OVERVIEW_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "prom.h"
#include "proto/err.h"

typedef enum {
	OV_OK = 0,
	OV_BEHIND,
	OV_SILENT,
	OV_NEVER,
	OV_DISABLED,
} ov_state;

/* The thresholds, from the hub's configuration. */
typedef struct {
	int64_t behind_events;  /* queue at least this long: behind */
	int64_t behind_seconds; /* oldest pending at least this old: behind */
	int64_t silent_seconds; /* not seen for this long: silent */
} ov_limits;

/*
 * One branch, or one till of a branch. Strings are owned by the ov_list.
 * -1 means unknown. A branch with tills sums their status rows (queues,
 * counts; latest times) and is as bad as its worst enabled till, short
 * of "never" (a till never seen makes the branch "silent").
 */
typedef struct ov_branch {
	char *code;           /* branch code */
	bool enabled;         /* branch.enabled */
	int64_t last_seen;    /* epoch s, -1 never */
	int64_t queue_events; /* as last reported, -1 unknown */
	int64_t queue_bytes;  /* as last reported, -1 unknown */
	int64_t oldest_age_s; /* as last reported, -1 unknown */
	char *agent_version;  /* as last reported, "" unknown */
	int64_t applied_total;
	int64_t rejected_total;
	int64_t conflict_total;
	int64_t open_rejects;    /* rejects in state open or retry */
	int64_t open_conflicts;  /* conflicts without a resolution */
	char *last_error;        /* "" none */
	int64_t last_error_at;   /* epoch s, -1 none */
	int64_t last_pull;       /* epoch s, -1 never */
	ov_state state;          /* derived, see above */
	struct ov_branch *tills; /* the branch's tills, by code (a till's
	                            open_* are -1: counted per branch) */
	size_t ntills;           /* number of tills; 0 for a till */
} ov_branch;

typedef struct {
	int64_t now; /* database clock, epoch s, when read */
	ov_branch *v;
	size_t n;
} ov_list;

/* overview_read fills out (caller zeroes it) ordered by code. */
proto_err overview_read(PGconn *conn, const ov_limits *lim, ov_list *out,
    char *err, size_t errlen);
void overview_free(ov_list *l);

/* overview_state derives the state; pure, for tests. */
ov_state overview_state(const ov_branch *b, int64_t now, const ov_limits *l);

/* "ok", "behind", "silent", "never", "disabled". */
const char *overview_state_name(ov_state s);

/*
 * overview_json returns the object of GET /api/status and of
 * "branchsync-hub status --json" (a new reference):
 *   {"hub": {"version", "now", "behind_events", "behind_seconds",
 *            "silent_seconds"},
 *    "branches": [{"code", "enabled", "state", "last_seen",
 *                  "queue_events", "queue_bytes", "oldest_age_s",
 *                  "agent_version", "applied_total", "rejected_total",
 *                  "conflict_total", "open_rejects", "open_conflicts",
 *                  "last_error", "last_error_at", "last_pull",
 *                  "tills": [...]}, ...]}
 * "tills" is there only for a branch with tills: one object per till
 * with the branch's keys minus "open_rejects", "open_conflicts" and
 * "tills". Times are epoch seconds; unknown values (-1, "") are null.
 */
json_t *overview_json(const ov_list *l, const ov_limits *lim);

/*
 * overview_render_prom appends the per-branch metrics (label "branch") in
 * the Prometheus text format: branchsync_branch_queue_events,
 * _queue_bytes, _oldest_pending_seconds, _last_seen_timestamp_seconds,
 * _last_pull_timestamp_seconds,
 * _applied_events_total, _rejected_events_total, _conflicts_total,
 * _open_rejects, _open_conflicts, _up (1 seen within silent_seconds,
 * 0 silent or never seen),
 * _behind (state behind). Unknown values are left out; disabled branches
 * are left out entirely. Tills get the same metrics (but open rejects and
 * conflicts) named branchsync_till_..., labels "branch" and "till"; the
 * branch's own are the sums over its tills.
 */
void overview_render_prom(const ov_list *l, strbuf *out);

/*
 * overview_print writes the table of "branchsync-hub status": a line with
 * the thresholds, one aligned line per branch under the column headers
 * BRANCH STATE QUEUE AGE LAST_SEEN REJECTS CONFLICTS VERSION LAST_ERROR,
 * and a summary ("4 branches: 1 ok, 1 behind, 1 silent, 1 never seen").
 * Returns 2 when an enabled branch is not ok, else 0 (the exit status).
 */
int overview_print(FILE *f, const ov_list *l, const ov_limits *lim);

/* overview_duration writes s seconds as "42 s", "17 min", "5 h", "3 d". */
void overview_duration(int64_t s, char *buf, size_t len);

#endif /* HUB_OVERVIEW_H */
