/*
 * env_test.c: tests of proto/env.c and proto_body_encode/decode: a version
 * 2 request and answer survive a round trip, their identity comes from
 * the auth map only, and every malformed envelope or auth map is refused
 * without a crash, before any body is decoded.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/auth.h"
#include "proto/msg.h"
#include "testutil.h"

static char err[512];

static const char *cols[] = {"id", "amount"};
static proto_table tables[] = {{"payments", 2, cols, 1}};
static proto_value vals[]
    = {{PROTO_INT, 0, {.i = 7}}, {PROTO_STR, 3, {.s = "a\0b"}}};
static proto_event events[] = {{5, -9, 0, PROTO_OP_UPSERT, 2, vals, false, 0}};

/* sample_push: a PUSH whose header still names a key, as v1 would. */
static void
sample_push(proto_msg *m)
{
	memset(m, 0, sizeof *m);
	m->type = PROTO_PUSH;
	m->u.push.hdr = (proto_agent_hdr) {"b17", "secret-key-text",
	    "0123456789abcdef0123456789abcdef", 3, 400, 5, "pc1"};
	m->u.push.ntables = 1;
	m->u.push.tables = tables;
	m->u.push.nevents = 1;
	m->u.push.events = events;
}

/* sample_auth: b17/pc1, counter 9, one nonce. */
static void
sample_auth(proto_env *env, int type, const proto_buf *body)
{
	memset(env, 0, sizeof *env);
	env->version = PROTO_VERSION;
	env->type = (proto_type) type;
	snprintf(env->auth.branch, sizeof env->auth.branch, "b17");
	snprintf(env->auth.till, sizeof env->auth.till, "pc1");
	env->auth.ctr = 9;
	env->auth.nnonces = 1;
	memset(env->auth.nonces[0], 0xab, PROTO_NONCE_BYTES);
	env->auth.has_mac = true;
	memset(env->auth.mac, 0xcd, PROTO_MAC_BYTES);
	env->body = body->data;
	env->body_len = body->len;
}

/* encode_push writes a whole v2 PUSH into out; its body into body. */
static int
encode_push(proto_buf *body, proto_buf *out)
{
	proto_msg m;
	proto_env env;

	sample_push(&m);
	proto_buf_reset(body);
	proto_buf_reset(out);
	if (proto_body_encode(&m, body, err, sizeof err) != PROTO_OK)
		return -1;
	sample_auth(&env, PROTO_PUSH, body);
	return proto_env_encode(&env, out, err, sizeof err) == PROTO_OK ? 0
	                                                                : -1;
}

/* The head then the body is the very envelope proto_env_encode writes. */
static void
head_and_body_differ(void)
{
	proto_buf body, out, head;
	proto_env env;

	proto_buf_init(&body);
	proto_buf_init(&out);
	proto_buf_init(&head);
	CHECK(encode_push(&body, &out) == 0);
	sample_auth(&env, PROTO_PUSH, &body);
	CHECK_OK(proto_env_encode_head(&env, &head, err, sizeof err));
	CHECK(head.len + body.len == out.len);
	CHECK(memcmp(head.data, out.data, head.len) == 0);
	CHECK(memcmp(body.data, out.data + head.len, body.len) == 0);
	proto_buf_fini(&body);
	proto_buf_fini(&out);
	proto_buf_fini(&head);
}

