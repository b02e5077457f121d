/*
 * guard.h: failed authentications counted per peer address, and the
 * addresses that failed too often.
 *
 * An address that fails auth_fail_max times within auth_fail_window_s is
 * blocked for auth_fail_window_s from the failure that crossed the line:
 * the hub closes its new connections at once and its connections that
 * have not authenticated at their next request (server.c), so a guesser
 * or a flood of wrong keys costs the hub a connection, not a request
 * each. An IPv4 peer is counted by its address, an IPv6 peer by its /64,
 * which one host usually holds whole. Connections that authenticated
 * keep working: an honest agent behind the same address (a NAT) is not
 * cut off, only its new connections wait out the block.
 *
 * Not thread-safe: the server calls it under its own mutex. The table
 * holds GUARD_MAX_PEERS addresses; when it is full the entry seen least
 * recently is reused (a blocked one only if all are blocked).
 */
#ifndef HUB_GUARD_H
#define HUB_GUARD_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUARD_MAX_PEERS 4096
/* Room for an address key: an IPv6 /64 as text and "/64". */
#define GUARD_KEY_MAX 56

typedef struct guard guard;

/* guard_new returns a guard for max failures per window_ms; never NULL. */
guard *guard_new(int64_t max, int64_t window_ms);

/* guard_free frees g; guard_free(NULL) does nothing. */
void guard_free(guard *g);

/*
 * guard_key writes the address key of sa into key (GUARD_KEY_MAX bytes):
 * "10.0.0.7", "2001:db8:1:2::/64"; "" for an address that is not IP
 * (ipc://, inproc://), which is never counted.
 */
void guard_key(const nng_sockaddr *sa, char *key);

/*
 * guard_fail records a failure of the address key at now_ms. Returns true
 * when this failure blocks it (the max-th of a window); false otherwise,
 * also while it stays blocked.
 */
bool guard_fail(guard *g, const char *key, int64_t now_ms);

/* guard_blocked says whether the address key is blocked at now_ms. */
bool guard_blocked(guard *g, const char *key, int64_t now_ms);

#endif /* HUB_GUARD_H */
