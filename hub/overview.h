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

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* One branch. Strings are owned by the ov_list. -1 means unknown. */
typedef struct {
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
	int64_t open_rejects;   /* rejects in state open or retry */
	int64_t open_conflicts; /* conflicts without a resolution */
	char *last_error;       /* "" none */
	int64_t last_error_at;  /* epoch s, -1 none */
	int64_t last_pull;      /* epoch s, -1 never */
	ov_state state;         /* derived, see above */
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

#endif /* HUB_OVERVIEW_H */
