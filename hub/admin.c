/*
 * admin.c: rejects and conflicts commands (see admin.h).
 */
#include "admin.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "lists.h"
#include "pgval.h"
#include "util.h"

/* rollback ends a failed transaction and passes rv through. */
static proto_err
rollback(PGconn *conn, proto_err rv)
{
	if (!db_lost(conn))
		PQclear(PQexec(conn, "ROLLBACK"));
	return rv;
}

/* branch_lookup sets id (text) of branch code, or fails with EINVAL. */
static proto_err
branch_lookup(PGconn *conn, const char *code, char *id, size_t idlen,
    char *err, size_t errlen)
{
	const char *params[1] = {code};
	PGresult *res;
	proto_err rv;

	rv = db_exec(conn, "SELECT id FROM branchsync.branch WHERE code = $1",
	    1, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	if (PQntuples(res) != 1) {
		PQclear(res);
		snprintf(err, errlen, "unknown branch \"%s\"", code);
		return PROTO_EINVAL;
	}
	snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return PROTO_OK;
}

/* parse_ids checks the ids and writes them as a bigint[] literal. */
static proto_err
parse_ids(const char *what, char *const *ids, int nids, strbuf *arr, char *err,
    size_t errlen)
{
	strbuf_putc(arr, '{');
	for (int i = 0; i < nids; i++) {
		int64_t v;
		char tmp[24];
		char why[128];
		if (!parse_int64(
		        ids[i], 1, INT64_MAX, &v, "id", why, sizeof why)) {
			snprintf(
			    err, errlen, "invalid %s id \"%s\"", what, ids[i]);
			return PROTO_EINVAL;
		}
		snprintf(tmp, sizeof tmp, "%s%" PRId64, i > 0 ? "," : "", v);
		strbuf_puts(arr, tmp);
	}
	strbuf_putc(arr, '}');
	return PROTO_OK;
}

/* val returns column c of row i, or dflt when it is NULL. */
static const char *
val(const PGresult *res, int i, int c, const char *dflt)
{
	return PQgetisnull(res, i, c) ? dflt : PQgetvalue(res, i, c);
}

proto_err
admin_rejects_list(PGconn *conn, const char *branch, bool all, FILE *out,
    char *err, size_t errlen)
{
	PGresult *res;
	proto_err rv;

	rv = lists_rejects_get(conn, branch, all, NULL, &res, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	for (int i = 0; i < PQntuples(res); i++) {
		cli_printf(out,
		    "id=%s branch=%s log=%s seq=%s table=%s key=%s state=%s "
		    "attempts=%s created=%s",
		    PQgetvalue(res, i, LISTS_R_ID),
		    PQgetvalue(res, i, LISTS_R_BRANCH),
		    PQgetvalue(res, i, LISTS_R_LOG),
		    PQgetvalue(res, i, LISTS_R_SEQ),
		    PQgetvalue(res, i, LISTS_R_TBL),
		    val(res, i, LISTS_R_KEY, "-"),
		    PQgetvalue(res, i, LISTS_R_STATE),
		    PQgetvalue(res, i, LISTS_R_ATTEMPTS),
		    val(res, i, LISTS_R_CREATED, "-"));
		if (!PQgetisnull(res, i, LISTS_R_RESOLVED))
			cli_printf(out, " resolved=%s by=%s",
			    PQgetvalue(res, i, LISTS_R_RESOLVED),
			    val(res, i, LISTS_R_BY, "-"));
		cli_printf(
		    out, " reason=%s\n", PQgetvalue(res, i, LISTS_R_REASON));
	}
	PQclear(res);
	return PROTO_OK;
}

proto_err
admin_branch_list(PGconn *conn, FILE *out, char *err, size_t errlen)
{
	PGresult *res;
	proto_err rv;

	rv = db_exec(conn,
	    "SELECT code, CASE WHEN enabled THEN 'yes' ELSE 'no' END,"
	    " to_char(created_at AT TIME ZONE 'UTC',"
	    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	    " coalesce(to_char(key_changed_at AT TIME ZONE 'UTC',"
	    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
	    " CASE WHEN old_key_until > now() THEN to_char(old_key_until"
	    " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	    " ELSE '-' END FROM branchsync.branch ORDER BY code",
	    0, NULL, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	for (int i = 0; i < PQntuples(res); i++)
		cli_printf(out,
		    "branch=%s enabled=%s created=%s key_changed=%s "
		    "old_key_until=%s\n",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		    PQgetvalue(res, i, 4));
	PQclear(res);
	return PROTO_OK;
}

proto_err
admin_till_list(
    PGconn *conn, const char *branch, FILE *out, char *err, size_t errlen)
{
	const char *params[1] = {branch};
	PGresult *res;
	proto_err rv;

	rv = db_exec(conn,
	    "SELECT b.code, t.code, t.id, CASE WHEN t.enabled THEN 'yes'"
	    " ELSE 'no' END, to_char(t.created_at AT TIME ZONE 'UTC',"
	    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	    " coalesce(to_char(t.key_changed_at AT TIME ZONE 'UTC',"
	    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
	    " CASE WHEN t.old_key_until > now() THEN to_char(t.old_key_until"
	    " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	    " ELSE '-' END FROM branchsync.till t"
	    " JOIN branchsync.branch b ON b.id = t.branch_id"
	    " WHERE $1::text IS NULL OR b.code = $1 ORDER BY b.code, t.code",
	    1, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	for (int i = 0; i < PQntuples(res); i++)
		cli_printf(out,
		    "branch=%s till=%s id=%s enabled=%s created=%s "
		    "key_changed=%s old_key_until=%s\n",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		    PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
		    PQgetvalue(res, i, 6));
	PQclear(res);
	return PROTO_OK;
}

/* check_reject_ids verifies that every id exists and may change. */
static proto_err
check_reject_ids(PGconn *conn, const char *arr, char *const *ids, int nids,
    char *err, size_t errlen)
{
	const char *params[1] = {arr};
	PGresult *res;
	proto_err rv;

	rv = db_exec(conn,
	    "SELECT r.id, r.state FROM branchsync.reject r"
	    " WHERE r.id = ANY($1::bigint[]) ORDER BY r.id FOR UPDATE",
	    1, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	for (int i = 0; i < nids && rv == PROTO_OK; i++) {
		int64_t want = strtoll(ids[i], NULL, 10);
		int row = -1;
		for (int r = 0; r < PQntuples(res) && row < 0; r++)
			if (strtoll(PQgetvalue(res, r, 0), NULL, 10) == want)
				row = r;
		if (row < 0) {
			snprintf(
			    err, errlen, "no reject with id %" PRId64, want);
			rv = PROTO_EINVAL;
		} else if (strcmp(PQgetvalue(res, row, 1), "open") != 0
		    && strcmp(PQgetvalue(res, row, 1), "retry") != 0) {
			snprintf(err, errlen,
			    "reject %" PRId64 " is already %s", want,
			    PQgetvalue(res, row, 1));
			rv = PROTO_EINVAL;
		}
	}
	PQclear(res);
	return rv;
}

proto_err
admin_rejects_set(PGconn *conn, bool discard, char *const *ids, int nids,
    const char *branch, const char *by, int64_t *count, char *err,
    size_t errlen)
{
	strbuf arr = {0};
	char bid[24] = "";
	const char *params[4]
	    = {NULL, NULL, discard ? "discarded" : "retry", by};
	PGresult *res;
	proto_err rv;

	*count = 0;
	if (nids > 0
	    && (rv = parse_ids("reject", ids, nids, &arr, err, errlen))
	        != PROTO_OK)
		goto out;
	if ((rv = db_exec(conn, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL, NULL,
	         err, errlen))
	    != PROTO_OK)
		goto out;
	if (nids > 0)
		rv = check_reject_ids(conn, arr.p, ids, nids, err, errlen);
	else
		rv = branch_lookup(conn, branch, bid, sizeof bid, err, errlen);
	if (rv != PROTO_OK) {
		rv = rollback(conn, rv);
		goto out;
	}
	params[0] = nids > 0 ? arr.p : NULL;
	params[1] = nids > 0 ? NULL : bid;
	/*
	 * A retry of a reject already in retry changes nothing; a discard
	 * also takes rejects waiting for a retry. Each branch concerned is
	 * notified ("r" and its id) so that the hub's nudge publisher asks
	 * its agent for a HELLO, whose WELCOME carries the lists; PostgreSQL
	 * sends one notification per distinct payload, at COMMIT.
	 */
	rv = db_exec(conn,
	    "WITH u AS (UPDATE branchsync.reject SET state = $3,"
	    " resolved_at = CASE WHEN $3 = 'discarded' THEN now() END,"
	    " resolved_by = CASE WHEN $3 = 'discarded' THEN $4 END"
	    " WHERE (id = ANY($1::bigint[]) OR branch_id = $2::int)"
	    " AND (state = 'open' OR (state = 'retry' AND $3 = 'discarded'))"
	    " RETURNING branch_id)"
	    " SELECT count(*), count(pg_notify('branchsync_change',"
	    " 'r' || branch_id)) FROM u",
	    4, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK) {
		rv = rollback(conn, rv);
		goto out;
	}
	*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	rv = db_exec(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, NULL,
	    err, errlen);
out:
	strbuf_fini(&arr);
	return rv;
}

proto_err
admin_conflicts_list(PGconn *conn, const char *branch, bool all, FILE *out,
    char *err, size_t errlen)
{
	PGresult *res;
	proto_err rv;

	rv = lists_conflicts_get(conn, branch, all, NULL, &res, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	for (int i = 0; i < PQntuples(res); i++) {
		cli_printf(out,
		    "id=%s branch=%s log=%s seq=%s table=%s key=%s type=%s "
		    "created=%s resolution=%s",
		    PQgetvalue(res, i, LISTS_C_ID),
		    PQgetvalue(res, i, LISTS_C_BRANCH),
		    PQgetvalue(res, i, LISTS_C_LOG),
		    PQgetvalue(res, i, LISTS_C_SEQ),
		    PQgetvalue(res, i, LISTS_C_TBL),
		    PQgetvalue(res, i, LISTS_C_KEY),
		    PQgetvalue(res, i, LISTS_C_TYPE),
		    val(res, i, LISTS_C_CREATED, "-"),
		    val(res, i, LISTS_C_RESOLUTION, "-"));
		if (!PQgetisnull(res, i, LISTS_C_RESOLUTION))
			cli_printf(out, " resolved=%s by=%s",
			    val(res, i, LISTS_C_RESOLVED, "-"),
			    val(res, i, LISTS_C_BY, "-"));
		cli_printf(out, " server_row=%s local_row=%s\n",
		    val(res, i, LISTS_C_SERVER_ROW, "null"),
		    val(res, i, LISTS_C_LOCAL_ROW, "null"));
	}
	PQclear(res);
	return PROTO_OK;
}

/*
 * write_local writes the local row of a conflict to table t: the current
 * server row (if any) overlaid with the local row (merge: only its
 * non-null columns), keys included, as one upsert. The branch column of
 * t holds the conflict's branch_id. The local row names target columns
 * (the apply recorded it after the table's renames). Triggers on t fire
 * as for any write.
 */
static proto_err
write_local(PGconn *conn, const catalog_table *t, const char *branch_id,
    const char *local, bool merge, char *err, size_t errlen)
{
	strbuf cols = {0}, rcols = {0}, pk = {0}, upd = {0}, cond = {0};
	const char *bcol = t->cols[t->branch].name;
	const char *params[5]
	    = {local, branch_id, merge ? "t" : "f", NULL, bcol};
	const char *lparams[3] = {local, branch_id, bcol};
	char *sql;
	PGresult *res;
	proto_err rv;

	for (size_t i = 0; i < t->ncols; i++) {
		const char *q = t->cols[i].quoted;
		strbuf_puts(&cols, i > 0 ? ", " : "");
		strbuf_puts(&cols, q);
		strbuf_puts(&rcols, i > 0 ? ", bs_r." : "bs_r.");
		strbuf_puts(&rcols, q);
		if (t->cols[i].in_pk) {
			strbuf_puts(&pk, pk.len > 0 ? ", " : "");
			strbuf_puts(&pk, q);
			strbuf_puts(&cond, cond.len > 0 ? " AND " : "");
			strbuf_puts(&cond, "bs_t.");
			strbuf_puts(&cond, q);
			strbuf_puts(&cond, " = bs_r.");
			strbuf_puts(&cond, q);
		} else {
			strbuf_puts(
			    &upd, upd.len > 0 ? ", " : " DO UPDATE SET ");
			strbuf_puts(&upd, q);
			strbuf_puts(&upd, " = EXCLUDED.");
			strbuf_puts(&upd, q);
		}
	}
	/* The local row with the conflict's branch id: $1 || {$3: $2}. */
	sql = xasprintf(
	    "SELECT to_jsonb(bs_t) FROM %s bs_t, jsonb_populate_record("
	    "NULL::%s, $1::jsonb || jsonb_build_object($3::text, $2::int))"
	    " bs_r WHERE %s FOR UPDATE OF bs_t",
	    t->quoted, t->quoted, cond.p);
	rv = db_exec(
	    conn, sql, 3, lparams, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	free(sql);
	if (rv != PROTO_OK)
		goto out;
	/* $4: the server row now, or {} if it no longer exists. */
	params[3] = PQntuples(res) == 1 ? xstrdup(PQgetvalue(res, 0, 0))
	                                : xstrdup("{}");
	PQclear(res);
	sql = xasprintf(
	    "INSERT INTO %s (%s) SELECT %s FROM"
	    " jsonb_populate_record(NULL::%s, $4::jsonb"
	    " || CASE WHEN $3::bool THEN jsonb_strip_nulls($1::jsonb)"
	    " ELSE $1::jsonb END"
	    " || jsonb_build_object($5::text, $2::int)) bs_r"
	    " ON CONFLICT (%s)%s",
	    t->quoted, cols.p, rcols.p, t->quoted, pk.p,
	    upd.len > 0 ? upd.p : " DO NOTHING");
	rv = db_exec(
	    conn, sql, 5, params, PGRES_COMMAND_OK, NULL, NULL, err, errlen);
	free(sql);
	free((char *) params[3]);
out:
	strbuf_fini(&cols);
	strbuf_fini(&rcols);
	strbuf_fini(&pk);
	strbuf_fini(&upd);
	strbuf_fini(&cond);
	return rv;
}

/* load_conflict locks conflict id and checks that it may be resolved. */
static proto_err
load_conflict(
    PGconn *conn, const char *id, PGresult **out, char *err, size_t errlen)
{
	const char *params[1] = {id};
	PGresult *res;
	proto_err rv;

	rv = db_exec(conn,
	    "SELECT branch_id, tbl, local_row::text, resolution,"
	    " coalesce(resolved_by, '-'),"
	    " coalesce(to_char(resolved_at AT TIME ZONE 'UTC',"
	    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-')"
	    " FROM branchsync.conflict WHERE id = $1 FOR UPDATE",
	    1, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	if (PQntuples(res) != 1) {
		snprintf(err, errlen, "no conflict with id %s", id);
		rv = PROTO_EINVAL;
	} else if (!PQgetisnull(res, 0, 3)) {
		snprintf(err, errlen,
		    "conflict %s is already resolved (%s by %s at %s)", id,
		    PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4),
		    PQgetvalue(res, 0, 5));
		rv = PROTO_EINVAL;
	}
	if (rv != PROTO_OK)
		PQclear(res);
	else
		*out = res;
	return rv;
}

proto_err
admin_conflict_resolve(PGconn *conn, const catalog *cat, const char *id,
    const char *how, const char *by, char *err, size_t errlen)
{
	const char *params[3] = {id, how, by};
	PGresult *res = NULL;
	char why[128];
	int64_t v;
	proto_err rv;

	if (!parse_int64(id, 1, INT64_MAX, &v, "id", why, sizeof why)) {
		snprintf(err, errlen, "invalid conflict id \"%s\"", id);
		return PROTO_EINVAL;
	}
	if ((rv = db_exec(conn, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL, NULL,
	         err, errlen))
	        != PROTO_OK
	    || (rv = load_conflict(conn, id, &res, err, errlen)) != PROTO_OK)
		return rollback(conn, rv);
	if (strcmp(how, "keep_server") != 0) {
		const catalog_table *t
		    = catalog_find(cat, PQgetvalue(res, 0, 1));
		if (t == NULL || t->cfg->down || t->ncols == 0) {
			snprintf(err, errlen,
			    "table \"%s\" of conflict %s is not an up table "
			    "of this configuration",
			    PQgetvalue(res, 0, 1), id);
			rv = PROTO_EINVAL;
		} else if (PQgetisnull(res, 0, 2)) {
			snprintf(
			    err, errlen, "conflict %s has no local row", id);
			rv = PROTO_EINVAL;
		} else
			rv = write_local(conn, t, PQgetvalue(res, 0, 0),
			    PQgetvalue(res, 0, 2), !strcmp(how, "merge"), err,
			    errlen);
	}
	PQclear(res);
	if (rv != PROTO_OK)
		return rollback(conn, rv);
	rv = db_exec(conn,
	    "UPDATE branchsync.conflict SET resolution = $2,"
	    " resolved_at = now(), resolved_by = $3 WHERE id = $1",
	    3, params, PGRES_COMMAND_OK, NULL, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rollback(conn, rv);
	return db_exec(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, NULL,
	    err, errlen);
}