static void
request_round_trip_differs(void)
{
	proto_buf body, out;
	proto_env env;
	proto_msg *m = NULL;
	const proto_push *p;

	proto_buf_init(&body);
	proto_buf_init(&out);
	CHECK(encode_push(&body, &out) == 0);
	CHECK_OK(
	    proto_env_decode(out.data, out.len, NULL, &env, err, sizeof err));
	CHECK(env.version == PROTO_VERSION && env.type == PROTO_PUSH);
	CHECK_STREQ(env.auth.branch, "b17");
	CHECK_STREQ(env.auth.till, "pc1");
	CHECK(env.auth.ctr == 9 && env.auth.nnonces == 1 && env.auth.has_mac);
	CHECK(env.auth.nonces[0][15] == 0xab && env.auth.mac[31] == 0xcd);
	CHECK(!env.auth.has_nonce);
	/* The body is the very bytes that were encoded. */
	CHECK(env.body_len == body.len
	    && memcmp(env.body, body.data, body.len) == 0);
	CHECK(env.body > out.data
	    && env.body + env.body_len == out.data + out.len);
	CHECK_OK(proto_body_decode(&env, NULL, &m, err, sizeof err));
	p = &m->u.push;
	CHECK(m->type == PROTO_PUSH);
	CHECK_STREQ(p->hdr.branch, "b17");
	CHECK_STREQ(p->hdr.till, "pc1");
	CHECK(p->hdr.key == NULL);
	CHECK_STREQ(p->hdr.log_id, "0123456789abcdef0123456789abcdef");
	CHECK(p->hdr.queue_events == 3 && p->nevents == 1 && p->ntables == 1);
	CHECK(p->events[0].vals[1].len == 3);
	proto_msg_free(m);
	proto_buf_fini(&body);
	proto_buf_fini(&out);
}

/* The key of the header never reaches the bytes of a version 2 body. */
static void
key_in_body(void)
{
	proto_buf body, out;

	proto_buf_init(&body);
	proto_buf_init(&out);
	CHECK(encode_push(&body, &out) == 0);
	CHECK(test_memmem(out.data, out.len, "secret-key-text", 15) == NULL);
	CHECK(test_memmem(out.data, out.len, "\xa3key", 4) == NULL);
	CHECK(test_memmem(out.data, out.len,
	          "\xa6"
	          "branch",
	          7)
	    != NULL);
	proto_buf_fini(&body);
	proto_buf_fini(&out);
}

/* pack helpers for hand-made envelopes */
static int
wcb(void *data, const char *buf, size_t len)
{
	return proto_buf_append(data, buf, len) == PROTO_OK ? 0 : -1;
}

static void
pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void
pk_bin(msgpack_packer *pk, uint8_t fill, size_t n)
{
	uint8_t b[64];

	memset(b, fill, sizeof b);
	msgpack_pack_bin_with_body(pk, b, n);
}

/* A request envelope by hand: what selects the auth entries to write,
 * and extra appended raw inside the map (counted in nextra pairs). */
typedef struct {
	int version;           /* first element */
	int n;                 /* elements of the envelope */
	int type;              /* message type */
	const char *branch;    /* NULL: left out */
	const char *till;      /* NULL: left out */
	int64_t ctr;           /* counter */
	int nnonces;           /* -1: left out */
	size_t nonce_len;      /* bytes of each nonce */
	size_t mac_len;        /* 0: left out */
	const char *extra_key; /* one more key, or NULL */
	bool body_str;         /* body as a str instead of a bin */
	size_t trailing;       /* bytes after the envelope */
} env_spec;

static const env_spec good = {PROTO_VERSION, 4, PROTO_HELLO, "b17", NULL, 1, 1,
    PROTO_NONCE_BYTES, PROTO_MAC_BYTES, NULL, false, 0};

static void
build(const env_spec *s, proto_buf *out)
{
	msgpack_packer pk;
	int pairs = (s->branch != NULL) + (s->till != NULL) + 1
	    + (s->nnonces >= 0) + (s->mac_len > 0) + (s->extra_key != NULL);

	proto_buf_reset(out);
	msgpack_packer_init(&pk, out, wcb);
	msgpack_pack_array(&pk, (size_t) s->n);
	msgpack_pack_int(&pk, s->version);
	if (s->n < 2)
		return;
	msgpack_pack_int(&pk, s->type);
	if (s->n < 3)
		return;
	msgpack_pack_map(&pk, (size_t) pairs);
	if (s->branch != NULL) {
		pk_str(&pk, "branch");
		pk_str(&pk, s->branch);
	}
	if (s->till != NULL) {
		pk_str(&pk, "till");
		pk_str(&pk, s->till);
	}
	pk_str(&pk, "ctr");
	msgpack_pack_int64(&pk, s->ctr);
	if (s->nnonces >= 0) {
		pk_str(&pk, "nonces");
		msgpack_pack_array(&pk, (size_t) s->nnonces);
		for (int i = 0; i < s->nnonces; i++)
			pk_bin(&pk, (uint8_t) i, s->nonce_len);
	}
	if (s->mac_len > 0) {
		pk_str(&pk, "mac");
		pk_bin(&pk, 1, s->mac_len);
	}
	if (s->extra_key != NULL) {
		pk_str(&pk, s->extra_key);
		pk_bin(&pk, 2, 16);
	}
	if (s->n < 4)
		return;
	if (s->body_str)
		pk_str(&pk, "\x80");
	else
		msgpack_pack_bin_with_body(&pk, "\x80", 1);
	for (size_t i = 0; i < s->trailing; i++)
		msgpack_pack_nil(&pk);
}

