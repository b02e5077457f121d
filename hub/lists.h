/*
 * lists.h: the rejects and conflicts lists, as one query each, for every
 * place that shows them: the CLI ("rejects list", "conflicts list",
 * admin.c) and the operator listener (/api/rejects, /api/conflicts,
 * http.c). Each caller formats the rows its own way.
 *
 * Both lists are ordered newest first (id descending), so that a limited
 * list holds the latest rows. A row whose branch no longer exists is
 * listed with a NULL branch code.
 */
#ifndef HUB_LISTS_H
#define HUB_LISTS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/err.h"

/* Columns of a lists_rejects_get result. */
enum {
	LISTS_R_ID,        /* bigint: reject id */
	LISTS_R_BRANCH,    /* text: branch code (NULL: none) */
	LISTS_R_LOG,       /* text: log_id */
	LISTS_R_SEQ,       /* bigint: the event's seq */
	LISTS_R_TBL,       /* text: branch-side table */
	LISTS_R_KEY,       /* jsonb: the key (may be NULL) */
	LISTS_R_STATE,     /* text: open, retry, resolved, discarded */
	LISTS_R_ATTEMPTS,  /* int: times applied */
	LISTS_R_CREATED,   /* text: created_at, ISO 8601 UTC */
	LISTS_R_CREATED_S, /* bigint: created_at, Unix seconds */
	LISTS_R_RESOLVED,  /* text: resolved_at, ISO 8601 UTC, or NULL */
	LISTS_R_BY,        /* text: resolved_by, or NULL */
	LISTS_R_REASON     /* text: why it was rejected */
};

/* Columns of a lists_conflicts_get result. */
enum {
	LISTS_C_ID,         /* bigint: conflict id */
	LISTS_C_BRANCH,     /* text: branch code (NULL: none) */
	LISTS_C_LOG,        /* text: log_id */
	LISTS_C_SEQ,        /* bigint: the event's seq */
	LISTS_C_TBL,        /* text: branch-side table */
	LISTS_C_KEY,        /* jsonb: the key */
	LISTS_C_TYPE,       /* text: duplicate, data_mismatch, ... */
	LISTS_C_CREATED,    /* text: created_at, ISO 8601 UTC */
	LISTS_C_CREATED_S,  /* bigint: created_at, Unix seconds */
	LISTS_C_RESOLUTION, /* text: keep_server, ..., or NULL */
	LISTS_C_RESOLVED,   /* text: resolved_at, ISO 8601 UTC, or NULL */
	LISTS_C_BY,         /* text: resolved_by, or NULL */
	LISTS_C_SERVER_ROW, /* jsonb: the server's row, or NULL */
	LISTS_C_LOCAL_ROW   /* jsonb: the branch's row, or NULL */
};

/*
 * lists_rejects_get reads the rejects of branch (code; NULL: of every
 * branch), open and retry ones only unless all, at most limit rows
 * (NULL: no limit, else a decimal number), newest first. On PROTO_OK
 * *out holds the result (columns LISTS_R_*) and the caller PQclears it;
 * PROTO_EDB with err otherwise.
 */
proto_err lists_rejects_get(PGconn *conn, const char *branch, bool all,
    const char *limit, PGresult **out, char *err, size_t errlen);

/*
 * lists_conflicts_get is lists_rejects_get for conflicts (columns
 * LISTS_C_*): unresolved ones only unless all.
 */
proto_err lists_conflicts_get(PGconn *conn, const char *branch, bool all,
    const char *limit, PGresult **out, char *err, size_t errlen);

#endif /* HUB_LISTS_H */
