/*
 * make_corpus.c: writes the seed inputs of the fuzz targets.
 *
 *   make_corpus DIR         corpus/msg_decode: one valid encoding of each
 *                           message type plus a few variants (composite
 *                           keys, every value type, an unknown key, a
 *                           float32, an empty CHANGES page), named after
 *                           what they are (docs/protocol.md cites some);
 *                           each in version 1 and, as "v2_<name>", in
 *                           version 2: requests signed with the secret of
 *                           their header's key ("k3y", what
 *                           fuzz_hub_request checks MACs with) for one
 *                           nonce, answers with a MAC; and v2_error_nonce,
 *                           a PROTO_ENONCE ERROR carrying a nonce
 *   make_corpus TARGET DIR  corpus/TARGET (msg_roundtrip, hub_request,
 *                           changes_apply, http_query): the same messages
 *                           plus seeds for that target, named like
 *                           libFuzzer's finds, by the SHA-1 of the content
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "proto/auth.h"
#include "proto/msg.h"

/* Name files by the SHA-1 of their content (all but msg_decode). */
static int hash_names;

static const proto_agent_hdr hdr
    = {"b17", "k3y", "0123456789abcdef0123456789abcdef", 3, 400, 5, NULL};

static int
write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[512], hex[41];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	FILE *f;

	if (hash_names) {
		if (EVP_Digest(p, n, md, &mdlen, EVP_sha1(), NULL) != 1)
			return -1;
		for (unsigned int i = 0; i < mdlen && i < 20; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		name = hex;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n
	    || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/* request_hdr returns the header of a request, or NULL. */
static const proto_agent_hdr *
request_hdr(const proto_msg *m)
{
	return m->type == PROTO_HELLO ? &m->u.hello.hdr
	    : m->type == PROTO_PUSH   ? &m->u.push.hdr
	    : m->type == PROTO_PULL   ? &m->u.pull.hdr
	                              : NULL;
}

/*
 * seal fills env for the version 2 message of m whose body is b: a
 * request signed for one nonce with the secret of its header's key, an
 * answer with a MAC (over a request MAC of zeros), an ERROR without one.
 */
static int
seal(const proto_msg *m, const proto_buf *b, proto_env *env)
{
	const proto_agent_hdr *h = request_hdr(m);
	uint8_t s[PROTO_SECRET_BYTES], d[PROTO_DIGEST_BYTES];
	uint8_t zero[PROTO_MAC_BYTES] = {0};

	memset(env, 0, sizeof *env);
	env->version = PROTO_VERSION;
	env->type = m->type;
	env->body = b->data;
	env->body_len = b->len;
	if (proto_digest(b->data, b->len, d) != PROTO_OK)
		return -1;
	if (h == NULL) {
		env->auth.has_mac = m->type != PROTO_ERROR;
		proto_key_secret("k3y", s);
		return proto_rep_mac(s, m->type, zero, d, env->auth.mac)
		        == PROTO_OK
		    ? 0
		    : -1;
	}
	snprintf(env->auth.branch, sizeof env->auth.branch, "%s", h->branch);
	snprintf(env->auth.till, sizeof env->auth.till, "%s",
	    h->till != NULL ? h->till : "");
	env->auth.ctr = 7;
	env->auth.nnonces = 1;
	memset(env->auth.nonces[0], 0x11, PROTO_NONCE_BYTES);
	env->auth.has_mac = true;
	if (proto_key_secret(h->key, s) != PROTO_OK
	    || proto_req_mac(s, env, d, env->auth.mac) != PROTO_OK)
		return -1;
	return 0;
}

/* write_v2 writes m in version 2 as "v2_<name>". */
static int
write_v2(const char *dir, const char *name, const proto_msg *m)
{
	proto_buf body, b;
	proto_env env;
	char err[256], v2name[128];
	int rc = -1;

	proto_buf_init(&body);
	proto_buf_init(&b);
	if (proto_body_encode(m, &body, err, sizeof(err)) != PROTO_OK
	    || seal(m, &body, &env) != 0
	    || proto_env_encode(&env, &b, err, sizeof(err)) != PROTO_OK)
		fprintf(stderr, "v2 %s: %s\n", name, err);
	else {
		snprintf(v2name, sizeof v2name, "v2_%s", name);
		rc = write_file(dir, v2name, b.data, b.len);
	}
	proto_buf_fini(&body);
	proto_buf_fini(&b);
	return rc;
}

static int
write_msg(const char *dir, const char *name, const proto_msg *m)
{
	proto_buf b;
	char err[256];
	int rc;

	proto_buf_init(&b);
	if (proto_msg_encode(m, &b, err, sizeof(err)) != PROTO_OK) {
		fprintf(stderr, "%s: %s\n", name, err);
		return -1;
	}
	rc = write_file(dir, name, b.data, b.len);
	proto_buf_fini(&b);
	return rc != 0 ? rc : write_v2(dir, name, m);
}

/* The ERROR asking a new connection to sign for its nonce. */
static int
write_nonce(const char *dir)
{
	proto_msg m = {.type = PROTO_ERROR};
	proto_buf body, b;
	proto_env env;
	char err[256];
	int rc = -1;

	m.u.error = (proto_error) {PROTO_ENONCE,
	    "sign the request with the nonce of this connection", true};
	proto_buf_init(&body);
	proto_buf_init(&b);
	memset(&env, 0, sizeof env);
	env.type = PROTO_ERROR;
	env.auth.has_nonce = true;
	memset(env.auth.nonce, 0x22, sizeof env.auth.nonce);
	if (proto_body_encode(&m, &body, err, sizeof(err)) == PROTO_OK) {
		env.body = body.data;
		env.body_len = body.len;
		if (proto_env_encode(&env, &b, err, sizeof(err)) == PROTO_OK)
			rc = write_file(dir, "v2_error_nonce", b.data, b.len);
	}
	proto_buf_fini(&body);
	proto_buf_fini(&b);
	return rc;
}

static int
write_pushes(const char *dir)
{
	static const char *c0[] = {"id", "total", "note", "blob", "ok", "r"};
	static const char *c1[] = {"transaction_id", "line_no", "method"};
	proto_table t[] = {{"transactions", 6, c0, 1}, {"payments", 3, c1, 2}};
	proto_value v0[6] = {{PROTO_INT, 0, {.i = -5}},
	    {PROTO_INT, 0, {.i = INT64_MAX}}, {PROTO_STR, 3, {.s = "a\0b"}},
	    {PROTO_BIN, 2, {.p = (const uint8_t *) "\x00\xff"}},
	    {PROTO_BOOL, 0, {.b = true}}, {PROTO_FLOAT, 0, {.f = 2.25}}};
	proto_value v1[3] = {{PROTO_INT, 0, {.i = 7}},
	    {PROTO_INT, 0, {.i = 1}}, {PROTO_NIL, 0, {.i = 0}}};
	proto_event e[] = {{1, 99, 0, PROTO_OP_UPSERT, 6, v0, false, 0},
	    {2, -3, 1, PROTO_OP_UPSERT, 3, v1, false, 0},
	    {3, 4, 1, PROTO_OP_DELETE, 2, v1, false, 0},
	    {4, 5, 0, PROTO_OP_NONE, 1, v0, false, 0}};
	proto_msg m = {.type = PROTO_PUSH};

	m.u.push = (proto_push) {hdr, 2, t, 4, e};
	if (write_msg(dir, "push_all_types", &m) != 0)
		return -1;
	m.u.push = (proto_push) {hdr, 1, t, 1, e};
	if (write_msg(dir, "push_one_event", &m) != 0)
		return -1;
	m.u.push = (proto_push) {hdr, 0, NULL, 0, NULL};
	return write_msg(dir, "push_empty", &m);
}

static int
write_others(const char *dir)
{
	proto_outcome o[] = {{3, PROTO_OUT_REJECTED, "bad value (22P02)"},
	    {4, PROTO_OUT_DUPLICATE, ""}};
	int64_t retry[] = {12, 30, 4000000000}, discard[] = {13};
	proto_msg m = {.type = PROTO_HELLO};

	m.u.hello = (proto_hello) {hdr, 1234, "0.1.0"};
	if (write_msg(dir, "hello", &m) != 0)
		return -1;
	m.u.hello.hdr.till = "pc-1"; /* a till's agent */
	if (write_msg(dir, "hello_till", &m) != 0)
		return -1;
	m.type = PROTO_WELCOME;
	m.u.welcome = (proto_welcome) {
	    41, -7, "0.1.0", 10000, 16777216, 3, retry, 1, discard};
	if (write_msg(dir, "welcome", &m) != 0)
		return -1;
	m.type = PROTO_ACK;
	m.u.ack = (proto_ack) {hdr.log_id, 4, 5, 2, 0, 2, o};
	if (write_msg(dir, "ack_outcomes", &m) != 0)
		return -1;
	m.u.ack.noutcomes = 0;
	if (write_msg(dir, "ack_plain", &m) != 0)
		return -1;
	m.type = PROTO_ERROR;
	m.u.error
	    = (proto_error) {PROTO_EAUTH, "authentication failed", false};
	return write_msg(dir, "error", &m);
}

/* PULL of every table and of one; CHANGES with upserts and deletes of two
 * tables (one with a composite key), and an empty last page. */
static int
write_downstream(const char *dir)
{
	static const char *c0[] = {"id", "name", "price", "barcode", "w"};
	static const char *c1[] = {"product_id", "branch", "qty"};
	proto_table t[] = {{"products", 5, c0, 1}, {"stock", 3, c1, 2}};
	proto_value v0[5] = {{PROTO_INT, 0, {.i = 42}},
	    {PROTO_STR, 5, {.s = "apple"}}, {PROTO_INT, 0, {.i = 1999}},
	    {PROTO_NIL, 0, {.i = 0}}, {PROTO_FLOAT, 0, {.f = 0.5}}};
	proto_value v1[3] = {{PROTO_INT, 0, {.i = 42}},
	    {PROTO_BIN, 2, {.p = (const uint8_t *) "\x01\x02"}},
	    {PROTO_BOOL, 0, {.b = false}}};
	proto_event e[] = {{7, 0, 0, PROTO_OP_UPSERT, 5, v0, false, 0},
	    {8, 0, 1, PROTO_OP_UPSERT, 3, v1, false, 0},
	    {12, 0, 1, PROTO_OP_DELETE, 2, v1, false, 0},
	    {13, 0, 0, PROTO_OP_DELETE, 1, v0, false, 0}};
	proto_msg m = {.type = PROTO_PULL};

	m.u.pull = (proto_pull) {hdr, 0, "", 5000, 4194304};
	if (write_msg(dir, "pull_all", &m) != 0)
		return -1;
	m.u.pull = (proto_pull) {hdr, 123456789, "products", 1, 1024};
	if (write_msg(dir, "pull_reload", &m) != 0)
		return -1;
	m.type = PROTO_CHANGES;
	m.u.changes = (proto_changes) {20, true, 2, t, 4, e};
	if (write_msg(dir, "changes_page", &m) != 0)
		return -1;
	m.u.changes = (proto_changes) {20, false, 0, NULL, 0, NULL};
	return write_msg(dir, "changes_empty", &m);
}

/* Hand-made: an ERROR with an unknown nested key, and a float32 value. */
static int
write_raw(const char *dir)
{
	static const unsigned char unknown_key[] = {0x93, 0x01, 0x07, 0x84,
	    0xa4, 'c', 'o', 'd', 'e', 0x07, 0xa7, 'm', 'e', 's', 's', 'a', 'g',
	    'e', 0xa0, 0xa5, 'r', 'e', 't', 'r', 'y', 0xc3, 0xa3, 'n', 'e',
	    'w', 0x92, 0x81, 0xa1, 'x', 0xd4, 0x01, 0x02, 0x90};
	static const unsigned char float32[] = {0x93, 0x01, 0x03, 0x88, 0xa6,
	    'b', 'r', 'a', 'n', 'c', 'h', 0xa1, 'b', 0xa3, 'k', 'e', 'y', 0xa1,
	    'k', 0xa6, 'l', 'o', 'g', '_', 'i', 'd', 0xa1, 'l', 0xac, 'q', 'u',
	    'e', 'u', 'e', '_', 'e', 'v', 'e', 'n', 't', 's', 0x00, 0xab, 'q',
	    'u', 'e', 'u', 'e', '_', 'b', 'y', 't', 'e', 's', 0x00, 0xac, 'o',
	    'l', 'd', 'e', 's', 't', '_', 'a', 'g', 'e', '_', 's', 0x00, 0xa6,
	    't', 'a', 'b', 'l', 'e', 's', 0x91, 0x93, 0xa1, 't', 0x92, 0xa1,
	    'a', 0xa1, 'b', 0x01, 0xa6, 'e', 'v', 'e', 'n', 't', 's', 0x91,
	    0x95, 0x01, 0x00, 0x00, 0x01, 0x92, 0x01, 0xca, 0x3f, 0xc0, 0x00,
	    0x00};

	if (write_file(
	        dir, "error_unknown_key", unknown_key, sizeof(unknown_key))
	    != 0)
		return -1;
	return write_file(dir, "push_float32", float32, sizeof(float32));
}

/* A well-formed header (fuzz_hub_request stops short of authentication). */
static const proto_agent_hdr hub_hdr
    = {"b17", "k3y", "00112233445566778899aabbccddeeff", 1, 120, 2, NULL};

#define I(x)                                                                  \
	{                                                                     \
		PROTO_INT, 0,                                                 \
		{                                                             \
			.i = (x)                                              \
		}                                                             \
	}
#define S(x)                                                                  \
	{                                                                     \
		PROTO_STR, sizeof(x) - 1,                                     \
		{                                                             \
			.s = (x)                                              \
		}                                                             \
	}
#define NIL                                                                   \
	{                                                                     \
		PROTO_NIL, 0,                                                 \
		{                                                             \
			.i = 0                                                \
		}                                                             \
	}

/*
 * Requests for fuzz_hub_request's allow-list (see its header comment):
 * sales of every up table, with the sync flag, a conflict column, a
 * delete, a NONE; pushes the hub must reject (down table, unknown table
 * and column, branch_id sent, wrong key columns, NUL in a str, seqs not
 * increasing); a wrong key, a bad log_id; HELLO and PULLs.
 */
static int
write_hub(const char *dir)
{
	static const char *tx[] = {"id", "store_id", "total_cost",
	    "payment_type", "created_at", "tax", "is_synced"};
	static const char *pay[]
	    = {"transaction_id", "line_no", "method", "amount", "is_synced"};
	static const char *item[]
	    = {"id", "transaction_id", "qty", "note", "updated_at"};
	static const char *prod[] = {"id", "name", "price"};
	static const char *bad0[] = {"id", "branch_id"};
	static const char *bad1[] = {"id", "nope"};
	static const char *bad2[] = {"transaction_id", "method"};
	proto_table t[] = {{"transactions", 7, tx, 1}, {"payments", 5, pay, 2},
	    {"transaction_items", 5, item, 1}, {"products", 3, prod, 1},
	    {"transactions", 2, bad0, 1}, {"transactions", 2, bad1, 1},
	    {"payments", 2, bad2, 1}, {"nosuch", 2, bad1, 1}};
	proto_value vtx[] = {I(7), I(3), I(2500), S("cash"),
	    S("2026-01-02 10:00:00+00"), {PROTO_FLOAT, 0, {.f = 0.19}}, I(0)};
	proto_value vpay[] = {I(7), I(1), S("card\"{},"), I(2500), I(1)};
	proto_value vitem[] = {I(70), I(7), I(2),
	    {PROTO_BIN, 3, {.p = (const uint8_t *) "\x00\xff\\"}},
	    S("2026-01-02 10:00:01+00")};
	proto_value vprod[] = {I(1), S("tea"), I(120)};
	proto_value vbad[] = {I(1), S("a\0b")};
	proto_value vnul[] = {I(7), I(3), I(1), S("a\0b"), NIL, NIL, I(0)};
	proto_event ok[] = {{101, -4417, 0, PROTO_OP_UPSERT, 7, vtx, false, 0},
	    {102, 913, 1, PROTO_OP_UPSERT, 5, vpay, false, 0},
	    {103, 55, 2, PROTO_OP_UPSERT, 5, vitem, false, 0},
	    {104, 56, 1, PROTO_OP_DELETE, 2, vpay, false, 0},
	    {105, -12, 0, PROTO_OP_NONE, 1, vtx, false, 0},
	    {106, 7, 0, PROTO_OP_UPSERT, 7, vtx, false, 0}};
	proto_event rej[] = {{201, 1, 3, PROTO_OP_UPSERT, 3, vprod, false, 0},
	    {202, 2, 4, PROTO_OP_UPSERT, 2, vbad, false, 0},
	    {203, 3, 5, PROTO_OP_UPSERT, 2, vbad, false, 0},
	    {204, 4, 6, PROTO_OP_UPSERT, 2, vbad, false, 0},
	    {205, 5, 7, PROTO_OP_DELETE, 1, vbad, false, 0},
	    {206, 6, 0, PROTO_OP_UPSERT, 7, vnul, false, 0}};
	proto_event order[] = {{5, 0, 0, PROTO_OP_UPSERT, 7, vtx, false, 0},
	    {5, 0, 0, PROTO_OP_DELETE, 1, vtx, false, 0}};
	proto_msg m = {.type = PROTO_PUSH};

	m.u.push = (proto_push) {hub_hdr, 8, t, 6, ok};
	if (write_msg(dir, "push_ok", &m) != 0)
		return -1;
	m.u.push = (proto_push) {hub_hdr, 8, t, 6, rej};
	if (write_msg(dir, "push_rejects", &m) != 0)
		return -1;
	m.u.push = (proto_push) {hub_hdr, 8, t, 2, order};
	if (write_msg(dir, "push_order", &m) != 0)
		return -1;
	m.u.push = (proto_push) {hub_hdr, 8, t, 2, ok};
	m.u.push.hdr.key = "wrong";
	if (write_msg(dir, "push_badkey", &m) != 0)
		return -1;
	m.u.push.hdr = hub_hdr;
	m.u.push.hdr.log_id = "";
	if (write_msg(dir, "push_nolog", &m) != 0)
		return -1;
	m.type = PROTO_HELLO;
	m.u.hello = (proto_hello) {hub_hdr, 106, "0.1.0"};
	if (write_msg(dir, "hello_b17", &m) != 0)
		return -1;
	m.u.hello.hdr.till = "pc-1";
	if (write_msg(dir, "hello_b17_till", &m) != 0)
		return -1;
	m.type = PROTO_PULL;
	m.u.pull = (proto_pull) {hub_hdr, 17, "", 5000, 4194304};
	if (write_msg(dir, "pull_b17", &m) != 0)
		return -1;
	m.u.pull = (proto_pull) {hub_hdr, 0, "products", -1, 0};
	return write_msg(dir, "pull_b17_reload", &m);
}

/*
 * Pages for fuzz_changes_apply's POS file (deploy/pos/retail.sql): every
 * down table, a column the POS lacks, an up table (skipped), a key that
 * differs from the local one, a NOT NULL column left NULL.
 */
static int
write_changes(const char *dir)
{
	static const char *prod[]
	    = {"id", "name", "barcode", "price", "is_active", "supplier"};
	static const char *bp[] = {"product_id", "price"};
	static const char *sa[] = {"product_id", "qty"};
	static const char *tx[] = {"id", "total_cost"};
	static const char *badkey[] = {"name", "id", "price"};
	proto_table t[] = {{"products", 6, prod, 1},
	    {"branch_prices", 2, bp, 1}, {"stock_allocations", 2, sa, 1},
	    {"transactions", 2, tx, 1}, {"products", 3, badkey, 1}};
	proto_value vp[] = {I(42), S("apple"), NIL, I(1999), I(1), S("acme")};
	proto_value vnull[] = {I(43), NIL, NIL, NIL, I(1), NIL};
	proto_value vbp[] = {I(42), I(1890)};
	proto_value vsa[] = {I(42), I(12)};
	proto_value vtx[] = {I(1), I(100)};
	proto_value vbk[] = {S("apple"), I(42), I(1)};
	proto_event ok[] = {{18, 0, 0, PROTO_OP_UPSERT, 6, vp, false, 0},
	    {19, 0, 1, PROTO_OP_UPSERT, 2, vbp, false, 0},
	    {20, 0, 2, PROTO_OP_UPSERT, 2, vsa, false, 0},
	    {21, 0, 3, PROTO_OP_UPSERT, 2, vtx, false, 0},
	    {23, 0, 1, PROTO_OP_DELETE, 1, vbp, false, 0},
	    {24, 0, 0, PROTO_OP_DELETE, 1, vp, false, 0}};
	proto_event bad[] = {{30, 0, 4, PROTO_OP_UPSERT, 3, vbk, false, 0}};
	proto_event nul[] = {{31, 0, 0, PROTO_OP_UPSERT, 6, vnull, false, 0}};
	proto_msg m = {.type = PROTO_CHANGES};

	m.u.changes = (proto_changes) {24, true, 5, t, 6, ok};
	if (write_msg(dir, "changes_retail", &m) != 0)
		return -1;
	m.u.changes = (proto_changes) {29, false, 5, t, 4, ok};
	if (write_msg(dir, "changes_retail_last", &m) != 0)
		return -1;
	m.u.changes = (proto_changes) {30, false, 5, t, 1, bad};
	if (write_msg(dir, "changes_badkey", &m) != 0)
		return -1;
	m.u.changes = (proto_changes) {31, false, 5, t, 1, nul};
	return write_msg(dir, "changes_notnull", &m);
}

/* URIs of the operator listener, valid and not. */
static int
write_queries(const char *dir)
{
	static const char *const uris[] = {"/api/status?branch=b17",
	    "/api/history?branch=b%31%37&x=1",
	    "/api/rejects?branch=&branch=b2", "/metrics?a+b=c", "/?x=%2",
	    "/api/conflicts?branch=b%00", "/api/status?=&&branch",
	    "/api/status", "/?branch=%7f", "/api/status?branch=a+b%2Bc%25"};
	char name[16];

	for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
		snprintf(name, sizeof name, "q%zu", i);
		if (write_file(dir, name, uris[i], strlen(uris[i])) != 0)
			return -1;
	}
	return 0;
}

static int
write_messages(const char *dir)
{
	return write_pushes(dir) != 0 || write_others(dir) != 0
	        || write_downstream(dir) != 0 || write_raw(dir) != 0
	        || write_nonce(dir) != 0
	    ? -1
	    : 0;
}

int
main(int argc, char **argv)
{
	const char *target = argc == 3 ? argv[1] : "msg_decode";
	const char *dir = argv[argc - 1];
	int rc;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: make_corpus [TARGET] DIR\n");
		return 1;
	}
	hash_names = argc == 3;
	if (!strcmp(target, "msg_decode") || !strcmp(target, "msg_roundtrip"))
		rc = write_messages(dir);
	else if (!strcmp(target, "hub_request"))
		rc = write_messages(dir) != 0 ? -1 : write_hub(dir);
	else if (!strcmp(target, "changes_apply"))
		rc = write_downstream(dir) != 0 ? -1 : write_changes(dir);
	else if (!strcmp(target, "http_query"))
		rc = write_queries(dir);
	else {
		fprintf(
		    stderr, "make_corpus: unknown target \"%s\"\n", target);
		return 1;
	}
	return rc != 0 ? 1 : 0;
}