static proto_err
try_env(const env_spec *s)
{
	proto_buf b;
	proto_env env;
	proto_err rv;

	proto_buf_init(&b);
	build(s, &b);
	err[0] = '\0';
	rv = proto_env_decode(b.data, b.len, NULL, &env, err, sizeof err);
	if (rv != PROTO_OK && err[0] == '\0')
		rv = PROTO_ERR_COUNT; /* a refusal without a reason */
	proto_buf_fini(&b);
	return rv;
}

static void
hand_made_request_refused(void)
{
	CHECK_OK(try_env(&good));
}

static void
envelope_shape_accepted(void)
{
	env_spec s = good;

	s.n = 3;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	s.n = 5;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	s = good;
	s.body_str = true;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "body: ");
	s = good;
	s.trailing = 1;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "trailing");
	s = good;
	s.type = 99;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "unknown message type");
}

static void
other_versions_accepted(void)
{
	env_spec s = good;
	proto_buf b;
	proto_env env;

	s.version = 0;
	CHECK_ERR(try_env(&s), PROTO_EVERSION);
	s.version = 3;
	CHECK_ERR(try_env(&s), PROTO_EVERSION);
	CHECK_STR(err, "unsupported protocol version 3");
	/* Version 1 is recognized, not read: proto_msg_decode does that. */
	s.version = PROTO_VERSION_PLAIN;
	s.n = 3;
	proto_buf_init(&b);
	build(&s, &b);
	CHECK_OK(proto_env_decode(b.data, b.len, NULL, &env, err, sizeof err));
	CHECK(env.version == PROTO_VERSION_PLAIN && env.body == b.data
	    && env.body_len == b.len && env.type == 0);
	proto_buf_fini(&b);
}

static void
auth_field_missing(void)
{
	env_spec s = good;

	s.branch = NULL;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "missing field \"branch\"");
	s = good;
	s.nnonces = -1;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "missing field \"nonces\"");
	s = good;
	s.mac_len = 0;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "missing field \"mac\"");
}

static void
auth_field_wrong(void)
{
	env_spec s = good;

	s.mac_len = 31;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	s.mac_len = 33;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	s = good;
	s.nonce_len = 15;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "nonce 0");
	s = good;
	s.nnonces = PROTO_MAX_NONCES + 1;
	CHECK_ERR(try_env(&s), PROTO_ETOOBIG);
	s.nnonces = PROTO_MAX_NONCES;
	CHECK_OK(try_env(&s));
	s.nnonces = 0;
	CHECK_OK(try_env(&s));
	s = good;
	s.ctr = -1;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	s.ctr = INT64_MAX;
	CHECK_OK(try_env(&s));
}

static void
bad_codes_accepted(void)
{
	static const char *bad[] = {"", "b 17", "b17\n", "b'17", "caf\xc3\xa9",
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "x"};
	env_spec s = good;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		s = good;
		s.branch = bad[i];
		CHECK_ERR(try_env(&s), PROTO_EPROTO);
		s = good;
		s.till = bad[i];
		CHECK_ERR(try_env(&s), PROTO_EPROTO);
	}
	s = good;
	s.branch = "A-z_0.9";
	s.till = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	         "xxxx";
	CHECK_OK(try_env(&s));
}

