/*
 * authcache.h: every branch's and till's credential, in memory, so that
 * the hub authenticates a request without asking PostgreSQL.
 *
 * A thread with its own PostgreSQL connection loads branchsync.branch and
 * branchsync.till at start, LISTENs on "branchsync_keys" (which every
 * change of those tables notifies at commit, migration 9) and reloads
 * when notified, every AUTHCACHE_REFRESH_MS in any case, and after it
 * reconnects. A refused credential (unknown, wrong MAC) is looked up
 * again after authcache_sync, which costs no query unless a change is
 * waiting: a key made by "branch add" a moment before works at once, and
 * a flood of unknown keys still costs the database nothing.
 *
 * A rotated key's previous secret is kept until its old_key_until; the
 * time left is taken from PostgreSQL's clock at each load and counted on
 * the hub's monotonic clock, so a skew between the two clocks does not
 * stretch an overlap.
 */
#ifndef HUB_AUTHCACHE_H
#define HUB_AUTHCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/auth.h"
#include "proto/err.h"

/* The longest the cache goes without reloading, notifications or not. */
#define AUTHCACHE_REFRESH_MS 60000

typedef struct authcache authcache;

/* One credential, as a request needs it. */
typedef struct {
	int branch_id;       /* branchsync.branch.id */
	int till_id;         /* branchsync.till.id, 0: the branch's own key */
	bool enabled;        /* the branch, and the till if any, enabled */
	bool branch_enabled; /* the branch enabled */
	bool has_secret;     /* secret is set (a stored hash of 32 bytes) */
	uint8_t secret[PROTO_SECRET_BYTES];     /* key_hash */
	bool has_old;                           /* old_secret within its
	                                           rotation overlap */
	uint8_t old_secret[PROTO_SECRET_BYTES]; /* old_key_hash */
} authcache_entry;

/*
 * authcache_start connects to conninfo (waiting for PostgreSQL like the
 * workers, db_connect_retry), LISTENs, loads every credential and starts
 * the thread. Returns PROTO_OK with *out, PROTO_ECLOSED if a stop was
 * requested while waiting, PROTO_EDB with the reason in err if the first
 * load fails, PROTO_EIO if the thread cannot start.
 */
proto_err authcache_start(
    const char *conninfo, authcache **out, char *err, size_t errlen);

/* authcache_stop stops the thread (within about 500 ms) and frees c;
 * authcache_stop(NULL) does nothing. */
void authcache_stop(authcache *c);

/*
 * authcache_find copies the credential of branch code and till code (NULL
 * or "": the branch's own key) into *out. false if there is none. Safe
 * from any thread.
 */
bool authcache_find(
    authcache *c, const char *branch, const char *till, authcache_entry *out);

/*
 * authcache_sync waits until the thread has read every notification
 * PostgreSQL delivered before the call, and reloaded if there was one; at
 * most about 200 ms. Costs no query when nothing changed.
 */
void authcache_sync(authcache *c);

/*
 * authcache_branch_secrets copies into out (room for max) the secrets of
 * every credential of branch code, its own key and every till's, with a
 * rotated key's previous secret while its overlap lasts; only enabled
 * credentials. Returns how many it copied. Safe from any thread.
 */
size_t authcache_branch_secrets(authcache *c, const char *branch,
    uint8_t (*out)[PROTO_SECRET_BYTES], size_t max);

/* authcache_count returns the number of credentials loaded. */
size_t authcache_count(authcache *c);

#endif /* HUB_AUTHCACHE_H */
