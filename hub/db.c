/*
 * db.c: libpq helpers, migrations, branch keys and authentication.
 *
 * Every exec goes through db_exec, which compares PQresultStatus with the
 * exact status expected and PQclears on every failure path, so callers only
 * ever hold a result that succeeded.
 */
#include "db.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

/* Seconds between reconnection attempts. */
#define DB_RETRY_S 2
/* connect_timeout when the connection string sets none. */
#define DB_CONNECT_TIMEOUT_S "10"

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
      /* See FEED_LOCK in db.h: a pull waits for this transaction. */
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
 * Migration 7: tills (see db.h). A branch may run several POS files, each
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

/* migrations[i] brings the schema to version i + 1. Append only. */
static const char *const migrations[] = {migration_1, migration_2, migration_3,
    migration_4, migration_5, migration_6, migration_7};

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

	while (!sig_term) {
		if (db_connect(conninfo, out, err, sizeof err) == PROTO_OK)
			return PROTO_OK;
		metrics_pg_error();
		log_error("HUB-DB-DOWN", "%s; disconnected; retrying in %d s",
		    err, DB_RETRY_S);
		sleep_ms(DB_RETRY_S * 1000);
	}
	return PROTO_ECLOSED;
}

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
db_migrate(PGconn *conn, int *from, int *to, char *err, size_t errlen)
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
db_check_schema(PGconn *conn, char *err, size_t errlen)
{
	int version;
	proto_err rv;

	if ((rv = current_version(conn, &version, err, errlen)) != PROTO_OK)
		return rv;
	if (version < DB_SCHEMA_VERSION) {
		snprintf(err, errlen,
		    "database schema is at version %d, "
		    "need %d: run \"branchsync-hub migrate\" first",
		    version, DB_SCHEMA_VERSION);
		return PROTO_EINVAL;
	}
	if (version > DB_SCHEMA_VERSION) {
		snprintf(err, errlen,
		    "database schema version %d is newer "
		    "than this hub (%d)",
		    version, DB_SCHEMA_VERSION);
		return PROTO_EINVAL;
	}
	return PROTO_OK;
}

/*
 * key_hash computes sha256 of the key's text bytes. libcrypto's EVP does the
 * hashing: a hand-written SHA-256 is one more thing to get subtly wrong, and
 * libcrypto is linked anyway.
 */
static bool
key_hash(const char *key, uint8_t digest[32])
{
	unsigned int n = 0;

	return EVP_Digest(key, strlen(key), digest, &n, EVP_sha256(), NULL)
	    == 1
	    && n == 32;
}

/* code_valid accepts 1..64 characters of letters, digits, '_', '-', '.'. */
static bool
code_valid(const char *code)
{
	size_t n = strlen(code);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = code[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		        || (c >= '0' && c <= '9') || c == '_' || c == '-'
		        || c == '.'))
			return false;
	}
	return true;
}

/* Room for a key hash as bytea text: "\\x" and 64 hex digits. */
#define HASH_TEXT (2 + 64 + 1)

/*
 * new_key draws a key (DB_KEY_BYTES random bytes as hex) into key and
 * writes its hash as bytea text ("\\x" and 64 hex digits) into hash.
 */
static proto_err
new_key(
    char key[DB_KEY_HEX + 1], char hash[HASH_TEXT], char *err, size_t errlen)
{
	uint8_t raw[DB_KEY_BYTES], digest[32];

	if (rand_bytes(raw, sizeof raw) != PROTO_OK) {
		snprintf(err, errlen, "could not read random bytes");
		return PROTO_EIO;
	}
	hex_encode(raw, sizeof raw, key);
	OPENSSL_cleanse(raw, sizeof raw);
	if (!key_hash(key, digest)) {
		snprintf(err, errlen, "could not compute sha256");
		return PROTO_EIO;
	}
	memcpy(hash, "\\x", 2);
	hex_encode(digest, sizeof digest, hash + 2);
	return PROTO_OK;
}

/* check_code reports an invalid branch code as PROTO_EINVAL. */
static proto_err
check_code(const char *code, char *err, size_t errlen)
{
	if (code_valid(code))
		return PROTO_OK;
	snprintf(err, errlen,
	    "invalid branch code \"%s\": use 1 to 64 "
	    "letters, digits, \"_\", \"-\" or \".\"",
	    code);
	return PROTO_EINVAL;
}

proto_err
db_branch_add(
    PGconn *conn, const char *code, char *key, char *err, size_t errlen)
{
	char hash[HASH_TEXT];
	char state[6];
	const char *params[2] = {code, hash};
	proto_err rv;

	if ((rv = check_code(code, err, errlen)) != PROTO_OK
	    || (rv = new_key(key, hash, err, errlen)) != PROTO_OK)
		return rv;
	rv = db_exec(conn,
	    "INSERT INTO branchsync.branch(code, key_hash, key_changed_at)"
	    " VALUES ($1, $2, now())",
	    2, params, PGRES_COMMAND_OK, NULL, state, err, errlen);
	if (rv != PROTO_OK && !strcmp(state, "23505")) {
		snprintf(err, errlen, "branch \"%s\" already exists", code);
		return PROTO_EINVAL;
	}
	return rv;
}

