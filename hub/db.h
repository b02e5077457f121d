/*
 * db.h: PostgreSQL plumbing of the hub: connecting, and running
 * statements with exact status checks. The schema and its migrations are
 * in migrate.h, branch and till keys in keys.h.
 *
 * Error text written into err is one line: the server's primary message
 * followed by "(SQLSTATE xxxxx)" when there is one.
 */
#ifndef HUB_DB_H
#define HUB_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/err.h"

/* Advisory lock key serializing concurrent "migrate" runs ("bsmi"). */
#define DB_MIGRATE_LOCK "1651731817"

/*
 * The change feed's ids are drawn when a transaction writes, not when it
 * commits: a pull that saw id 101 committed while id 100 was still in
 * flight would move the branch's cursor past 100 for good. So every writer
 * of branchsync.change holds this advisory lock shared until it commits,
 * and a pull reads its page holding it exclusively: every id below what it
 * sees is then committed. Writers wait at most for one page query.
 */
#define DB_FEED_LOCK "1651730019"

/*
 * db_connect opens a connection. Returns PROTO_OK and sets *out (the
 * caller closes it with PQfinish), or PROTO_EDB with the reason in err.
 */
proto_err db_connect(
    const char *conninfo, PGconn **out, char *err, size_t errlen);

/*
 * db_connect_retry calls db_connect until it succeeds, logging
 * "disconnected; retrying in N s" and sleeping between attempts. Returns
 * PROTO_OK, or PROTO_ECLOSED if a termination signal arrived first.
 */
proto_err db_connect_retry(const char *conninfo, PGconn **out);

/*
 * db_result_error writes the error of res (or of conn when res is NULL)
 * into err: first line of the message plus the SQLSTATE. Returns PROTO_EDB.
 */
proto_err db_result_error(
    const PGresult *res, PGconn *conn, char *err, size_t errlen);

/*
 * db_exec runs sql with text parameters (params may be NULL when nparams
 * is 0) and checks that the result status is exactly want. On PROTO_OK,
 * *out (if out is not NULL) holds the result and the caller PQclears it;
 * otherwise the result is already cleared, *out is NULL and err says why.
 * If sqlstate is not NULL it receives the SQLSTATE ("" if none), size 6.
 */
proto_err db_exec(PGconn *conn, const char *sql, int nparams,
    const char *const *params, ExecStatusType want, PGresult **out,
    char *sqlstate, char *err, size_t errlen);

/*
 * db_lost reports whether conn is unusable (connection broken), as opposed
 * to a statement that merely failed.
 */
bool db_lost(PGconn *conn);

/* db_transient reports whether a SQLSTATE is worth retrying as is. */
bool db_transient(const char *sqlstate);

#endif /* HUB_DB_H */
