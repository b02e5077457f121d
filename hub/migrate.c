/*
 * migrate.c: the hub's schema migrations (the objects are drawn in
 * migrate.h), applied in order by "branchsync-hub migrate", and the check
 * that "run" makes before it serves.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "log.h"
#include "util.h"

static const char *const migration_1
    = "CREATE SCHEMA IF NOT EXISTS branchsync;"
      "CREATE TABLE branchsync.branch(id serial PRIMARY KEY,"
      " code text NOT NULL UNIQUE, key_hash bytea NOT NULL,"
      " enabled boolean NOT NULL DEFAULT true,"
      " created_at timestamptz NOT NULL DEFAULT now());"
      "CREATE TABLE branchsync.watermark(branch_id int NOT NULL"
      " REFERENCES branchsync.branch(id), log_id text NOT NULL,"
      " seq bigint NOT NULL DEFAULT 0, tag bigint NOT NULL DEFAULT 0,"
      " updated_at timestamptz NOT NULL DEFAULT now(),"
      " PRIMARY KEY (branch_id, log_id));"
      "CREATE TABLE branchsync.branch_status(branch_id int PRIMARY KEY"
      " REFERENCES branchsync.branch(id), last_seen timestamptz,"
      " queue_events bigint, queue_bytes bigint, oldest_age_s bigint,"
      " agent_version text, applied_total bigint NOT NULL DEFAULT 0,"
      " rejected_total bigint NOT NULL DEFAULT 0);"
      "CREATE TABLE branchsync.reject(id bigserial PRIMARY KEY,"
      " branch_id int NOT NULL, log_id text NOT NULL, seq bigint NOT NULL,"
      " tbl text NOT NULL, key jsonb, row jsonb, reason text NOT NULL,"
      " created_at timestamptz NOT NULL DEFAULT now());";

/*
 * Migration 2: the change feed of down tables (see feed.h). One record per
 * (scope, table, key): an upsert moves the record to the end of the feed
 * with a new id, so the table grows with the number of rows, never with
 * the number of updates, and a branch starting from cursor 0 gets a full
 * snapshot. branchsync.feed() is generic: the trigger arguments name the
 * branch-side table, the scope column ('' = all branches) and the key
 * columns, so one function serves every down table.
 */
static const char *const migration_2
    = "CREATE SEQUENCE branchsync.change_id_seq;"
      "CREATE TABLE branchsync.change("
      " id bigint NOT NULL DEFAULT nextval('branchsync.change_id_seq'),"
      " scope int NOT NULL DEFAULT 0, tbl text NOT NULL,"
      " key jsonb NOT NULL, op smallint NOT NULL, row jsonb,"
      " changed_at timestamptz NOT NULL DEFAULT now(),"
      " PRIMARY KEY (scope, tbl, key));"
      "CREATE UNIQUE INDEX change_scope_id ON branchsync.change(scope, id);"
      "ALTER TABLE branchsync.branch_status ADD COLUMN last_pull timestamptz,"
      " ADD COLUMN pull_cursor bigint;"
      "CREATE FUNCTION branchsync.feed() RETURNS trigger"
      " LANGUAGE plpgsql AS $feed$\n"
      "DECLARE\n"
      "  scol text := TG_ARGV[1];\n"
      "  o jsonb; n jsonb;\n"
      "  okey jsonb := '[]'; nkey jsonb := '[]';\n"
      "  oscope int := 0; nscope int := 0;\n"
      "BEGIN\n"
      /* See DB_FEED_LOCK in db.h: a pull waits for this transaction. */
      "  PERFORM pg_advisory_xact_lock_shared(" DB_FEED_LOCK ");\n"
      "  IF TG_OP <> 'INSERT' THEN\n"
      "    o := to_jsonb(OLD);\n"
      "    FOR i IN 2 .. TG_NARGS - 1 LOOP\n"
      "      okey := okey || jsonb_build_array(o -> TG_ARGV[i]);\n"
      "    END LOOP;\n"
      "    IF scol <> '' THEN oscope := coalesce((o ->> scol)::int, 0);"
      " END IF;\n"
      "  END IF;\n"
      "  IF TG_OP <> 'DELETE' THEN\n"
      "    n := to_jsonb(NEW);\n"
      "    FOR i IN 2 .. TG_NARGS - 1 LOOP\n"
      "      nkey := nkey || jsonb_build_array(n -> TG_ARGV[i]);\n"
      "    END LOOP;\n"
      "    IF scol <> '' THEN nscope := coalesce((n ->> scol)::int, 0);"
      " END IF;\n"
      "  END IF;\n"
      /* The old key or scope no longer exists for its branches. */
      "  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE'"
      "      AND (okey <> nkey OR oscope <> nscope)) THEN\n"
      "    INSERT INTO branchsync.change(scope, tbl, key, op, row)\n"
      "      VALUES (oscope, TG_ARGV[0], okey, 2, NULL)\n"
      "      ON CONFLICT (scope, tbl, key) DO UPDATE SET\n"
      "      id = nextval('branchsync.change_id_seq'), op = EXCLUDED.op,\n"
      "      row = EXCLUDED.row, changed_at = now();\n"
      "    PERFORM pg_notify('branchsync_change', oscope::text);\n"
      "  END IF;\n"
      "  IF TG_OP <> 'DELETE' THEN\n"
      "    IF scol <> '' THEN n := n - scol; END IF;\n"
      "    INSERT INTO branchsync.change(scope, tbl, key, op, row)\n"
      "      VALUES (nscope, TG_ARGV[0], nkey, 1, n)\n"
      "      ON CONFLICT (scope, tbl, key) DO UPDATE SET\n"
      "      id = nextval('branchsync.change_id_seq'), op = EXCLUDED.op,\n"
      "      row = EXCLUDED.row, changed_at = now();\n"
      "    PERFORM pg_notify('branchsync_change', nscope::text);\n"
      "  END IF;\n"
      "  RETURN NULL;\n"
      "END\n"
      "$feed$;";