static void
key_of_other_direction(void)
{
	env_spec s = good;

	/* An answer's key in a request, a request's in an answer. */
	s.extra_key = "nonce";
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "not a key of a request");
	s = good;
	s.type = PROTO_ERROR;
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "not a key of an answer");
	/* Unknown keys are skipped, within both directions. */
	s = good;
	s.extra_key = "hint";
	CHECK_OK(try_env(&s));
	s.extra_key = "branch"; /* twice */
	CHECK_ERR(try_env(&s), PROTO_EPROTO);
	CHECK_STR(err, "duplicate");
}

/* answer_env: an answer of type with or without mac and nonce. */
static proto_err
answer(int type, bool mac, bool nonce, proto_env *got)
{
	proto_buf out;
	proto_env env;
	proto_err rv;

	memset(&env, 0, sizeof env);
	env.type = (proto_type) type;
	env.auth.has_mac = mac;
	memset(env.auth.mac, 7, sizeof env.auth.mac);
	env.auth.has_nonce = nonce;
	memset(env.auth.nonce, 8, sizeof env.auth.nonce);
	env.body = (const uint8_t *) "\x80";
	env.body_len = 1;
	proto_buf_init(&out);
	rv = proto_env_encode(&env, &out, err, sizeof err);
	if (rv == PROTO_OK)
		rv = proto_env_decode(
		    out.data, out.len, NULL, got, err, sizeof err);
	proto_buf_fini(&out);
	return rv;
}

static void
answer_without_mac(void)
{
	proto_env got;

	CHECK_OK(answer(PROTO_ACK, true, false, &got));
	CHECK(got.auth.has_mac && !got.auth.has_nonce && got.auth.mac[0] == 7);
	CHECK_OK(answer(PROTO_ERROR, false, true, &got));
	CHECK(
	    !got.auth.has_mac && got.auth.has_nonce && got.auth.nonce[0] == 8);
	CHECK_ERR(answer(PROTO_WELCOME, false, false, &got), PROTO_EINVAL);
	CHECK_ERR(answer(PROTO_CHANGES, false, true, &got), PROTO_EINVAL);
}

static void
truncated_envelope(void)
{
	proto_buf body, out;
	proto_env env;

	proto_buf_init(&body);
	proto_buf_init(&out);
	CHECK(encode_push(&body, &out) == 0);
	for (size_t n = 0; n < out.len; n++) {
		uint8_t *p = malloc(n ? n : 1);
		proto_err rv;
		CHECK(p != NULL);
		memcpy(p, out.data, n);
		rv = proto_env_decode(p, n, NULL, &env, err, sizeof err);
		free(p);
		CHECK(rv == PROTO_EPROTO);
		CHECK(env.body == NULL);
	}
	proto_buf_fini(&body);
	proto_buf_fini(&out);
}

/* The body bin is bounded by the message size, not by max_value_bytes,
 * and neither are the auth map's fixed-size values. */
static void
body_limit_wrong(void)
{
	proto_limits lim;
	proto_buf body, out;
	proto_env env;

	proto_limits_default(&lim);
	lim.max_value_bytes = 1;
	proto_buf_init(&body);
	proto_buf_init(&out);
	CHECK(encode_push(&body, &out) == 0);
	CHECK(body.len > 8);
	CHECK_OK(
	    proto_env_decode(out.data, out.len, &lim, &env, err, sizeof err));
	lim.max_msg_bytes = out.len - 1;
	CHECK_ERR(
	    proto_env_decode(out.data, out.len, &lim, &env, err, sizeof err),
	    PROTO_ETOOBIG);
	proto_buf_fini(&body);
	proto_buf_fini(&out);
}

