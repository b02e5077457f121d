/*
 * guard_test.c: tests of hub/guard.c: an address is shut out at its
 * auth_fail_max-th failure within the window, for one window; the window
 * restarts; IPv6 peers count by /64; a full table reuses the entry seen
 * least recently and keeps the blocked ones; non-IP peers never count.
 */
#include <arpa/inet.h>
#include <stdio.h>

#include "guard.h"
#include "testutil.h"

static void
blocked_too_early_or_late(void)
{
	guard *g = guard_new(3, 1000);

	CHECK(!guard_fail(g, "10.0.0.7", 0));
	CHECK(!guard_fail(g, "10.0.0.7", 100));
	CHECK(!guard_blocked(g, "10.0.0.7", 100));
	CHECK(guard_fail(g, "10.0.0.7", 200)); /* the third blocks */
	CHECK(guard_blocked(g, "10.0.0.7", 200));
	CHECK(guard_blocked(g, "10.0.0.7", 1199));
	CHECK(!guard_fail(g, "10.0.0.7", 500)); /* blocked already */
	CHECK(!guard_blocked(g, "10.0.0.8", 500));
	CHECK(!guard_blocked(g, "10.0.0.7", 1200)); /* one window */
	/* A new window: three more needed. */
	CHECK(!guard_fail(g, "10.0.0.7", 1300));
	CHECK(!guard_fail(g, "10.0.0.7", 1400));
	CHECK(guard_fail(g, "10.0.0.7", 1500));
	guard_free(g);
}

static void
window_never_restarts(void)
{
	guard *g = guard_new(3, 1000);

	CHECK(!guard_fail(g, "a", 0));
	CHECK(!guard_fail(g, "a", 900));
	CHECK(!guard_fail(g, "a", 1000)); /* a new window: 1 */
	CHECK(!guard_fail(g, "a", 1500));
	CHECK(guard_fail(g, "a", 1999));
	guard_free(g);
}

static void
keys_of_addresses(void)
{
	nng_sockaddr sa;
	char key[GUARD_KEY_MAX], other[GUARD_KEY_MAX];

	memset(&sa, 0, sizeof sa);
	sa.s_in.sa_family = NNG_AF_INET;
	inet_pton(AF_INET, "192.0.2.9", &sa.s_in.sa_addr);
	sa.s_in.sa_port = htons(5555);
	guard_key(&sa, key);
	CHECK_STREQ(key, "192.0.2.9");
	memset(&sa, 0, sizeof sa);
	sa.s_in6.sa_family = NNG_AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1:2:aaaa::1", sa.s_in6.sa_addr);
	guard_key(&sa, key);
	CHECK_STREQ(key, "2001:db8:1:2::/64");
	inet_pton(AF_INET6, "2001:db8:1:2:ffff:1:2:3", sa.s_in6.sa_addr);
	guard_key(&sa, other);
	CHECK_STREQ(key, other); /* one /64, one peer */
	memset(&sa, 0, sizeof sa);
	sa.s_ipc.sa_family = NNG_AF_IPC;
	guard_key(&sa, key);
	CHECK_STREQ(key, "");
}

static void
non_ip_counted(void)
{
	guard *g = guard_new(1, 1000);

	CHECK(!guard_fail(g, "", 0));
	CHECK(!guard_blocked(g, "", 0));
	guard_free(g);
}

/* A table full of guessers' addresses keeps the blocked ones. */
static void
full_table_forgets_blocked(void)
{
	guard *g = guard_new(2, 100000);
	char key[32];

	CHECK(!guard_fail(g, "victim", 0));
	CHECK(guard_fail(g, "victim", 1));
	for (int i = 0; i < 2 * GUARD_MAX_PEERS; i++) {
		snprintf(key, sizeof key, "10.%d.%d.%d", i >> 16,
		    (i >> 8) & 255, i & 255);
		(void) guard_fail(g, key, 2 + i);
	}
	CHECK(guard_blocked(g, "victim", 3 * GUARD_MAX_PEERS));
	guard_free(g);
}

static const test_case cases[] = {
    {"blocked too early or late", blocked_too_early_or_late},
    {"window never restarts", window_never_restarts},
    {"keys of addresses", keys_of_addresses},
    {"non-IP counted", non_ip_counted},
    {"full table forgets blocked", full_table_forgets_blocked},
};

TEST_MAIN(cases)
