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

/*
 * LIST_SQL is the one shape of both lists: rows of table tbl (alias t)
 * with the columns every list starts with, then cols; of branch $1 (NULL:
 * all), only those meeting open unless $2, newest first, at most $3.
 */
#define LIST_SQL(tbl, t, cols, open)                                          \
	"SELECT " t ".id, b.code, " t ".log_id, " t ".seq, " t ".tbl, " t     \
	".key, " cols " FROM branchsync." tbl " " t                           \
	" LEFT JOIN branchsync.branch b ON b.id = " t ".branch_id"            \
	" WHERE ($1::text IS NULL OR b.code = $1) AND ($2::bool OR " open     \
	") ORDER BY " t ".id DESC LIMIT $3::bigint"

/* list_get runs one of the lists' SQL texts ($1 branch, $2 all, $3 limit). */
static proto_err
list_get(PGconn *conn, const char *sql, const char *branch, bool all,
    const char *limit, PGresult **out, char *err, size_t errlen)
{
	const char *params[3] = {branch, all ? "t" : "f", limit};

	return db_exec(
	    conn, sql, 3, params, PGRES_TUPLES_OK, out, NULL, err, errlen);
}

proto_err
lists_rejects_get(PGconn *conn, const char *branch, bool all,
    const char *limit, PGresult **out, char *err, size_t errlen)
{
	return list_get(conn,
	    LIST_SQL("reject", "r",
	        "r.state, r.attempts, " ISO_UTC(
	            "r.created_at") ","
	                            " extract(epoch FROM "
	                            "r.created_at)::bigint, " ISO_UTC(
	                                "r.resolved_at") ", r.resolved_by, "
	                                                 "r.reason",
	        "r.state IN ('open', 'retry')"),
	    branch, all, limit, out, err, errlen);
}

proto_err
lists_conflicts_get(PGconn *conn, const char *branch, bool all,
    const char *limit, PGresult **out, char *err, size_t errlen)
{
	return list_get(conn,
	    LIST_SQL("conflict", "c",
	        "c.type, " ISO_UTC(
	            "c.created_at") ","
	                            " extract(epoch FROM "
	                            "c.created_at)::bigint, "
	                            "c.resolution, " ISO_UTC(
	                                "c.resolved_at") ", c.resolved_by, "
	                                                 "c.server_row,"
	                                                 " c.local_row",
	        "c.resolution IS NULL"),
	    branch, all, limit, out, err, errlen);
}