/* no_branch reports that UPDATE found no branch code. */
static proto_err
no_branch(PGresult *res, const char *code, char *err, size_t errlen)
{
	bool none = PQntuples(res) == 0;

	if (!none)
		return PROTO_OK;
	PQclear(res);
	snprintf(err, errlen, "no branch \"%s\"", code);
	return PROTO_EINVAL;
}

proto_err
db_branch_rotate_key(PGconn *conn, const char *code, int64_t overlap_s,
    char *key, char *until, size_t untillen, char *err, size_t errlen)
{
	char hash[HASH_TEXT], overlap[24];
	const char *params[3] = {code, hash, overlap};
	PGresult *res;
	proto_err rv;

	if ((rv = check_code(code, err, errlen)) != PROTO_OK
	    || (rv = new_key(key, hash, err, errlen)) != PROTO_OK)
		return rv;
	snprintf(overlap, sizeof overlap, "%" PRId64, overlap_s);
	/*
	 * The current key becomes the old one for overlap seconds; a key
	 * still in an earlier overlap is dropped (only two keys at a time).
	 */
	rv = db_exec(conn,
	    "UPDATE branchsync.branch SET old_key_hash = CASE WHEN $3::bigint"
	    " > 0 THEN key_hash END, old_key_until = CASE WHEN $3::bigint > 0"
	    " THEN now() + make_interval(secs => $3::bigint) END,"
	    " key_hash = $2, key_changed_at = now() WHERE code = $1"
	    " RETURNING coalesce(to_char(old_key_until AT TIME ZONE 'UTC',"
	    " 'YYYY-MM-DD HH24:MI:SS \"UTC\"'), '')",
	    3, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK || (rv = no_branch(res, code, err, errlen)))
		return rv;
	snprintf(until, untillen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return PROTO_OK;
}

proto_err
db_branch_set_enabled(
    PGconn *conn, const char *code, bool enabled, char *err, size_t errlen)
{
	const char *params[2] = {code, enabled ? "true" : "false"};
	PGresult *res;
	proto_err rv;

	if ((rv = check_code(code, err, errlen)) != PROTO_OK)
		return rv;
	rv = db_exec(conn,
	    "UPDATE branchsync.branch SET enabled = $2 WHERE code = $1"
	    " RETURNING id",
	    2, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK || (rv = no_branch(res, code, err, errlen)))
		return rv;
	PQclear(res);
	return PROTO_OK;
}

/*
 * hash_matches compares column col (bytea text, maybe NULL) with want in
 * constant time; a missing hash is compared too, against zeros.
 */
static bool
hash_matches(const PGresult *res, int col, const char want[HASH_TEXT])
{
	static const char none[HASH_TEXT];
	const char *stored = none;

	if (!PQgetisnull(res, 0, col)
	    && PQgetlength(res, 0, col) == HASH_TEXT - 1)
		stored = PQgetvalue(res, 0, col);
	return CRYPTO_memcmp(stored, want, HASH_TEXT - 1) == 0;
}

/* check_till reports an invalid till code as PROTO_EINVAL. */
static proto_err
check_till(const char *branch, const char *till, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = check_code(branch, err, errlen)) != PROTO_OK
	    || code_valid(till))
		return rv;
	snprintf(err, errlen,
	    "invalid till code \"%s\": use 1 to 64 "
	    "letters, digits, \"_\", \"-\" or \".\"",
	    till);
	return PROTO_EINVAL;
}

/* no_till reports that a statement found no till (branch, till). */
static proto_err
no_till(PGresult *res, const char *branch, const char *till, char *err,
    size_t errlen)
{
	if (PQntuples(res) > 0)
		return PROTO_OK;
	PQclear(res);
	snprintf(err, errlen, "no till \"%s\" in branch \"%s\"", till, branch);
	return PROTO_EINVAL;
}

proto_err
db_till_add(PGconn *conn, const char *branch, const char *till, char *key,
    char *err, size_t errlen)
{
	char hash[HASH_TEXT];
	char state[6];
	const char *params[3] = {branch, till, hash};
	PGresult *res;
	proto_err rv;

	if ((rv = check_till(branch, till, err, errlen)) != PROTO_OK
	    || (rv = new_key(key, hash, err, errlen)) != PROTO_OK)
		return rv;
	rv = db_exec(conn,
	    "INSERT INTO branchsync.till(branch_id, code, key_hash,"
	    " key_changed_at) SELECT id, $2, $3, now()"
	    " FROM branchsync.branch WHERE code = $1 RETURNING id",
	    3, params, PGRES_TUPLES_OK, &res, state, err, errlen);
	if (rv != PROTO_OK && !strcmp(state, "23505")) {
		snprintf(err, errlen,
		    "till \"%s\" of branch \"%s\" already "
		    "exists",
		    till, branch);
		return PROTO_EINVAL;
	}
	if (rv != PROTO_OK || (rv = no_branch(res, branch, err, errlen)))
		return rv;
	PQclear(res);
	return PROTO_OK;
}