/*
 * Migration 3: rejects get a life cycle (open -> retry -> resolved, or
 * discarded; a reject row is updated, never duplicated) and conflicts are
 * recorded with both versions of the row. reject_open serves the
 * dependency lookup (an event whose parent row was rejected).
 */
static const char *const migration_3
    = "DELETE FROM branchsync.reject a USING branchsync.reject b"
      " WHERE a.branch_id = b.branch_id AND a.log_id = b.log_id"
      " AND a.seq = b.seq AND a.id < b.id;"
      "ALTER TABLE branchsync.reject ADD COLUMN state text NOT NULL"
      " DEFAULT 'open' CHECK (state IN ('open','retry','resolved',"
      "'discarded')), ADD COLUMN attempts int NOT NULL DEFAULT 1,"
      " ADD COLUMN resolved_at timestamptz, ADD COLUMN resolved_by text;"
      "CREATE UNIQUE INDEX reject_event ON branchsync.reject(branch_id,"
      " log_id, seq);"
      "CREATE INDEX reject_open ON branchsync.reject(branch_id, tbl, key)"
      " WHERE state IN ('open','retry');"
      "CREATE TABLE branchsync.conflict(id bigserial PRIMARY KEY,"
      " branch_id int NOT NULL, log_id text NOT NULL, seq bigint NOT NULL,"
      " tbl text NOT NULL, key jsonb NOT NULL, type text NOT NULL"
      " CHECK (type IN ('duplicate','data_mismatch',"
      "'constraint_violation')),"
      " server_row jsonb, local_row jsonb,"
      " created_at timestamptz NOT NULL DEFAULT now(),"
      " resolution text CHECK (resolution IN ('keep_server','keep_local',"
      "'merge')), resolved_at timestamptz, resolved_by text);"
      "CREATE INDEX conflict_open ON branchsync.conflict(branch_id, id)"
      " WHERE resolution IS NULL;";

/*
 * Migration 4: what operators see (see overview.h). branch_status counts
 * conflicts and keeps the last failure of a PUSH or PULL with its time;
 * backlog_sample holds every branch's queue length at regular intervals
 * (sample_interval_s) for the history chart, pruned after a day.
 */
static const char *const migration_4
    = "ALTER TABLE branchsync.branch_status"
      " ADD COLUMN conflict_total bigint NOT NULL DEFAULT 0,"
      " ADD COLUMN last_error text,"
      " ADD COLUMN last_error_at timestamptz;"
      "CREATE TABLE branchsync.backlog_sample("
      " branch_id int NOT NULL REFERENCES branchsync.branch(id),"
      " ts timestamptz NOT NULL,"
      " queue_events bigint NOT NULL,"
      " PRIMARY KEY (branch_id, ts));";

