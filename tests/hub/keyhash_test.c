/*
 * keyhash_test.c: tests of the hash that collapses a batch's keys
 * (apply_key_hash, proto/util/siphash.c). Cases are named after the
 * failure they exercise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_int.h"
#include "siphash.h"
#include "testutil.h"

/* The reference vectors of SipHash-2-4: key 00..0f, message 00..n-1. */
static void
test_siphash_wrong(void)
{
	static const uint64_t want[]
	    = {UINT64_C(0x726fdb47dd0e0e31), UINT64_C(0x74f839c593dc67fd),
	        UINT64_C(0x0d6c8009d9a94f5a), UINT64_C(0x85676696d7fb7e2d)};
	static const uint64_t want15 = UINT64_C(0xa129ca6149be45e5);
	uint8_t k[16], m[64];
	siphash s;

	for (int i = 0; i < 16; i++)
		k[i] = (uint8_t) i;
	for (int i = 0; i < 64; i++)
		m[i] = (uint8_t) i;
	for (size_t n = 0; n < 4; n++) {
		siphash_init(&s, k);
		siphash_feed(&s, m, n);
		CHECK(siphash_final(&s) == want[n]);
	}
	siphash_init(&s, k);
	siphash_feed(&s, m, 15);
	CHECK(siphash_final(&s) == want15);
	/* fed in pieces: the same */
	siphash_init(&s, k);
	siphash_feed(&s, m, 3);
	siphash_feed(&s, m + 3, 1);
	siphash_feed(&s, m + 4, 11);
	CHECK(siphash_final(&s) == want15);
}

/* FNV-1a, the hash the collapse used before: public, unkeyed. */
static uint64_t
fnv(uint32_t table, int64_t key)
{
	uint64_t h = 14695981039346656037ULL ^ table;
	const uint8_t *p = (const uint8_t *) &key;

	h = (h ^ (uint64_t) PROTO_INT) * 1099511628211ULL;
	for (size_t j = 0; j < sizeof key; j++)
		h = (h ^ p[j]) * 1099511628211ULL;
	return h;
}

/*
 * A branch that knows the hash picks keys that all land in one bucket of
 * the collapse table (1024 buckets for a batch of 512 events): every
 * insert then probes past all the others, O(n^2) per batch. Under the
 * keyed hash the same keys spread like any others.
 */
static void
test_crafted_keys_collide(void)
{
	enum { N = 400, MASK = 1023 };
	static proto_value keys[N];
	static int load[MASK + 1];
	size_t n = 0, worst = 0, probes = 0;

	for (int64_t k = 1; n < N && k < 100000000; k++)
		if ((fnv(0, k) & MASK) == 7) {
			keys[n].type = PROTO_INT;
			keys[n++].u.i = k;
		}
	CHECK(n == N);
	for (size_t i = 0; i < n; i++) {
		size_t b = (size_t) apply_key_hash(0, &keys[i], 1) & MASK;
		/* linear probing: an insert probes the cluster it lands in */
		while (load[b] != 0) {
			probes++;
			b = (b + 1) & MASK;
		}
		load[b] = 1;
	}
	for (size_t i = 0; i <= MASK; i++) {
		size_t run = 0;
		while (i <= MASK && load[i])
			run++, i++;
		if (run > worst)
			worst = run;
	}
	printf("crafted keys: %zu probes for %zu inserts, longest run %zu\n",
	    probes, n, worst);
	/* all in one bucket would be n(n-1)/2 = 79800 probes */
	CHECK(probes < 4 * n);
	CHECK(worst < 40);
}

/* Keys that differ only in how bytes split between parts must differ. */
static void
test_split_strings_equal(void)
{
	proto_value a[2]
	    = {{.type = PROTO_STR, .u.p = (const uint8_t *) "ab", .len = 2},
	        {.type = PROTO_STR, .u.p = (const uint8_t *) "c", .len = 1}};
	proto_value b[2]
	    = {{.type = PROTO_STR, .u.p = (const uint8_t *) "a", .len = 1},
	        {.type = PROTO_STR, .u.p = (const uint8_t *) "bc", .len = 2}};
	proto_value c[1]
	    = {{.type = PROTO_BIN, .u.p = (const uint8_t *) "ab", .len = 2}};
	proto_value d[1]
	    = {{.type = PROTO_STR, .u.p = (const uint8_t *) "ab", .len = 2}};

	CHECK(apply_key_hash(0, a, 2) != apply_key_hash(0, b, 2));
	CHECK(apply_key_hash(0, c, 1) != apply_key_hash(0, d, 1));
	CHECK(apply_key_hash(0, d, 1) != apply_key_hash(1, d, 1));
	CHECK(apply_key_hash(0, d, 1) == apply_key_hash(0, d, 1));
}

static const test_case cases[] = {
    {"siphash wrong", test_siphash_wrong},
    {"crafted keys collide", test_crafted_keys_collide},
    {"split strings equal", test_split_strings_equal},
};

TEST_MAIN(cases)