proto_err
db_till_rotate_key(PGconn *conn, const char *branch, const char *till,
    int64_t overlap_s, char *key, char *until, size_t untillen, char *err,
    size_t errlen)
{
	char hash[HASH_TEXT], overlap[24];
	const char *params[4] = {branch, hash, overlap, till};
	PGresult *res;
	proto_err rv;

	if ((rv = check_till(branch, till, err, errlen)) != PROTO_OK
	    || (rv = new_key(key, hash, err, errlen)) != PROTO_OK)
		return rv;
	snprintf(overlap, sizeof overlap, "%" PRId64, overlap_s);
	/* As db_branch_rotate_key: at most two keys at a time. */
	rv = db_exec(conn,
	    "UPDATE branchsync.till t SET old_key_hash = CASE WHEN"
	    " $3::bigint > 0 THEN t.key_hash END, old_key_until = CASE WHEN"
	    " $3::bigint > 0 THEN now() + make_interval(secs => $3::bigint)"
	    " END, key_hash = $2, key_changed_at = now()"
	    " FROM branchsync.branch b WHERE b.id = t.branch_id"
	    " AND b.code = $1 AND t.code = $4"
	    " RETURNING coalesce(to_char(t.old_key_until AT TIME ZONE 'UTC',"
	    " 'YYYY-MM-DD HH24:MI:SS \"UTC\"'), '')",
	    4, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK
	    || (rv = no_till(res, branch, till, err, errlen)) != PROTO_OK)
		return rv;
	snprintf(until, untillen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return PROTO_OK;
}

proto_err
db_till_set_enabled(PGconn *conn, const char *branch, const char *till,
    bool enabled, char *err, size_t errlen)
{
	const char *params[3] = {branch, till, enabled ? "true" : "false"};
	PGresult *res;
	proto_err rv;

	if ((rv = check_till(branch, till, err, errlen)) != PROTO_OK)
		return rv;
	rv = db_exec(conn,
	    "UPDATE branchsync.till t SET enabled = $3"
	    " FROM branchsync.branch b WHERE b.id = t.branch_id"
	    " AND b.code = $1 AND t.code = $2 RETURNING t.id",
	    3, params, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK
	    || (rv = no_till(res, branch, till, err, errlen)) != PROTO_OK)
		return rv;
	PQclear(res);
	return PROTO_OK;
}

/*
 * The credential's row: the branch's own (till NULL, till id 0) or the
 * till's, which works only in its own branch. Columns: branch id, till
 * id, enabled (branch and till), key hash, previous key hash while valid,
 * branch enabled.
 */
static const char *const auth_sql
    = "SELECT b.id, coalesce(t.id, 0), b.enabled AND coalesce(t.enabled,"
      " true), CASE WHEN $2::text IS NULL THEN b.key_hash ELSE t.key_hash"
      " END, CASE WHEN $2::text IS NULL AND b.old_key_until > now()"
      " THEN b.old_key_hash WHEN t.old_key_until > now()"
      " THEN t.old_key_hash END, b.enabled"
      " FROM branchsync.branch b LEFT JOIN branchsync.till t"
      " ON t.branch_id = b.id AND t.code = $2"
      " WHERE b.code = $1 AND ($2::text IS NULL OR t.id IS NOT NULL)";

proto_err
db_auth(PGconn *conn, const char *code, const char *till, const char *key,
    db_who *who, char *err, size_t errlen)
{
	const char *params[2] = {code, till};
	uint8_t digest[32];
	char want[HASH_TEXT] = "\\x";
	PGresult *res;
	proto_err rv;
	bool cur, old, enabled, branch_on;

	rv = db_exec(conn, auth_sql, 2, params, PGRES_TUPLES_OK, &res, NULL,
	    err, errlen);
	if (rv != PROTO_OK)
		return rv;
	if (PQntuples(res) != 1 || !key_hash(key, digest)) {
		PQclear(res);
		snprintf(err, errlen, "authentication failed");
		return PROTO_EAUTH;
	}
	/*
	 * The stored values come back as bytea text "\\x<64 hex>". Both are
	 * compared, in constant time, so the reply time says nothing about
	 * how many bytes matched or which key did.
	 */
	hex_encode(digest, sizeof digest, want + 2);
	cur = hash_matches(res, 3, want);
	old = hash_matches(res, 4, want);
	enabled = PQgetvalue(res, 0, 2)[0] == 't';
	branch_on = PQgetvalue(res, 0, 5)[0] == 't';
	who->branch_id = atoi(PQgetvalue(res, 0, 0));
	who->till_id = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (!cur && !old) {
		snprintf(err, errlen, "authentication failed");
		return PROTO_EAUTH;
	}
	if (!enabled) {
		/* Only a holder of the key learns that. */
		if (till == NULL || !branch_on)
			snprintf(
			    err, errlen, "branch \"%s\" is disabled", code);
		else
			snprintf(err, errlen,
			    "till \"%s\" of branch \"%s\" is disabled", till,
			    code);
		return PROTO_EAUTH;
	}
	who->old_key = !cur;
	return PROTO_OK;
}