/*
 * Migration 5: key rotation. "branch rotate-key" keeps the previous key's
 * hash in old_key_hash, accepted until old_key_until, so a branch keeps
 * syncing while its new key is being installed.
 */
static const char *const migration_5
    = "ALTER TABLE branchsync.branch ADD COLUMN old_key_hash bytea,"
      " ADD COLUMN old_key_until timestamptz,"
      " ADD COLUMN key_changed_at timestamptz;";

/*
 * Migration 6: the change feed's trigger function runs with its owner's
 * rights, so whoever writes a down table (head-office applications, the
 * hub's least-privileged role through a trigger) needs no right on
 * branchsync.change; a fixed search_path keeps it from resolving names
 * in the caller's schemas.
 */
static const char *const migration_6
    = "ALTER FUNCTION branchsync.feed() SECURITY DEFINER"
      " SET search_path = pg_catalog;";

/*
 * Migration 7: tills (see keys.h). A branch may run several POS files, each
 * with its own agent, log and key; branch_status gets one row per till
 * (till_id 0: an agent that uses the branch's own key), so that two tills
 * of one branch no longer overwrite each other's queue reports.
 */
static const char *const migration_7
    = "CREATE TABLE branchsync.till(id serial PRIMARY KEY,"
      " branch_id int NOT NULL REFERENCES branchsync.branch(id),"
      " code text NOT NULL, key_hash bytea NOT NULL,"
      " enabled boolean NOT NULL DEFAULT true,"
      " created_at timestamptz NOT NULL DEFAULT now(),"
      " key_changed_at timestamptz, old_key_hash bytea,"
      " old_key_until timestamptz, UNIQUE (branch_id, code));"
      "ALTER TABLE branchsync.branch_status"
      " ADD COLUMN till_id int NOT NULL DEFAULT 0,"
      " DROP CONSTRAINT branch_status_pkey,"
      " ADD PRIMARY KEY (branch_id, till_id);";

/*
 * Migration 8: nobody but the owner may call branchsync.feed(). PostgreSQL
 * grants EXECUTE to PUBLIC by default, and a trigger function that runs
 * with its owner's rights would let any role that can create a table (a
 * temporary one is enough) attach it to that table and forge master data
 * into every branch's feed. Firing the triggers that migrate installs
 * needs no EXECUTE right.
 */
static const char *const migration_8
    = "REVOKE EXECUTE ON FUNCTION branchsync.feed() FROM PUBLIC;";

/*
 * Migration 9: the hubs keep every branch's and till's key hash in memory
 * (authcache.h), so that a request is authenticated without a query. Any
 * change of branchsync.branch or branchsync.till, by the "branch" and
 * "till" commands or by hand, NOTIFYs channel "branchsync_keys" at commit,
 * and every hub reloads. The function runs with the writer's rights (it
 * only notifies) and, like every function of the schema, is not
 * executable by PUBLIC.
 */
static const char *const migration_9
    = "CREATE FUNCTION branchsync.keys_changed() RETURNS trigger"
      " LANGUAGE plpgsql SET search_path = pg_catalog AS $keys$\n"
      "BEGIN\n"
      "  PERFORM pg_notify('branchsync_keys', '');\n"
      "  RETURN NULL;\n"
      "END\n"
      "$keys$;"
      "REVOKE EXECUTE ON FUNCTION branchsync.keys_changed() FROM PUBLIC;"
      "CREATE TRIGGER branchsync_keys AFTER INSERT OR UPDATE OR DELETE"
      " OR TRUNCATE ON branchsync.branch FOR EACH STATEMENT"
      " EXECUTE FUNCTION branchsync.keys_changed();"
      "CREATE TRIGGER branchsync_keys AFTER INSERT OR UPDATE OR DELETE"
      " OR TRUNCATE ON branchsync.till FOR EACH STATEMENT"
      " EXECUTE FUNCTION branchsync.keys_changed();";

/* migrations[i] brings the schema to version i + 1. Append only. */
static const char *const migrations[]
    = {migration_1, migration_2, migration_3, migration_4, migration_5,
        migration_6, migration_7, migration_8, migration_9};

