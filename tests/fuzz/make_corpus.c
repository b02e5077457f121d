/*
 * make_corpus.c: writes the seed inputs of corpus/msg_decode: one valid
 * encoding of each message type plus a few variants (composite keys, every
 * value type, an unknown key, a float32, an empty CHANGES page). Run:
 * make_corpus DIR.
 */
#include <stdio.h>
#include <string.h>

#include "proto/msg.h"

static const proto_agent_hdr hdr
    = {"b17", "k3y", "0123456789abcdef0123456789abcdef", 3, 400, 5};

static int
write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n
	    || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
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
	proto_event e[] = {{1, 99, 0, PROTO_OP_UPSERT, 6, v0},
	    {2, -3, 1, PROTO_OP_UPSERT, 3, v1},
	    {3, 4, 1, PROTO_OP_DELETE, 2, v1},
	    {4, 5, 0, PROTO_OP_NONE, 1, v0}};
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
	proto_event e[] = {{7, 0, 0, PROTO_OP_UPSERT, 5, v0},
	    {8, 0, 1, PROTO_OP_UPSERT, 3, v1},
	    {12, 0, 1, PROTO_OP_DELETE, 2, v1},
	    {13, 0, 0, PROTO_OP_DELETE, 1, v0}};
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

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 1;
	}
	if (write_pushes(argv[1]) != 0 || write_others(argv[1]) != 0
	    || write_downstream(argv[1]) != 0 || write_raw(argv[1]) != 0)
		return 1;
	return 0;
}
