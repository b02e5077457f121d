/*
 * db.c: libpq helpers of the hub: connecting (and reconnecting), and
 * running statements with exact status checks.
 *
 * Every exec goes through db_exec, which compares PQresultStatus with the
 * exact status expected and PQclears on every failure path, so callers only
 * ever hold a result that succeeded.
 */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "platform.h"
#include "util.h"

/* Seconds between reconnection attempts. */
#define DB_RETRY_S 2
/* connect_timeout when the connection string sets none. */
#define DB_CONNECT_TIMEOUT_S "10"

proto_err
db_result_error(const PGresult *res, PGconn *conn, char *err, size_t errlen)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
	const char *state
	    = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	size_t n;

	if (msg[0] == '\0')
		msg = PQerrorMessage(conn);
	if (msg[0] == '\0')
		msg = "unexpected result status";
	/* Keep the primary line only: libpq adds "ERROR:  " and a newline. */
	if (!strncmp(msg, "ERROR:  ", 8))
		msg += 8;
	n = strcspn(msg, "\n");
	if (state != NULL)
		snprintf(
		    err, errlen, "%.*s (SQLSTATE %s)", (int) n, msg, state);
	else
		snprintf(err, errlen, "%.*s", (int) n, msg);
	return PROTO_EDB;
}

proto_err
db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
    ExecStatusType want, PGresult **out, char *sqlstate, char *err,
    size_t errlen)
{
	PGresult *res;
	const char *state;

	if (out != NULL)
		*out = NULL;
	if (sqlstate != NULL)
		sqlstate[0] = '\0';
	/* PQexec for parameterless SQL: it may hold several statements. */
	if (nparams == 0)
		res = PQexec(conn, sql);
	else
		res = PQexecParams(
		    conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (res != NULL && PQresultStatus(res) == want) {
		if (out != NULL)
			*out = res;
		else
			PQclear(res);
		return PROTO_OK;
	}
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (sqlstate != NULL && state != NULL)
		snprintf(sqlstate, 6, "%s", state);
	db_result_error(res, conn, err, errlen);
	PQclear(res);
	return PROTO_EDB;
}

bool
db_lost(PGconn *conn)
{
	return conn == NULL || PQstatus(conn) != CONNECTION_OK;
}

bool
db_transient(const char *sqlstate)
{
	/*
	 * 40: serialization failure, deadlock; 08: connection; 53: out of
	 * resources; 57: operator intervention (shutdown, cancel). The same
	 * batch may well succeed later, so these must not become rejects.
	 */
	return !strncmp(sqlstate, "40", 2) || !strncmp(sqlstate, "08", 2)
	    || !strncmp(sqlstate, "53", 2) || !strncmp(sqlstate, "57", 2);
}

static void
on_notice(void *arg, const char *msg)
{
	log_debug("HUB-PG-NOTICE", "%.*s", (int) strcspn(msg, "\n"), msg);
}

proto_err
db_connect(const char *conninfo, PGconn **out, char *err, size_t errlen)
{
	/*
	 * A host that drops packets must not hang a worker (or the operator
	 * listener) for minutes: connect_timeout DB_CONNECT_TIMEOUT_S unless
	 * the connection string says otherwise (it comes later, so it wins).
	 */
	static const char *const keys[] = {"connect_timeout", "dbname", NULL};
	const char *values[] = {DB_CONNECT_TIMEOUT_S, conninfo, NULL};
	PGconn *conn = PQconnectdbParams(keys, values, 1);

	*out = NULL;
	if (conn == NULL) {
		snprintf(err, errlen, "could not connect: out of memory");
		return PROTO_EDB;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(conn);
		snprintf(err, errlen, "could not connect to PostgreSQL: %.*s",
		    (int) strcspn(msg, "\n"), msg);
		PQfinish(conn);
		return PROTO_EDB;
	}
	/* Server notices ("already exists, skipping") are not our output. */
	PQsetNoticeProcessor(conn, on_notice, NULL);
	*out = conn;
	return PROTO_OK;
}

proto_err
db_connect_retry(const char *conninfo, PGconn **out)
{
	char err[512];

	while (!plat_stop_requested()) {
		if (db_connect(conninfo, out, err, sizeof err) == PROTO_OK)
			return PROTO_OK;
		metrics_pg_error();
		log_error("HUB-DB-DOWN", "%s; disconnected; retrying in %d s",
		    err, DB_RETRY_S);
		plat_sleep_ms(DB_RETRY_S * 1000);
	}
	return PROTO_ECLOSED;
}
