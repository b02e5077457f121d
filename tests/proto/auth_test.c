/*
 * auth_test.c: tests of proto/auth.c: the MACs of protocol version 2 are
 * the ones proto/auth.h draws (fixed vectors, computed independently with
 * Python's hmac module, as tests/lib/bswire.py does), and every input of
 * a MAC changes it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "proto/auth.h"
#include "testutil.h"

static void
hex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t) v;
	}
}

/* sample_env: a PUSH of b17/pc1, counter 42, two nonces, body {}. */
static void
sample_env(proto_env *env)
{
	memset(env, 0, sizeof *env);
	env->version = PROTO_VERSION;
	env->type = PROTO_PUSH;
	snprintf(env->auth.branch, sizeof env->auth.branch, "b17");
	snprintf(env->auth.till, sizeof env->auth.till, "pc1");
	env->auth.ctr = 42;
	env->auth.nnonces = 2;
	for (int i = 0; i < 32; i++)
		env->auth.nonces[i / 16][i % 16] = (uint8_t) i;
	env->body = (const uint8_t *) "\x80";
	env->body_len = 1;
}

static void
req_mac(const proto_env *env, uint8_t mac[PROTO_MAC_BYTES])
{
	uint8_t s[PROTO_SECRET_BYTES], d[PROTO_DIGEST_BYTES];

	memset(mac, 0, PROTO_MAC_BYTES);
	if (proto_key_secret("k3y", s) != PROTO_OK
	    || proto_digest(env->body, env->body_len, d) != PROTO_OK
	    || proto_req_mac(s, env, d, mac) != PROTO_OK)
		memset(mac, 0xee, PROTO_MAC_BYTES);
}

static void
secret_not_sha256(void)
{
	uint8_t s[PROTO_SECRET_BYTES], want[PROTO_SECRET_BYTES];

	CHECK_OK(proto_key_secret("abc", s));
	hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    want, sizeof want);
	CHECK(memcmp(s, want, sizeof s) == 0);
}

static void
request_mac_not_as_drawn(void)
{
	proto_env env;
	uint8_t mac[PROTO_MAC_BYTES], want[PROTO_MAC_BYTES];

	sample_env(&env);
	req_mac(&env, mac);
	hex("1997e316ab7f33007416643bb98b5f06e47c0b8e5decb4f9fad69625f9466f61",
	    want, sizeof want);
	CHECK(memcmp(mac, want, sizeof mac) == 0);
}

static void
answer_mac_not_as_drawn(void)
{
	uint8_t s[PROTO_SECRET_BYTES], d[PROTO_DIGEST_BYTES];
	uint8_t req[PROTO_MAC_BYTES], mac[PROTO_MAC_BYTES];
	uint8_t want[PROTO_MAC_BYTES];

	hex("1997e316ab7f33007416643bb98b5f06e47c0b8e5decb4f9fad69625f9466f61",
	    req, sizeof req);
	CHECK_OK(proto_key_secret("k3y", s));
	CHECK_OK(proto_digest((const uint8_t *) "\x80", 1, d));
	CHECK_OK(proto_rep_mac(s, PROTO_ACK, req, d, mac));
	hex("a4a11471486f9f312f38f06b03e75aec07715401f99aa5de160288e7c40851d2",
	    want, sizeof want);
	CHECK(memcmp(mac, want, sizeof mac) == 0);
	/* Bound to the request it answers and to its own type. */
	req[0] ^= 1;
	CHECK_OK(proto_rep_mac(s, PROTO_ACK, req, d, mac));
	CHECK(memcmp(mac, want, sizeof mac) != 0);
	req[0] ^= 1;
	CHECK_OK(proto_rep_mac(s, PROTO_ERROR, req, d, mac));
	CHECK(memcmp(mac, want, sizeof mac) != 0);
}

/* Each input of the request MAC, changed alone, changes it. */
static void
mac_input_ignored(void)
{
	proto_env env;
	uint8_t base[PROTO_MAC_BYTES], mac[PROTO_MAC_BYTES];

	sample_env(&env);
	req_mac(&env, base);
	for (int change = 0; change < 8; change++) {
		sample_env(&env);
		switch (change) {
		case 0:
			env.type = PROTO_PULL;
			break;
		case 1:
			env.auth.ctr = 43;
			break;
		case 2:
			env.auth.branch[2] = '8';
			break;
		case 3:
			env.auth.till[0] = '\0';
			break;
		case 4:
			env.auth.nnonces = 1;
			break;
		case 5:
			env.auth.nonces[1][15] ^= 1;
			break;
		case 6:
			env.body = (const uint8_t *) "\x81";
			break;
		default:
			env.auth.ctr = (int64_t) 42 << 32;
			break;
		}
		req_mac(&env, mac);
		CHECK(memcmp(mac, base, sizeof mac) != 0);
	}
}

/* Lengths are part of the input: "b1"+"7pc1" is not "b17"+"pc1". */
static void
codes_run_together(void)
{
	proto_env env;
	uint8_t a[PROTO_MAC_BYTES], b[PROTO_MAC_BYTES];

	sample_env(&env);
	req_mac(&env, a);
	snprintf(env.auth.branch, sizeof env.auth.branch, "b1");
	snprintf(env.auth.till, sizeof env.auth.till, "7pc1");
	req_mac(&env, b);
	CHECK(memcmp(a, b, sizeof a) != 0);
}

static void
mac_of_other_secret_equal(void)
{
	proto_env env;
	uint8_t s[PROTO_SECRET_BYTES], d[PROTO_DIGEST_BYTES];
	uint8_t a[PROTO_MAC_BYTES], b[PROTO_MAC_BYTES];

	sample_env(&env);
	req_mac(&env, a);
	CHECK_OK(proto_key_secret("k3z", s));
	CHECK_OK(proto_digest(env.body, env.body_len, d));
	CHECK_OK(proto_req_mac(s, &env, d, b));
	CHECK(!proto_mac_equal(a, b, sizeof a));
	CHECK(proto_mac_equal(a, a, sizeof a));
}

static void
oversized_auth_accepted(void)
{
	proto_env env;
	uint8_t s[PROTO_SECRET_BYTES] = {0}, d[PROTO_DIGEST_BYTES] = {0};
	uint8_t mac[PROTO_MAC_BYTES];

	sample_env(&env);
	env.auth.nnonces = PROTO_MAX_NONCES + 1;
	CHECK_ERR(proto_req_mac(s, &env, d, mac), PROTO_EINVAL);
	sample_env(&env);
	memset(env.auth.branch, 'b', sizeof env.auth.branch);
	CHECK_ERR(proto_req_mac(s, &env, d, mac), PROTO_EINVAL);
}

static void
equal_not_equal(void)
{
	uint8_t a[PROTO_MAC_BYTES] = {0}, b[PROTO_MAC_BYTES] = {0};

	CHECK(proto_mac_equal(a, b, sizeof a));
	for (size_t i = 0; i < sizeof a; i++) {
		b[i] = 0x80;
		CHECK(!proto_mac_equal(a, b, sizeof a));
		b[i] = 0;
	}
}

static const test_case cases[] = {
    {"secret not sha256", secret_not_sha256},
    {"request mac not as drawn", request_mac_not_as_drawn},
    {"answer mac not as drawn", answer_mac_not_as_drawn},
    {"mac input ignored", mac_input_ignored},
    {"codes run together", codes_run_together},
    {"mac of other secret equal", mac_of_other_secret_equal},
    {"oversized auth accepted", oversized_auth_accepted},
    {"equal not equal", equal_not_equal},
};

TEST_MAIN(cases)