/* query_int runs sql (no parameters) and returns its one integer value. */
static proto_err
query_int(PGconn *conn, const char *sql, int *value, char *err, size_t errlen)
{
	PGresult *res;
	proto_err rv;

	rv = db_exec(
	    conn, sql, 0, NULL, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	*value = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
	    ? atoi(PQgetvalue(res, 0, 0))
	    : 0;
	PQclear(res);
	return PROTO_OK;
}

/* current_version reads max(version), 0 if the table does not exist. */
static proto_err
current_version(PGconn *conn, int *version, char *err, size_t errlen)
{
	int exists;
	proto_err rv;

	*version = 0;
	rv = query_int(conn,
	    "SELECT (to_regclass('branchsync.schema_version') IS NOT NULL)"
	    "::int",
	    &exists, err, errlen);
	if (rv != PROTO_OK || !exists)
		return rv;
	return query_int(conn,
	    "SELECT max(version) FROM branchsync.schema_version", version, err,
	    errlen);
}

/*
 * migrate_one applies migration number version (1-based) in one
 * transaction, unless a concurrent run got there first. *applied says
 * whether it ran here.
 */
static proto_err
migrate_one(PGconn *conn, int version, bool *applied, char *err, size_t errlen)
{
	char ver[16];
	const char *params[1] = {ver};
	int have;
	proto_err rv;

	*applied = false;
	snprintf(ver, sizeof ver, "%d", version);
	if ((rv = db_exec(conn,
	         "BEGIN; SELECT pg_advisory_xact_lock(" DB_MIGRATE_LOCK ");"
	         "CREATE SCHEMA IF NOT EXISTS branchsync;"
	         "CREATE TABLE IF NOT EXISTS branchsync.schema_version("
	         "version int PRIMARY KEY, applied_at timestamptz NOT NULL"
	         " DEFAULT now())",
	         0, NULL, PGRES_COMMAND_OK, NULL, NULL, err, errlen))
	    != PROTO_OK)
		goto fail;
	if ((rv = current_version(conn, &have, err, errlen)) != PROTO_OK)
		goto fail;
	if (have < version) {
		if ((rv = db_exec(conn, migrations[version - 1], 0, NULL,
		         PGRES_COMMAND_OK, NULL, NULL, err, errlen))
		        != PROTO_OK
		    || (rv = db_exec(conn,
		            "INSERT INTO branchsync.schema_version(version)"
		            " VALUES ($1)",
		            1, params, PGRES_COMMAND_OK, NULL, NULL, err,
		            errlen))
		        != PROTO_OK)
			goto fail;
		*applied = true;
	}
	return db_exec(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, NULL,
	    err, errlen);
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return rv;
}

proto_err
migrate_run(PGconn *conn, int *from, int *to, char *err, size_t errlen)
{
	proto_err rv;
	bool applied;

	if ((rv = current_version(conn, from, err, errlen)) != PROTO_OK)
		return rv;
	if (*from > (int) ARRAY_LEN(migrations)) {
		snprintf(err, errlen,
		    "database schema version %d is newer "
		    "than this hub (%d)",
		    *from, (int) ARRAY_LEN(migrations));
		return PROTO_EINVAL;
	}
	for (int v = *from + 1; v <= (int) ARRAY_LEN(migrations); v++) {
		if ((rv = migrate_one(conn, v, &applied, err, errlen))
		    != PROTO_OK)
			return rv;
		if (applied)
			log_info("HUB-MIGRATE", "applied migration %d", v);
	}
	return current_version(conn, to, err, errlen);
}

proto_err
migrate_check(PGconn *conn, char *err, size_t errlen)
{
	int version;
	proto_err rv;

	if ((rv = current_version(conn, &version, err, errlen)) != PROTO_OK)
		return rv;
	if (version < MIGRATE_SCHEMA_VERSION) {
		snprintf(err, errlen,
		    "database schema is at version %d, "
		    "need %d: run \"branchsync-hub migrate\" first",
		    version, MIGRATE_SCHEMA_VERSION);
		return PROTO_EINVAL;
	}
	if (version > MIGRATE_SCHEMA_VERSION) {
		snprintf(err, errlen,
		    "database schema version %d is newer "
		    "than this hub (%d)",
		    version, MIGRATE_SCHEMA_VERSION);
		return PROTO_EINVAL;
	}
	return PROTO_OK;
}