/* A v2 body that names "branch" or "key" cannot change who sends it. */
static void
identity_from_body(void)
{
	proto_msg m, *got = NULL;
	proto_buf v1, body;
	proto_env env;
	size_t skip;

	/* The v1 message carries branch/key/till in its body map: use that
	 * map as a v2 body (after the 3 bytes of [1, 3,). */
	sample_push(&m);
	m.u.push.hdr.branch = "evil";
	m.u.push.hdr.till = "tx";
	proto_buf_init(&v1);
	CHECK_OK(proto_msg_encode(&m, &v1, err, sizeof err));
	skip = 3;
	body.data = v1.data + skip;
	body.len = v1.len - skip;
	sample_auth(&env, PROTO_PUSH, &body);
	CHECK_OK(proto_body_decode(&env, NULL, &got, err, sizeof err));
	CHECK_STREQ(got->u.push.hdr.branch, "b17");
	CHECK_STREQ(got->u.push.hdr.till, "pc1");
	CHECK(got->u.push.hdr.key == NULL);
	proto_msg_free(got);
	/* No till in the auth map: none, whatever the body says. */
	env.auth.till[0] = '\0';
	CHECK_OK(proto_body_decode(&env, NULL, &got, err, sizeof err));
	CHECK(got->u.push.hdr.till == NULL);
	proto_msg_free(got);
	proto_buf_fini(&v1);
}

static void
body_errors_unreported(void)
{
	static const uint8_t not_map[] = {0x91, 0x01};
	static const uint8_t trailing[] = {0x80, 0xc0};
	proto_env env;
	proto_buf b = {(uint8_t *) not_map, sizeof not_map, 0};
	proto_msg *m = NULL;

	sample_auth(&env, PROTO_HELLO, &b);
	CHECK_ERR(
	    proto_body_decode(&env, NULL, &m, err, sizeof err), PROTO_EPROTO);
	CHECK(m == NULL);
	b.data = (uint8_t *) trailing;
	b.len = sizeof trailing;
	sample_auth(&env, PROTO_HELLO, &b);
	CHECK_ERR(proto_body_decode(&env, NULL, &m, err, sizeof err),
	    PROTO_EPROTO); /* a missing field first */
	env.version = PROTO_VERSION_PLAIN;
	CHECK_ERR(
	    proto_body_decode(&env, NULL, &m, err, sizeof err), PROTO_EINVAL);
}

static void
encode_bad_request(void)
{
	proto_buf body = {(uint8_t *) "\x80", 1, 0}, out;
	proto_env env;

	proto_buf_init(&out);
	sample_auth(&env, PROTO_PULL, &body);
	env.auth.branch[0] = '\0';
	CHECK_ERR(proto_env_encode(&env, &out, err, sizeof err), PROTO_EINVAL);
	sample_auth(&env, PROTO_PULL, &body);
	snprintf(env.auth.till, sizeof env.auth.till, "p c");
	CHECK_ERR(proto_env_encode(&env, &out, err, sizeof err), PROTO_EINVAL);
	sample_auth(&env, PROTO_PULL, &body);
	env.auth.nnonces = PROTO_MAX_NONCES + 1;
	CHECK_ERR(proto_env_encode(&env, &out, err, sizeof err), PROTO_EINVAL);
	sample_auth(&env, 42, &body);
	CHECK_ERR(proto_env_encode(&env, &out, err, sizeof err), PROTO_EINVAL);
	CHECK(out.len == 0);
	proto_buf_fini(&out);
}

static const test_case cases[] = {
    {"request round trip differs", request_round_trip_differs},
    {"head and body differ", head_and_body_differ},
    {"key in body", key_in_body},
    {"hand made request refused", hand_made_request_refused},
    {"envelope shape accepted", envelope_shape_accepted},
    {"other versions accepted", other_versions_accepted},
    {"auth field missing", auth_field_missing},
    {"auth field wrong", auth_field_wrong},
    {"bad codes accepted", bad_codes_accepted},
    {"key of other direction", key_of_other_direction},
    {"answer without mac", answer_without_mac},
    {"truncated envelope", truncated_envelope},
    {"body limit wrong", body_limit_wrong},
    {"identity from body", identity_from_body},
    {"body errors unreported", body_errors_unreported},
    {"encode bad request", encode_bad_request},
};

TEST_MAIN(cases)
