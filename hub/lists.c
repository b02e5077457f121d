/*
 * lists.c: the one SQL text of the rejects list and of the conflicts list
 * (see lists.h). The column order is the LISTS_R_* and LISTS_C_* enums.
 */
#include "lists.h"

#include "db.h"

/* A timestamp column as ISO 8601 UTC text. */
#define ISO_UTC(col)                                                          \
	"to_char(" col " AT TIME ZONE 'UTC', "                                \
	               "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

proto_err
lists_rejects_get(PGconn *conn, const char *branch, bool all,
    const char *limit, PGresult **out, char *err, size_t errlen)
{
	const char *params[3] = {branch, all ? "t" : "f", limit};

	return db_exec(conn,
	    "SELECT r.id, b.code, r.log_id, r.seq, r.tbl, r.key, r.state,"
	    " r.attempts, " ISO_UTC(
	        "r.created_at") ","
	                        " extract(epoch FROM r.created_at)::bigint,"
	                        " " ISO_UTC(
	                            "r.resolved_at") ", r.resolved_by, "
	                                             "r.reason"
	                                             " FROM branchsync.reject "
	                                             "r"
	                                             " LEFT JOIN "
	                                             "branchsync.branch b ON "
	                                             "b.id = r.branch_id"
	                                             " WHERE ($1::text IS "
	                                             "NULL OR b.code = $1)"
	                                             " AND ($2::bool OR "
	                                             "r.state IN ('open', "
	                                             "'retry'))"
	                                             " ORDER BY r.id DESC "
	                                             "LIMIT $3::bigint",
	    3, params, PGRES_TUPLES_OK, out, NULL, err, errlen);
}

proto_err
lists_conflicts_get(PGconn *conn, const char *branch, bool all,
    const char *limit, PGresult **out, char *err, size_t errlen)
{
	const char *params[3] = {branch, all ? "t" : "f", limit};

	return db_exec(conn,
	    "SELECT c.id, b.code, c.log_id, c.seq, c.tbl, c.key, c.type,"
	    " " ISO_UTC(
	        "c.created_at") ","
	                        " extract(epoch FROM c.created_at)::bigint, "
	                        "c.resolution,"
	                        " " ISO_UTC(
	                            "c.resolved_at") ", c.resolved_by, "
	                                             "c.server_row,"
	                                             " c.local_row"
	                                             " FROM "
	                                             "branchsync.conflict c"
	                                             " LEFT JOIN "
	                                             "branchsync.branch b ON "
	                                             "b.id = c.branch_id"
	                                             " WHERE ($1::text IS "
	                                             "NULL OR b.code = $1)"
	                                             " AND ($2::bool OR "
	                                             "c.resolution IS NULL)"
	                                             " ORDER BY c.id DESC "
	                                             "LIMIT $3::bigint",
	    3, params, PGRES_TUPLES_OK, out, NULL, err, errlen);
}
