/*
 * keys.c: branch and till keys. A key is 32 random bytes written as hex;
 * only its sha256 is stored. Rotation keeps the previous key valid for an
 * overlap. Requests are authenticated against these hashes from memory
 * (authcache.h, server.c), never by a query here.
 */
#include "keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "platform.h"
#include "util.h"

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
 * new_key draws a key (KEYS_KEY_BYTES random bytes as hex) into key and
 * writes its hash as bytea text ("\\x" and 64 hex digits) into hash.
 */
static proto_err
new_key(
    char key[KEYS_KEY_HEX + 1], char hash[HASH_TEXT], char *err, size_t errlen)
{
	uint8_t raw[KEYS_KEY_BYTES], digest[32];

	if (plat_rand_bytes(raw, sizeof raw) != PROTO_OK) {
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
keys_branch_add(
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
keys_branch_rotate(PGconn *conn, const char *code, int64_t overlap_s,
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
keys_branch_set_enabled(
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
keys_till_add(PGconn *conn, const char *branch, const char *till, char *key,
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
keys_till_rotate(PGconn *conn, const char *branch, const char *till,
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
	/* As keys_branch_rotate: at most two keys at a time. */
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
keys_till_set_enabled(PGconn *conn, const char *branch, const char *till,
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
