/*
 * keys.h: branch and till keys, made and changed by the CLI. Only a key's
 * sha256 is stored; it is the secret of protocol version 2's MACs
 * (proto/auth.h), which the hub reads through authcache.h.
 */
#ifndef HUB_KEYS_H
#define HUB_KEYS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

/* A branch key: 32 random bytes written as 64 hex digits. */
#define KEYS_KEY_BYTES 32
#define KEYS_KEY_HEX   (2 * KEYS_KEY_BYTES)

/*
 * keys_branch_add creates branch code with a new random key, written as 64
 * hex digits and a NUL into key (size KEYS_KEY_HEX + 1); only its sha256 is
 * stored. PROTO_EINVAL if the code is invalid or already exists, PROTO_EIO
 * if no random bytes, PROTO_EDB otherwise.
 */
proto_err keys_branch_add(
    PGconn *conn, const char *code, char *key, char *err, size_t errlen);

/*
 * keys_branch_rotate gives branch code a new key (written like
 * keys_branch_add's). With overlap_s > 0 the previous key stays valid for
 * that long and until receives when it expires ("YYYY-MM-DD HH:MM:SS
 * UTC"); with 0 it stops at once and until is "". PROTO_EINVAL for an
 * unknown branch.
 */
proto_err keys_branch_rotate(PGconn *conn, const char *code, int64_t overlap_s,
    char *key, char *until, size_t untillen, char *err, size_t errlen);

/* keys_branch_set_enabled enables or disables a branch (PROTO_EINVAL: none).
 */
proto_err keys_branch_set_enabled(
    PGconn *conn, const char *code, bool enabled, char *err, size_t errlen);

/*
 * keys_till_add registers till code till under branch with a new key,
 * written like keys_branch_add's (only its sha256 is stored). PROTO_EINVAL
 * for an invalid code, an unknown branch or a till that exists.
 */
proto_err keys_till_add(PGconn *conn, const char *branch, const char *till,
    char *key, char *err, size_t errlen);

/* keys_till_rotate is keys_branch_rotate for one till of a branch. */
proto_err keys_till_rotate(PGconn *conn, const char *branch, const char *till,
    int64_t overlap_s, char *key, char *until, size_t untillen, char *err,
    size_t errlen);

/* keys_till_set_enabled enables or disables a till (PROTO_EINVAL: none). */
proto_err keys_till_set_enabled(PGconn *conn, const char *branch,
    const char *till, bool enabled, char *err, size_t errlen);

#endif /* HUB_KEYS_H */
