/* housekeep.c: deleting what got old (see housekeep.h). */
#include "housekeep.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"
#include "platform.h"

#define FIRST_AFTER_MS 60000
#define EVERY_MS       3600000

/* delete_old deletes resolved rows of table older than days days. */
static proto_err
delete_old(PGconn *conn, const char *sql, const char *days, int64_t *n,
    char *err, size_t errlen)
{
	const char *params[1] = {days};
	PGresult *res = NULL;
	proto_err rv = db_exec(
	    conn, sql, 1, params, PGRES_COMMAND_OK, &res, NULL, err, errlen);

	*n = rv == PROTO_OK ? strtoll(PQcmdTuples(res), NULL, 10) : 0;
	PQclear(res);
	return rv;
}

proto_err
housekeep_run(const char *conninfo, int64_t days, int64_t *rejects,
    int64_t *conflicts, char *err, size_t errlen)
{
	char d[24];
	PGconn *conn = NULL;
	proto_err rv;

	*rejects = *conflicts = 0;
	snprintf(d, sizeof d, "%" PRId64, days);
	if ((rv = db_connect(conninfo, &conn, err, errlen)) != PROTO_OK)
		return rv;
	rv = delete_old(conn,
	    "DELETE FROM branchsync.reject WHERE resolved_at IS NOT NULL"
	    " AND resolved_at < now() - make_interval(days => $1::int)",
	    d, rejects, err, errlen);
	if (rv == PROTO_OK)
		rv = delete_old(conn,
		    "DELETE FROM branchsync.conflict WHERE resolved_at IS NOT"
		    " NULL AND resolved_at < now() - make_interval(days =>"
		    " $1::int)",
		    d, conflicts, err, errlen);
	PQfinish(conn);
	return rv;
}

void
housekeep_tick(const hub_config *conf)
{
	static int64_t due_ms;
	int64_t now = plat_mono_ms(), r, c;
	char err[512];

	if (due_ms == 0)
		due_ms = now + FIRST_AFTER_MS;
	if (now < due_ms)
		return;
	due_ms = now + EVERY_MS;
	if (housekeep_run(
	        conf->postgres, conf->retention_days, &r, &c, err, sizeof err)
	    != PROTO_OK) {
		log_warn("HUB-HOUSEKEEP",
		    "could not delete old rejects and conflicts: %s", err);
		return;
	}
	if (r > 0 || c > 0)
		log_info("HUB-HOUSEKEEP",
		    "deleted %" PRId64 " rejects and %" PRId64
		    " conflicts resolved more than %" PRId64 " days ago",
		    r, c, conf->retention_days);
}
