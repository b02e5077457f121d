/*
 * msg_test.c: tests of proto/msg.c: every message type survives a round
 * trip, and every malformed input we can think of (truncated, mistyped,
 * oversized, too deep, inconsistent) is refused without a crash and
 * without an allocation larger than the input justifies.
 */
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../proto/proto_int.h"
#include "testutil.h"

static char err[512];

/* ---- sample messages ------------------------------------------------- */

static const proto_agent_hdr sample_hdr
    = {"b17", "k3y", "0123456789abcdef0123456789abcdef", 12, 3456, 78, NULL};

static void
sample_hello(proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_HELLO;
	m->u.hello.hdr = sample_hdr;
	m->u.hello.high_seq = INT64_MAX;
	m->u.hello.version = "0.1.0";
}

static int64_t retry_seqs[] = {1, 2, 300, INT64_MAX};
static int64_t discard_seqs[] = {-7, 65536};

static void
sample_welcome(proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_WELCOME;
	m->u.welcome = (proto_welcome) {41, INT64_MIN, "hub 0.1.0", 10000,
	    1 << 24, 4, retry_seqs, 2, discard_seqs};
}

/* Both lists empty, given as NULL. */
static void
sample_welcome_empty(proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_WELCOME;
	m->u.welcome = (proto_welcome) {0, 0, "hub", 1, 1, 0, NULL, 0, NULL};
}

static const char *cols0[] = {"id", "total", "note", "blob", "ratio", "flag"};
static const char *cols1[] = {"transaction_id", "line_no", "method", "amount"};
static proto_table tables[] = {
    {"transactions", 6, cols0, 1},
    {"payments", 4, cols1, 2},
};
static char long_str[301];
static const uint8_t some_bin[] = {0, 1, 2, 255};

#define VI(x)                                                                 \
	{                                                                     \
		PROTO_INT, 0,                                                 \
		{                                                             \
			.i = (x)                                              \
		}                                                             \
	}
#define VS(str, n)                                                            \
	{                                                                     \
		PROTO_STR, (n),                                               \
		{                                                             \
			.s = (str)                                            \
		}                                                             \
	}
#define VB(ptr, n)                                                            \
	{                                                                     \
		PROTO_BIN, (n),                                               \
		{                                                             \
			.p = (ptr)                                            \
		}                                                             \
	}
#define VF(x)                                                                 \
	{                                                                     \
		PROTO_FLOAT, 0,                                               \
		{                                                             \
			.f = (x)                                              \
		}                                                             \
	}
#define VBOOL(x)                                                              \
	{                                                                     \
		PROTO_BOOL, 0,                                                \
		{                                                             \
			.b = (x)                                              \
		}                                                             \
	}
#define VNIL                                                                  \
	{                                                                     \
		PROTO_NIL, 0,                                                 \
		{                                                             \
			.i = 0                                                \
		}                                                             \
	}

static proto_value vals0[] = {
    VI(1), VI(INT64_MAX), VS("a\0b", 3), VB(NULL, 0), VF(-0.5), VBOOL(true)};
static proto_value vals1[] = {VI(INT64_MIN), VI(-33), VS("", 0), VNIL};
static proto_value vals2[] = {VI(128), VI(65536)};
static proto_value vals3[] = {VI(1)};
static proto_value vals4[] = {VI(-1), VI(0), VS(long_str, 300),
    VB(some_bin, 4), VF(1e300), VBOOL(false)};
static proto_event events[] = {
    {1, INT64_MIN, 0, PROTO_OP_UPSERT, 6, vals0, false, 0},
    {2, -1, 1, PROTO_OP_UPSERT, 4, vals1, true, 0},
    {3, 42, 1, PROTO_OP_DELETE, 2, vals2, false, 0},
    {4, 7, 0, PROTO_OP_NONE, 1, vals3, false, 0},
    {5, INT64_MAX, 0, PROTO_OP_UPSERT, 6, vals4, false, 0},
};

static void
sample_push(proto_msg *m)
{
	memset(long_str, 'x', 300);
	memset(m, 0, sizeof(*m));
	m->type = PROTO_PUSH;
	m->u.push.hdr = sample_hdr;
	m->u.push.ntables = 2;
	m->u.push.tables = tables;
	m->u.push.nevents = 5;
	m->u.push.events = events;
}

static proto_outcome outcomes[] = {
    {3, PROTO_OUT_REJECTED, "duplicate key value violates \"pk\" (23505)"},
    {4, PROTO_OUT_DUPLICATE, ""},
};

static void
sample_ack(proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_ACK;
	m->u.ack
	    = (proto_ack) {sample_hdr.log_id, 5, INT64_MAX, 3, 2, 2, outcomes};
}

static void
sample_error(proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_ERROR;
	m->u.error
	    = (proto_error) {PROTO_EAUTH, "authentication failed", false};
}

static void
sample_pull(proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_PULL;
	m->u.pull = (proto_pull) {
	    sample_hdr, 987654321, "products", 5000, 4 * 1024 * 1024};
}

static void
sample_pull_all(proto_msg *m)
{
	sample_pull(m);
	m->u.pull.cursor = 0;
	m->u.pull.table = "";
}

/* Changes of two tables, upserts and deletes, ids with gaps; the cursor is
 * ahead of the last id (the hub skipped a table it no longer sends). */
static proto_event changes[] = {
    {10, 0, 0, PROTO_OP_UPSERT, 6, vals0, false, 0},
    {11, 0, 1, PROTO_OP_DELETE, 2, vals2, false, 0},
    {15, 0, 1, PROTO_OP_UPSERT, 4, vals1, false, 0},
    {16, 0, 0, PROTO_OP_DELETE, 1, vals3, false, 0},
    {INT64_MAX - 1, 0, 0, PROTO_OP_UPSERT, 6, vals4, false, 0},
};

static void
sample_changes(proto_msg *m)
{
	memset(long_str, 'x', 300);
	memset(m, 0, sizeof(*m));
	m->type = PROTO_CHANGES;
	m->u.changes
	    = (proto_changes) {INT64_MAX, true, 2, tables, 5, changes};
}

static void
sample_changes_empty(proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_CHANGES;
	m->u.changes = (proto_changes) {12345, false, 0, NULL, 0, NULL};
}

typedef void (*sample_fn)(proto_msg *);
static const sample_fn samples[] = {sample_hello, sample_welcome, sample_push,
    sample_ack, sample_error, sample_pull, sample_pull_all, sample_changes,
    sample_changes_empty, sample_welcome_empty};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

/* encode_sample encodes sample i into b (emptied first); 0 on success. */
static int
encode_sample(size_t i, proto_buf *b)
{
	proto_msg m;

	samples[i](&m);
	proto_buf_reset(b);
	return proto_msg_encode(&m, b, err, sizeof(err)) == PROTO_OK ? 0 : -1;
}

/* decode returns the result of decoding b with limits lim (or NULL). */
static proto_err
decode(const uint8_t *p, size_t n, const proto_limits *lim)
{
	proto_msg *m = NULL;
	proto_err rv;

	err[0] = '\0';
	rv = proto_msg_decode(p, n, lim, &m, err, sizeof(err));
	if ((rv == PROTO_OK) != (m != NULL) || (rv != PROTO_OK && !err[0]))
		return PROTO_ERR_COUNT; /* contract broken */
	proto_msg_free(m);
	return rv;
}

/* ---- comparisons ----------------------------------------------------- */

static bool
seqs_eq(const int64_t *a, uint32_t na, const int64_t *b, uint32_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

static bool
hdr_eq(const proto_agent_hdr *a, const proto_agent_hdr *b)
{
	return strcmp(a->branch, b->branch) == 0 && strcmp(a->key, b->key) == 0
	    && strcmp(a->log_id, b->log_id) == 0
	    && a->queue_events == b->queue_events
	    && a->queue_bytes == b->queue_bytes
	    && a->oldest_age_s == b->oldest_age_s
	    && (a->till == NULL
	            ? b->till == NULL
	            : b->till != NULL && !strcmp(a->till, b->till));
}

static bool
table_eq(const proto_table *a, const proto_table *b)
{
	uint32_t i;

	if (strcmp(a->name, b->name) != 0 || a->ncols != b->ncols
	    || a->nkey != b->nkey)
		return false;
	for (i = 0; i < a->ncols; i++)
		if (strcmp(a->cols[i], b->cols[i]) != 0)
			return false;
	return true;
}

static bool
event_eq(const proto_event *a, const proto_event *b)
{
	uint32_t i;

	if (a->seq != b->seq || a->tag != b->tag || a->table != b->table
	    || a->op != b->op || a->ahead != b->ahead || a->nvals != b->nvals)
		return false;
	for (i = 0; i < a->nvals; i++)
		if (!proto_value_eq(&a->vals[i], &b->vals[i]))
			return false;
	return true;
}

static bool
push_eq(const proto_push *a, const proto_push *b)
{
	uint32_t i;

	if (!hdr_eq(&a->hdr, &b->hdr) || a->ntables != b->ntables
	    || a->nevents != b->nevents)
		return false;
	for (i = 0; i < a->ntables; i++)
		if (!table_eq(&a->tables[i], &b->tables[i]))
			return false;
	for (i = 0; i < a->nevents; i++)
		if (!event_eq(&a->events[i], &b->events[i]))
			return false;
	return true;
}

static bool
ack_eq(const proto_ack *a, const proto_ack *b)
{
	uint32_t i;

	if (strcmp(a->log_id, b->log_id) != 0 || a->watermark != b->watermark
	    || a->tag != b->tag || a->applied != b->applied
	    || a->duplicates != b->duplicates || a->noutcomes != b->noutcomes)
		return false;
	for (i = 0; i < a->noutcomes; i++)
		if (a->outcomes[i].seq != b->outcomes[i].seq
		    || a->outcomes[i].code != b->outcomes[i].code
		    || strcmp(a->outcomes[i].reason, b->outcomes[i].reason)
		        != 0)
			return false;
	return true;
}

static bool
changes_eq(const proto_changes *a, const proto_changes *b)
{
	uint32_t i;

	if (a->cursor != b->cursor || a->more != b->more
	    || a->ntables != b->ntables || a->nchanges != b->nchanges)
		return false;
	for (i = 0; i < a->ntables; i++)
		if (!table_eq(&a->tables[i], &b->tables[i]))
			return false;
	for (i = 0; i < a->nchanges; i++)
		if (!event_eq(&a->changes[i], &b->changes[i]))
			return false;
	return true;
}

static bool
msg_eq(const proto_msg *a, const proto_msg *b)
{
	const proto_welcome *wa = &a->u.welcome, *wb = &b->u.welcome;

	if (a->type != b->type)
		return false;
	switch (a->type) {
	case PROTO_HELLO:
		return hdr_eq(&a->u.hello.hdr, &b->u.hello.hdr)
		    && a->u.hello.high_seq == b->u.hello.high_seq
		    && strcmp(a->u.hello.version, b->u.hello.version) == 0;
	case PROTO_WELCOME:
		return wa->watermark == wb->watermark && wa->tag == wb->tag
		    && strcmp(wa->version, wb->version) == 0
		    && wa->max_events == wb->max_events
		    && wa->max_bytes == wb->max_bytes
		    && seqs_eq(wa->retry, wa->nretry, wb->retry, wb->nretry)
		    && seqs_eq(
		        wa->discard, wa->ndiscard, wb->discard, wb->ndiscard);
	case PROTO_PUSH:
		return push_eq(&a->u.push, &b->u.push);
	case PROTO_ACK:
		return ack_eq(&a->u.ack, &b->u.ack);
	case PROTO_PULL:
		return hdr_eq(&a->u.pull.hdr, &b->u.pull.hdr)
		    && a->u.pull.cursor == b->u.pull.cursor
		    && strcmp(a->u.pull.table, b->u.pull.table) == 0
		    && a->u.pull.max_rows == b->u.pull.max_rows
		    && a->u.pull.max_bytes == b->u.pull.max_bytes;
	case PROTO_CHANGES:
		return changes_eq(&a->u.changes, &b->u.changes);
	case PROTO_ERROR:
		return a->u.error.code == b->u.error.code
		    && a->u.error.retry == b->u.error.retry
		    && strcmp(a->u.error.message, b->u.error.message) == 0;
	default:
		return false;
	}
}

/* ---- round trips ----------------------------------------------------- */

static void
round_trip(sample_fn make)
{
	proto_msg m, *d = NULL, *d2 = NULL;
	proto_buf b, b2;

	make(&m);
	proto_buf_init(&b);
	proto_buf_init(&b2);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	CHECK_OK(proto_msg_decode(b.data, b.len, NULL, &d, err, sizeof(err)));
	CHECK(msg_eq(&m, d));
	/* A decoded message encodes to the same bytes. */
	CHECK_OK(proto_msg_encode(d, &b2, err, sizeof(err)));
	CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
	CHECK_OK(
	    proto_msg_decode(b2.data, b2.len, NULL, &d2, err, sizeof(err)));
	CHECK(msg_eq(d, d2));
	proto_msg_free(d);
	proto_msg_free(d2);
	proto_buf_fini(&b);
	proto_buf_fini(&b2);
}

static void
hello_round_trip_differs(void)
{
	round_trip(sample_hello);
}

/* A till's agent names its till; an older hub skips the key. */
static void
sample_hello_till(proto_msg *m)
{
	sample_hello(m);
	m->u.hello.hdr.till = "pc-2";
}

static void
sample_pull_till(proto_msg *m)
{
	sample_pull(m);
	m->u.pull.hdr.till = "1";
}

static void
till_round_trip_differs(void)
{
	proto_msg m, *d = NULL;
	proto_buf b;

	round_trip(sample_hello_till);
	round_trip(sample_pull_till);
	/* Without a till the key is left out: the bytes of an older agent. */
	sample_hello(&m);
	proto_buf_init(&b);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	CHECK(test_memmem(b.data, b.len, "till", 4) == NULL);
	CHECK_OK(proto_msg_decode(b.data, b.len, NULL, &d, err, sizeof(err)));
	CHECK(d->u.hello.hdr.till == NULL);
	proto_msg_free(d);
	/* A till that is not a name is refused both ways. */
	sample_hello(&m);
	m.u.hello.hdr.till = "pc\x01";
	proto_buf_reset(&b);
	CHECK_ERR(proto_msg_encode(&m, &b, err, sizeof(err)), PROTO_EINVAL);
	/* Names are bounded: an agent version of 257 bytes is refused, one of
	 * 256 goes through (the decoder runs the same check). */
	{
		static char v[PROTO_NAME_MAX + 2];
		memset(v, 'v', PROTO_NAME_MAX + 1);
		sample_hello(&m);
		m.u.hello.version = v;
		proto_buf_reset(&b);
		CHECK_ERR(
		    proto_msg_encode(&m, &b, err, sizeof(err)), PROTO_EINVAL);
		CHECK_STR(err, "at most 256");
		v[PROTO_NAME_MAX] = '\0';
		proto_buf_reset(&b);
		CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
		CHECK_OK(proto_msg_decode(
		    b.data, b.len, NULL, &d, err, sizeof(err)));
		CHECK(strlen(d->u.hello.version) == PROTO_NAME_MAX);
		proto_msg_free(d);
	}
	proto_buf_fini(&b);
}

static void
welcome_round_trip_differs(void)
{
	proto_msg m, *d = NULL;
	proto_buf b;

	round_trip(sample_welcome);
	sample_welcome(&m);
	proto_buf_init(&b);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	CHECK_OK(proto_msg_decode(b.data, b.len, NULL, &d, err, sizeof(err)));
	CHECK(d->u.welcome.nretry == 4 && d->u.welcome.ndiscard == 2);
	CHECK(d->u.welcome.retry[3] == INT64_MAX
	    && d->u.welcome.discard[0] == -7);
	proto_msg_free(d);
	proto_buf_fini(&b);
}

static void
push_round_trip_differs(void)
{
	round_trip(sample_push);
}

static void
ack_round_trip_differs(void)
{
	round_trip(sample_ack);
}

static void
error_round_trip_differs(void)
{
	round_trip(sample_error);
}

static void
pull_round_trip_differs(void)
{
	round_trip(sample_pull);
	round_trip(sample_pull_all);
}

static void
changes_round_trip_differs(void)
{
	proto_msg m, *d = NULL;
	proto_buf b;

	round_trip(sample_changes);
	round_trip(sample_changes_empty);
	/* The decoded page: tag 0, ops and values as sent, empty page. */
	sample_changes(&m);
	proto_buf_init(&b);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	CHECK_OK(proto_msg_decode(b.data, b.len, NULL, &d, err, sizeof(err)));
	CHECK(d->type == PROTO_CHANGES && d->u.changes.more);
	CHECK(d->u.changes.changes[1].op == PROTO_OP_DELETE
	    && d->u.changes.changes[1].nvals == 2
	    && d->u.changes.changes[1].table == 1);
	CHECK(d->u.changes.changes[0].tag == 0
	    && d->u.changes.changes[4].seq == INT64_MAX - 1);
	CHECK(d->u.changes.changes[4].vals[2].len == 300);
	proto_msg_free(d);
	d = NULL;
	sample_changes_empty(&m);
	proto_buf_reset(&b);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	CHECK_OK(proto_msg_decode(b.data, b.len, NULL, &d, err, sizeof(err)));
	CHECK(!d->u.changes.more && d->u.changes.cursor == 12345);
	CHECK(d->u.changes.nchanges == 0 && d->u.changes.ntables == 0);
	proto_msg_free(d);
	proto_buf_fini(&b);
}

static void
changes_tag_not_sent(void)
{
	proto_msg m, *d = NULL;
	proto_event e[1] = {{7, 99, 0, PROTO_OP_DELETE, 1, vals3, false, 0}};
	proto_buf b, b2;

	/* A tag set by the caller is not on the wire: same bytes as 0. */
	sample_changes(&m);
	m.u.changes = (proto_changes) {7, false, 1, tables, 1, e};
	proto_buf_init(&b);
	proto_buf_init(&b2);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	e[0].tag = 0;
	CHECK_OK(proto_msg_encode(&m, &b2, err, sizeof(err)));
	CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
	CHECK_OK(proto_msg_decode(b.data, b.len, NULL, &d, err, sizeof(err)));
	CHECK(d->u.changes.changes[0].tag == 0);
	proto_msg_free(d);
	proto_buf_fini(&b);
	proto_buf_fini(&b2);
}

static void
push_values_lose_detail(void)
{
	proto_msg m, *d = NULL;
	const proto_value *v;
	proto_buf b;

	sample_push(&m);
	proto_buf_init(&b);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	CHECK_OK(proto_msg_decode(b.data, b.len, NULL, &d, err, sizeof(err)));
	proto_buf_fini(&b);
	v = d->u.push.events[0].vals;
	CHECK(v[2].type == PROTO_STR && v[2].len == 3);
	CHECK(memcmp(v[2].u.s, "a\0b", 4) == 0); /* NUL inside, NUL after */
	CHECK(v[3].type == PROTO_BIN && v[3].len == 0 && v[3].u.p != NULL);
	CHECK(v[1].u.i == INT64_MAX
	    && d->u.push.events[1].vals[0].u.i == INT64_MIN);
	CHECK(d->u.push.events[0].tag == INT64_MIN);
	CHECK(d->u.push.events[4].vals[2].len == 300);
	CHECK(d->u.push.tables[1].nkey == 2);
	CHECK(d->arena != NULL);
	proto_msg_free(d);
	proto_msg_free(NULL);
}

static void
float_specials_change(void)
{
	proto_value nan = VF(NAN), inf = VF(-INFINITY), z = VF(0.0),
	            nz = VF(-0.0);
	proto_value s1 = VS("ab", 2), s2 = VS("ab", 2), b1 = VB(NULL, 0),
	            s0 = VS("", 0);

	CHECK(proto_value_eq(&nan, &nan));
	CHECK(proto_value_eq(&inf, &inf));
	CHECK(!proto_value_eq(&z, &nz));
	CHECK(proto_value_eq(&s1, &s2));
	CHECK(!proto_value_eq(&s0, &b1)); /* empty str is not empty bin */
	CHECK(strcmp(proto_type_name(PROTO_PUSH), "push") == 0);
	CHECK(strcmp(proto_type_name(PROTO_PULL), "pull") == 0);
	CHECK(strcmp(proto_type_name(PROTO_CHANGES), "changes") == 0);
	CHECK(strcmp(proto_type_name(99), "unknown") == 0);
	CHECK(strcmp(proto_type_name(0), "unknown") == 0);
}

static void
limits_default_wrong(void)
{
	proto_limits l;

	proto_limits_default(&l);
	CHECK(l.max_msg_bytes == 16 * 1024 * 1024 && l.max_events == 10000);
	CHECK(l.max_tables == 64 && l.max_columns == 256);
	CHECK(l.max_value_bytes == 1024 * 1024 && l.max_outcomes == 10000);
	CHECK(l.max_depth == 8);
}

/* ---- truncation and wrong types -------------------------------------- */

static void
truncated_at_every_length(void)
{
	proto_buf b;
	size_t i, n;

	proto_buf_init(&b);
	for (i = 0; i < NSAMPLES; i++) {
		CHECK(encode_sample(i, &b) == 0);
		for (n = 0; n < b.len; n++) {
			/* A copy of exactly n bytes lets ASan see overreads.
			 */
			uint8_t *p = malloc(n ? n : 1);
			proto_err rv;
			CHECK(p != NULL);
			memcpy(p, b.data, n);
			rv = decode(p, n, NULL);
			free(p);
			CHECK(rv == PROTO_EPROTO);
		}
		CHECK_OK(decode(b.data, b.len, NULL));
	}
	proto_buf_fini(&b);
}

/* A walk over an encoded message in pre-order that copies it to out,
 * replacing the value numbered target by rep. */
typedef struct {
	proto_buf *out;     /* the copy */
	size_t target;      /* pre-order number of the value to replace */
	size_t idx;         /* next pre-order number */
	const uint8_t *rep; /* replacement bytes */
	size_t nrep;        /* their length */
	proto_mtype orig;   /* kind of the replaced value */
	bool row;           /* the replaced value is a row value */
	bool events;        /* inside the body key "events" or "changes" */
} walk;

static void walk_value(proto_cur *c, walk *w, int depth, bool row);

static void
walk_children(proto_cur *c, walk *w, int depth, proto_mtype t)
{
	const uint8_t *start = c->p;
	uint32_t n, j;

	if (t == PROTO_MT_ARRAY)
		proto_cur_array(c, &n);
	else
		proto_cur_map(c, &n);
	proto_buf_append(w->out, start, (size_t) (c->p - start));
	if (t == PROTO_MT_MAP)
		n *= 2;
	for (j = 0; j < n; j++) {
		if (depth == 1 && j % 2 == 0) /* a body key */
			w->events = (c->p[0] == 0xa6
			                && memcmp(c->p + 1, "events", 6) == 0)
			    || (c->p[0] == 0xa7
			        && memcmp(c->p + 1, "changes", 7) == 0);
		walk_value(c, w, depth + 1, w->events && depth == 4);
	}
}

static void
walk_value(proto_cur *c, walk *w, int depth, bool row)
{
	const uint8_t *start = c->p;
	proto_mtype t = proto_cur_peek(c);

	if (w->idx++ == w->target) {
		w->orig = t;
		w->row = row;
		proto_cur_skip(c);
		proto_buf_append(w->out, w->rep, w->nrep);
		return;
	}
	if (t == PROTO_MT_ARRAY || t == PROTO_MT_MAP) {
		walk_children(c, w, depth, t);
		return;
	}
	proto_cur_skip(c);
	proto_buf_append(w->out, start, (size_t) (c->p - start));
}

/* replace copies in to out with value number target replaced; returns
 * false once target is past the last value. */
static bool
replace(const proto_buf *in, size_t target, const uint8_t *rep, size_t nrep,
    proto_buf *out, walk *w)
{
	proto_limits l;
	proto_cur c;

	proto_limits_default(&l);
	proto_cur_init(&c, in->data, in->len, &l, NULL, 0);
	memset(w, 0, sizeof(*w));
	*w = (walk) {out, target, 0, rep, nrep, PROTO_MT_END, false, false};
	proto_buf_reset(out);
	walk_value(&c, w, 0, false);
	return target < w->idx;
}

static const struct {
	uint8_t b[5];     /* a value of that kind */
	size_t n;         /* its length */
	proto_mtype kind; /* its kind */
} reps[] = {
    {{0xc0}, 1, PROTO_MT_NIL},
    {{0xc3}, 1, PROTO_MT_BOOL},
    {{0x05}, 1, PROTO_MT_INT},
    {{0xca, 0, 0, 0, 0}, 5, PROTO_MT_FLOAT},
    {{0xa1, 'x'}, 2, PROTO_MT_STR},
    {{0xc4, 0x01, 0x00}, 3, PROTO_MT_BIN},
    {{0x90}, 1, PROTO_MT_ARRAY},
    {{0x80}, 1, PROTO_MT_MAP},
    {{0xd4, 0x01, 0x00}, 3, PROTO_MT_EXT},
};

static bool
scalar(proto_mtype t)
{
	return t <= PROTO_MT_BIN;
}

/* wrong_types_in checks every value of sample i replaced by every other
 * kind; row values may be any scalar. Returns the number of decodes. */
static int
wrong_types_in(size_t i, proto_buf *b, proto_buf *mut)
{
	size_t target, r;
	int n = 0;
	walk w;

	if (encode_sample(i, b) != 0)
		return -1;
	for (target = 0;; target++) {
		for (r = 0; r < sizeof(reps) / sizeof(reps[0]); r++) {
			if (!replace(b, target, reps[r].b, reps[r].n, mut, &w))
				return n;
			if (w.orig == reps[r].kind
			    || (w.row && scalar(reps[r].kind)))
				continue;
			n++;
			if (decode(mut->data, mut->len, NULL)
			    != PROTO_EPROTO) {
				fprintf(stderr,
				    "sample %zu value %zu as %s: "
				    "accepted or wrong code (%s)\n",
				    i, target, proto_mtype_name(reps[r].kind),
				    err);
				return -1;
			}
		}
	}
}

static void
field_of_wrong_type(void)
{
	proto_buf b, mut;
	size_t i;
	int n, total = 0;

	proto_buf_init(&b);
	proto_buf_init(&mut);
	for (i = 0; i < NSAMPLES; i++) {
		n = wrong_types_in(i, &b, &mut);
		CHECK(n > 0);
		total += n;
	}
	CHECK(total > 1000);
	proto_buf_fini(&b);
	proto_buf_fini(&mut);
}

static void
wrong_type_error_text(void)
{
	proto_buf b, mut;
	walk w;
	size_t t;

	proto_buf_init(&b);
	proto_buf_init(&mut);
	CHECK(encode_sample(2, &b) == 0);
	/* Find the first row value and make it a nested array. */
	for (t = 0; replace(&b, t, reps[6].b, 1, &mut, &w) && !w.row; t++)
		;
	CHECK(w.row);
	CHECK_ERR(decode(mut.data, mut.len, NULL), PROTO_EPROTO);
	CHECK_STR(err,
	    "field \"events\": event 0: value 0: expected nil, "
	    "bool, int, float, str or bin, got array");
	/* The body's first value ("branch") as an int. */
	CHECK(
	    replace(&b, 5, reps[2].b, 1, &mut, &w) && w.orig == PROTO_MT_STR);
	CHECK_ERR(decode(mut.data, mut.len, NULL), PROTO_EPROTO);
	CHECK_STR(err, "field \"branch\": expected str, got int");
	proto_buf_fini(&b);
	proto_buf_fini(&mut);
}

/* ---- hand-built pushes ----------------------------------------------- */

/* What build_push writes: one table "t" with ncols columns, nevents
 * events [i + 1, 0, table, op, [nvals ints]], plus optional damage. */
typedef struct {
	int table, op, nvals, nkey, ncols, nevents;
	const char *drop;      /* body key to leave out */
	const char *dup;       /* body key to write twice */
	const uint8_t *extra;  /* raw value of an unknown key "zzz" */
	size_t nextra;         /* its length */
	const uint8_t *rowval; /* raw bytes of the first row value */
	size_t nrowval;        /* their length */
	const char *tname;     /* table name (may hold NUL) */
	size_t ntname;         /* its length */
} push_spec;

static const push_spec good
    = {0, PROTO_OP_UPSERT, 2, 1, 2, 1, NULL, NULL, NULL, 0, NULL, 0, "t", 1};

static int
pack_body_field(
    msgpack_packer *pk, proto_buf *b, const push_spec *s, const char *key)
{
	static const char *colnames[] = {"a", "b", "c", "d"};
	int i, j;

	if (strcmp(key, "tables") == 0) {
		msgpack_pack_array(pk, 1);
		msgpack_pack_array(pk, 3);
		msgpack_pack_str_with_body(pk, s->tname, s->ntname);
		msgpack_pack_array(pk, s->ncols);
		for (i = 0; i < s->ncols; i++)
			msgpack_pack_str_with_body(pk, colnames[i % 4], 1);
		return msgpack_pack_int(pk, s->nkey);
	}
	if (strcmp(key, "events") != 0)
		return key[0] == 'q' || key[0] == 'o'
		    ? msgpack_pack_int(pk, 1)
		    : msgpack_pack_str_with_body(pk, "x", 1);
	msgpack_pack_array(pk, s->nevents);
	for (i = 0; i < s->nevents; i++) {
		msgpack_pack_array(pk, 5);
		msgpack_pack_int(pk, i + 1);
		msgpack_pack_int(pk, 0);
		msgpack_pack_int(pk, s->table);
		msgpack_pack_int(pk, s->op);
		msgpack_pack_array(pk, s->nvals);
		for (j = 0; j < s->nvals; j++) {
			if (j == 0 && s->rowval != NULL)
				proto_buf_append(b, s->rowval, s->nrowval);
			else
				msgpack_pack_int(pk, j);
		}
	}
	return 0;
}

static int
pack_to_buf(void *data, const char *p, size_t n)
{
	return proto_buf_append(data, p, n) == PROTO_OK ? 0 : -1;
}

static void
build_push(proto_buf *b, const push_spec *s)
{
	static const char *keys[] = {"branch", "key", "log_id", "queue_events",
	    "queue_bytes", "oldest_age_s", "tables", "events"};
	msgpack_packer pk;
	size_t i, n = 8;

	proto_buf_reset(b);
	msgpack_packer_init(&pk, b, pack_to_buf);
	n += (s->drop ? -1 : 0) + (s->dup ? 1 : 0) + (s->extra ? 1 : 0);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, PROTO_PUSH);
	msgpack_pack_map(&pk, n);
	if (s->extra != NULL) {
		msgpack_pack_str_with_body(&pk, "zzz", 3);
		proto_buf_append(b, s->extra, s->nextra);
	}
	for (i = 0; i < 8; i++) {
		if (s->drop && strcmp(s->drop, keys[i]) == 0)
			continue;
		msgpack_pack_str_with_body(&pk, keys[i], strlen(keys[i]));
		pack_body_field(&pk, b, s, keys[i]);
		if (s->dup && strcmp(s->dup, keys[i]) == 0) {
			msgpack_pack_str_with_body(
			    &pk, keys[i], strlen(keys[i]));
			pack_body_field(&pk, b, s, keys[i]);
		}
	}
}

/* try_push builds s and returns the decoder's verdict under lim. */
static proto_err
try_push(const push_spec *s, const proto_limits *lim)
{
	proto_buf b;
	proto_err rv;

	proto_buf_init(&b);
	build_push(&b, s);
	rv = decode(b.data, b.len, lim);
	proto_buf_fini(&b);
	return rv;
}

static void
builder_is_wrong(void)
{
	CHECK_OK(try_push(&good, NULL));
}

static void
table_index_out_of_range(void)
{
	push_spec s = good;

	s.table = 1;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(
	    err, "field \"events\": event 0: table index 1 out of range");
	s.table = -1;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
}

static void
value_count_mismatch(void)
{
	push_spec s = good;

	s.nvals = 1; /* upsert needs all 2 columns */
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "1 values for table \"t\", expected 2");
	s.op = PROTO_OP_DELETE;
	CHECK_OK(try_push(&s, NULL));
	s.nvals = 2; /* delete carries only the nkey key columns */
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	s.op = PROTO_OP_NONE;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	s.nvals = 1;
	CHECK_OK(try_push(&s, NULL));
}

static void
nkey_out_of_range(void)
{
	push_spec s = good;

	s.nkey = 0;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "nkey 0 not between 1 and 2");
	s.nkey = 3;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	s.nkey = 2; /* composite key of both columns */
	CHECK_OK(try_push(&s, NULL));
	s.ncols = 0;
	s.nkey = 1;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
}

static void
op_out_of_range(void)
{
	push_spec s = good;

	s.op = 4;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "op 4 not between 0 and 3");
	s.op = -1;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	/* 3, an upsert ahead of its event: all columns, like an upsert. */
	s.op = PROTO_WIRE_UPSERT_AHEAD;
	CHECK_OK(try_push(&s, NULL));
	s.nvals = 1;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "1 values for table \"t\", expected 2");
}

/* The ahead flag is for PUSH upserts: encoding refuses it elsewhere. */
static void
ahead_only_on_push_upserts(void)
{
	proto_table t[1] = {{"t", 2, cols0, 1}};
	proto_value v[2] = {VI(1), VI(2)};
	proto_event e[1] = {{1, 0, 0, PROTO_OP_DELETE, 1, v, true, 0}};
	proto_msg m;
	proto_buf b;

	proto_buf_init(&b);
	sample_push(&m);
	m.u.push.ntables = 1;
	m.u.push.tables = t;
	m.u.push.nevents = 1;
	m.u.push.events = e;
	CHECK_ERR(proto_msg_encode(&m, &b, err, sizeof err), PROTO_EINVAL);
	CHECK_STR(err, "ahead set on op 2 of a event");
	memset(&m, 0, sizeof m);
	sample_changes(&m);
	e[0].op = PROTO_OP_UPSERT;
	e[0].nvals = 2;
	m.u.changes.nchanges = 1;
	m.u.changes.changes = e;
	CHECK_ERR(proto_msg_encode(&m, &b, err, sizeof err), PROTO_EINVAL);
	CHECK_STR(err, "ahead set on op 1 of a change");
	proto_buf_fini(&b);
}

static void
missing_field(void)
{
	static const char *keys[] = {"branch", "key", "log_id", "queue_events",
	    "queue_bytes", "oldest_age_s", "tables", "events"};
	char want[64];
	push_spec s = good;
	size_t i;

	for (i = 0; i < 8; i++) {
		s.drop = keys[i];
		CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
		snprintf(want, sizeof(want), "missing field \"%s\"", keys[i]);
		CHECK_STR(err, want);
	}
}

static void
duplicate_field(void)
{
	push_spec s = good;

	s.dup = "tables";
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "duplicate field \"tables\"");
	s.dup = "branch";
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
}

static void
unknown_key_not_skipped(void)
{
	static const uint8_t extra[] = {0x82, 0xa1, 'x', 0x92, 0xc0, 0xd4,
	    0x01, 0x00, 0x01, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0};
	push_spec s = good;

	s.extra = extra;
	s.nextra = sizeof(extra);
	CHECK_OK(try_push(&s, NULL));
}

static void
unknown_key_nested_deep(void)
{
	enum { DEPTH = 10000 };
	uint8_t *deep = malloc(DEPTH + 1);
	push_spec s = good;
	proto_err rv;

	CHECK(deep != NULL);
	memset(deep, 0x91, DEPTH);
	deep[DEPTH] = 0xc0;
	s.extra = deep;
	s.nextra = DEPTH + 1;
	rv = try_push(&s, NULL);
	s.nextra = 9; /* 8 levels and a nil: within max_depth */
	deep[8] = 0xc0;
	CHECK_ERR(rv, PROTO_ETOOBIG);
	CHECK_OK(try_push(&s, NULL));
	free(deep);
}

static void
row_value_nested(void)
{
	static const uint8_t arr[] = {0x91, 0x01};
	static const uint8_t map[] = {0x81, 0x01, 0x02};
	static const uint8_t ext[] = {0xc7, 0x01, 0x05, 0x00};
	push_spec s = good;

	s.rowval = arr;
	s.nrowval = sizeof(arr);
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	s.rowval = map;
	s.nrowval = sizeof(map);
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	s.rowval = ext;
	s.nrowval = sizeof(ext);
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "got ext");
}

static void
name_with_nul(void)
{
	push_spec s = good;

	s.tname = "t\0u";
	s.ntname = 3;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "table 0: name: str contains a NUL byte");
}

/* Names must be valid UTF-8 without control characters; values need not. */
static void
names_not_utf8(void)
{
	static const char *const bad[] = {
	    "t\xff", "t\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
	push_spec s = good;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		s.tname = bad[i];
		s.ntname = strlen(bad[i]);
		CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
		CHECK_STR(err, "table 0: name: not valid UTF-8");
	}
	s.tname = "t\nu";
	s.ntname = 3;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "control character 0x0a (byte 1) in a name");
	s.tname = "\x7f";
	s.ntname = 1;
	CHECK_ERR(try_push(&s, NULL), PROTO_EPROTO);
	/* Multi-byte UTF-8 is a name like any other. */
	s.tname = "caf\xc3\xa9_\xe2\x82\xac_\xf0\x9f\x9b\x92";
	s.ntname = strlen(s.tname);
	CHECK(try_push(&s, NULL) == PROTO_OK);
}

static void
oversized_string(void)
{
	size_t n = 1024 * 1024 + 1;
	uint8_t *big = malloc(n + 5);
	proto_limits lim = {0};
	push_spec s = good;

	CHECK(big != NULL);
	big[0] = 0xdb; /* str 32 */
	big[1] = (uint8_t) (n >> 24);
	big[2] = (uint8_t) (n >> 16);
	big[3] = (uint8_t) (n >> 8);
	big[4] = (uint8_t) n;
	memset(big + 5, 'y', n);
	s.rowval = big;
	s.nrowval = n + 5;
	CHECK_ERR(try_push(&s, NULL), PROTO_ETOOBIG);
	lim.max_value_bytes = (uint32_t) n;
	CHECK_OK(try_push(&s, &lim));
	lim.max_value_bytes = 1; /* names count too: "branch" is 6 bytes */
	s.rowval = NULL;
	CHECK_ERR(try_push(&s, &lim), PROTO_ETOOBIG);
	free(big);
}

/* ---- hand-built CHANGES ---------------------------------------------- */

/* What build_changes writes: cursor, more = false, one table "t" with
 * ncols columns, nchanges changes [first_id + i * step, table, op,
 * [nvals ints]]; the cursor is the last id (0 if none) plus cursor_delta. */
typedef struct {
	int table, op, nvals, nkey, ncols, nchanges;
	int64_t first_id, step, cursor_delta;
} changes_spec;

static const changes_spec cgood = {0, PROTO_OP_UPSERT, 2, 1, 2, 1, 1, 1, 0};

static void
build_changes(proto_buf *b, const changes_spec *s)
{
	static const char *colnames[] = {"a", "b", "c", "d"};
	int64_t last = s->nchanges > 0
	    ? s->first_id + (int64_t) (s->nchanges - 1) * s->step
	    : 0;
	msgpack_packer pk;
	int i, j;

	proto_buf_reset(b);
	msgpack_packer_init(&pk, b, pack_to_buf);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, PROTO_CHANGES);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "cursor", 6);
	msgpack_pack_int64(&pk, last + s->cursor_delta);
	msgpack_pack_str_with_body(&pk, "more", 4);
	msgpack_pack_false(&pk);
	msgpack_pack_str_with_body(&pk, "tables", 6);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_str_with_body(&pk, "t", 1);
	msgpack_pack_array(&pk, s->ncols);
	for (i = 0; i < s->ncols; i++)
		msgpack_pack_str_with_body(&pk, colnames[i % 4], 1);
	msgpack_pack_int(&pk, s->nkey);
	msgpack_pack_str_with_body(&pk, "changes", 7);
	msgpack_pack_array(&pk, s->nchanges);
	for (i = 0; i < s->nchanges; i++) {
		msgpack_pack_array(&pk, 4);
		msgpack_pack_int64(&pk, s->first_id + (int64_t) i * s->step);
		msgpack_pack_int(&pk, s->table);
		msgpack_pack_int(&pk, s->op);
		msgpack_pack_array(&pk, s->nvals);
		for (j = 0; j < s->nvals; j++)
			msgpack_pack_int(&pk, j);
	}
}

/* try_changes builds s and returns the decoder's verdict under lim. */
static proto_err
try_changes(const changes_spec *s, const proto_limits *lim)
{
	proto_buf b;
	proto_err rv;

	proto_buf_init(&b);
	build_changes(&b, s);
	rv = decode(b.data, b.len, lim);
	proto_buf_fini(&b);
	return rv;
}

static void
changes_builder_is_wrong(void)
{
	changes_spec s = cgood;

	CHECK_OK(try_changes(&s, NULL));
	s.nchanges = 0; /* an empty page: cursor is then 0 + delta */
	CHECK_OK(try_changes(&s, NULL));
	s.nchanges = 50;
	s.first_id = 1000;
	s.step = 7;
	CHECK_OK(try_changes(&s, NULL));
}

static void
changes_op_none_accepted(void)
{
	changes_spec s = cgood;

	s.op = PROTO_OP_NONE;
	s.nvals = 1; /* what NONE would carry in a PUSH */
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	CHECK_STR(
	    err, "field \"changes\": change 0: op 0 not between 1 and 2");
	s.op = 3;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	s.op = -1;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	s.op = PROTO_OP_DELETE;
	CHECK_OK(try_changes(&s, NULL));
}

static void
changes_ids_not_increasing(void)
{
	changes_spec s = cgood;

	s.nchanges = 3;
	s.step = 0;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err,
	    "field \"changes\": change 1: id 1 not above the previous id 1");
	s.step = -1;
	s.first_id = 10;
	s.cursor_delta = 2; /* keep the cursor at the first id */
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "change 1: id 9 not above the previous id 10");
	s.step = 1;
	s.cursor_delta = 0;
	CHECK_OK(try_changes(&s, NULL));
	s.first_id = INT64_MIN; /* the decoder only checks the order */
	CHECK_OK(try_changes(&s, NULL));
}

static void
changes_value_count_mismatch(void)
{
	changes_spec s = cgood;

	s.nvals = 1; /* upsert needs all 2 columns */
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	CHECK_STR(
	    err, "change 0: 1 values for table \"t\", expected 2 for op 1");
	s.nvals = 3;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	s.op = PROTO_OP_DELETE;
	s.nvals = 1;
	CHECK_OK(try_changes(&s, NULL));
	s.nvals = 2; /* delete carries only the nkey key columns */
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "2 values for table \"t\", expected 1 for op 2");
	s.nkey = 2; /* composite key */
	CHECK_OK(try_changes(&s, NULL));
	s.nvals = 0;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
}

static void
changes_table_index_out_of_range(void)
{
	changes_spec s = cgood;

	s.table = 1;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err,
	    "field \"changes\": change 0: table index 1 out of range (1 "
	    "table)");
	s.table = -1;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	s.table = 0;
	s.nkey = 0;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	CHECK_STR(
	    err, "field \"tables\": table 0: nkey 0 not between 1 and 2");
}

static void
changes_cursor_behind(void)
{
	changes_spec s = cgood;

	s.nchanges = 2;
	s.cursor_delta = -1;
	CHECK_ERR(try_changes(&s, NULL), PROTO_EPROTO);
	CHECK_STR(err, "field \"cursor\": 1 is below the last change id 2");
	s.cursor_delta = 1000; /* ahead: changes of a skipped table */
	CHECK_OK(try_changes(&s, NULL));
	s.nchanges = 0; /* an empty page may carry any cursor */
	s.cursor_delta = -5;
	CHECK_OK(try_changes(&s, NULL));
}

static void
changes_limits_not_enforced(void)
{
	proto_limits lim = {0};
	changes_spec s = cgood;
	proto_buf b;

	s.nchanges = 3;
	lim.max_events = 2;
	CHECK_ERR(try_changes(&s, &lim), PROTO_ETOOBIG);
	CHECK_STR(err, "field \"changes\": 3 changes exceed the limit of 2");
	lim.max_events = 3;
	CHECK_OK(try_changes(&s, &lim));
	lim.max_columns = 1; /* 2 columns in the table */
	CHECK_ERR(try_changes(&s, &lim), PROTO_ETOOBIG);
	CHECK_STR(err, "2 columns exceed the limit of 1");
	s.op = PROTO_OP_DELETE; /* the table still has 2 columns */
	s.nvals = 1;
	CHECK_ERR(try_changes(&s, &lim), PROTO_ETOOBIG);
	proto_buf_init(&b);
	CHECK(encode_sample(7, &b) == 0); /* 2 tables, a 300-byte str */
	lim = (proto_limits) {0};
	lim.max_tables = 1;
	CHECK_ERR(decode(b.data, b.len, &lim), PROTO_ETOOBIG);
	CHECK_STR(err, "2 tables exceed the limit of 1");
	lim = (proto_limits) {0};
	lim.max_value_bytes = 299;
	CHECK_ERR(decode(b.data, b.len, &lim), PROTO_ETOOBIG);
	lim.max_value_bytes = 300;
	CHECK_OK(decode(b.data, b.len, &lim));
	lim.max_msg_bytes = b.len - 1;
	CHECK_ERR(decode(b.data, b.len, &lim), PROTO_ETOOBIG);
	CHECK(encode_sample(5, &b) == 0); /* PULL: log_id is 32 bytes */
	lim = (proto_limits) {0};
	lim.max_value_bytes = 31;
	CHECK_ERR(decode(b.data, b.len, &lim), PROTO_ETOOBIG);
	proto_buf_fini(&b);
}

/* ---- hand-built WELCOME --------------------------------------------- */

static proto_err encode_einval(const proto_msg *m);
static proto_err encode_only(const proto_msg *m);

/* build_welcome writes a WELCOME with the given retry and discard lists;
 * nretry/ndiscard may exceed what the arrays hold: the missing elements
 * are 1, 2, 3, ... after the last given one (or from 1). */
static void
build_welcome(proto_buf *b, const int64_t *retry, uint32_t ngiven_r,
    uint32_t nretry, const int64_t *discard, uint32_t ngiven_d,
    uint32_t ndiscard)
{
	const int64_t *lists[2] = {retry, discard};
	uint32_t given[2] = {ngiven_r, ngiven_d}, n[2] = {nretry, ndiscard};
	static const char *names[2] = {"retry", "discard"};
	msgpack_packer pk;
	uint32_t k, i;

	proto_buf_reset(b);
	msgpack_packer_init(&pk, b, pack_to_buf);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, PROTO_WELCOME);
	msgpack_pack_map(&pk, 7);
	msgpack_pack_str_with_body(&pk, "watermark", 9);
	msgpack_pack_int(&pk, 9);
	msgpack_pack_str_with_body(&pk, "tag", 3);
	msgpack_pack_int(&pk, 0);
	msgpack_pack_str_with_body(&pk, "version", 7);
	msgpack_pack_str_with_body(&pk, "h", 1);
	msgpack_pack_str_with_body(&pk, "max_events", 10);
	msgpack_pack_int(&pk, 10);
	msgpack_pack_str_with_body(&pk, "max_bytes", 9);
	msgpack_pack_int(&pk, 1000);
	for (k = 0; k < 2; k++) {
		int64_t last = given[k] > 0 ? lists[k][given[k] - 1] : 0;
		msgpack_pack_str_with_body(&pk, names[k], strlen(names[k]));
		msgpack_pack_array(&pk, n[k]);
		for (i = 0; i < n[k]; i++)
			msgpack_pack_int64(&pk,
			    i < given[k]
			        ? lists[k][i]
			        : last + (int64_t) (i - given[k]) + 1);
	}
}

/* try_welcome builds a WELCOME and returns the decoder's verdict. */
static proto_err
try_welcome(const int64_t *retry, uint32_t nretry, const int64_t *discard,
    uint32_t ndiscard, const proto_limits *lim)
{
	proto_buf b;
	proto_err rv;

	proto_buf_init(&b);
	build_welcome(&b, retry, nretry, nretry, discard, ndiscard, ndiscard);
	rv = decode(b.data, b.len, lim);
	proto_buf_fini(&b);
	return rv;
}

/* try_welcome_long: lists of nretry and ndiscard increasing seqs. */
static proto_err
try_welcome_long(uint32_t nretry, uint32_t ndiscard, const proto_limits *lim)
{
	proto_buf b;
	proto_err rv;

	proto_buf_init(&b);
	build_welcome(&b, NULL, 0, nretry, NULL, 0, ndiscard);
	rv = decode(b.data, b.len, lim);
	proto_buf_fini(&b);
	return rv;
}

static void
welcome_seq_order_not_checked(void)
{
	static const int64_t same[] = {4, 5, 5}, down[] = {10, 9};
	static const int64_t ok[] = {INT64_MIN, -1, 0, INT64_MAX};
	int64_t r[3] = {4, 5, 5};
	proto_msg m;

	CHECK_OK(try_welcome(ok, 4, ok, 4, NULL));
	CHECK_ERR(try_welcome(same, 3, ok, 4, NULL), PROTO_EPROTO);
	CHECK_STR(err,
	    "field \"retry\": element 2: seq 5 not above the previous seq 5");
	CHECK_ERR(try_welcome(ok, 4, down, 2, NULL), PROTO_EPROTO);
	CHECK_STR(err,
	    "field \"discard\": element 1: seq 9 not above the previous "
	    "seq 10");
	CHECK_ERR(try_welcome(same + 1, 2, NULL, 0, NULL), PROTO_EPROTO);
	/* The encoder refuses the same, with the same reason. */
	sample_welcome(&m);
	m.u.welcome.nretry = 3;
	m.u.welcome.retry = r;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err,
	    "field \"retry\": element 2: seq 5 not above the previous seq 5");
	r[2] = 6;
	CHECK_OK(encode_only(&m));
	r[2] = 3;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	r[2] = 6;
	m.u.welcome.discard = r;
	m.u.welcome.ndiscard = 2;
	CHECK_OK(encode_only(&m));
	r[1] = r[0];
	m.u.welcome.nretry = 1; /* retry [4] fine, discard [4, 4] not */
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "field \"discard\": element 1: seq 4 not above");
	m.u.welcome.ndiscard = 1;
	m.u.welcome.discard = NULL; /* a count without an array */
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "field \"discard\" is NULL");
}

static void
welcome_seq_limit_not_enforced(void)
{
	static const uint8_t retry32[] = {0x93, 0x01, 0x02, 0x81, 0xa5, 'r',
	    'e', 't', 'r', 'y', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
	proto_limits lim = {0};

	lim.max_outcomes = 3;
	CHECK_OK(try_welcome_long(3, 3, &lim));
	CHECK_ERR(try_welcome_long(4, 0, &lim), PROTO_ETOOBIG);
	CHECK_STR(err, "field \"retry\": 4 seqs exceed the limit of 3");
	CHECK_ERR(try_welcome_long(0, 4, &lim), PROTO_ETOOBIG);
	CHECK_STR(err, "field \"discard\": 4 seqs exceed the limit of 3");
	/* The default limit: max_outcomes, 10000 each. */
	CHECK_OK(try_welcome_long(10000, 10000, NULL));
	CHECK_ERR(try_welcome_long(10001, 0, NULL), PROTO_ETOOBIG);
	CHECK_STR(
	    err, "field \"retry\": 10001 seqs exceed the limit of 10000");
	CHECK_ERR(try_welcome_long(1, 10001, NULL), PROTO_ETOOBIG);
	/* Without the limit only the input size stops a huge count. */
	lim.max_outcomes = UINT32_MAX;
	CHECK_ERR(decode(retry32, sizeof(retry32), &lim), PROTO_EPROTO);
	CHECK_STR(err, "4294967295 elements exceeds the 1 bytes that remain");
}

static void
welcome_empty_lists_differ(void)
{
	proto_msg m, *d = NULL;
	proto_buf b;

	round_trip(sample_welcome_empty);
	sample_welcome_empty(&m);
	proto_buf_init(&b);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	CHECK_OK(proto_msg_decode(b.data, b.len, NULL, &d, err, sizeof(err)));
	CHECK(d->u.welcome.nretry == 0 && d->u.welcome.ndiscard == 0);
	proto_msg_free(d);
	/* Empty arrays given as non-NULL pointers encode the same bytes. */
	m.u.welcome.retry = retry_seqs;
	m.u.welcome.discard = discard_seqs;
	{
		proto_buf b2;
		proto_buf_init(&b2);
		CHECK_OK(proto_msg_encode(&m, &b2, err, sizeof(err)));
		CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
		proto_buf_fini(&b2);
	}
	/* One list empty, the other not. */
	CHECK_OK(try_welcome(retry_seqs, 0, discard_seqs, 2, NULL));
	CHECK_OK(try_welcome(retry_seqs, 4, NULL, 0, NULL));
	proto_buf_fini(&b);
}

/* edit_body copies the message in to out with body pair number idx
 * dropped (rep NULL, dup false), written twice (dup) or with its value
 * replaced by rep. The key goes to key. Returns false once idx is past the
 * last pair. */
static bool
edit_body(const proto_buf *in, uint32_t idx, bool dup, const uint8_t *rep,
    size_t nrep, proto_buf *out, char *key, size_t keylen)
{
	const uint8_t *kstart, *vstart;
	msgpack_packer pk;
	proto_limits l;
	proto_cur c;
	int64_t v;
	uint32_t n, j;

	proto_limits_default(&l);
	proto_cur_init(&c, in->data, in->len, &l, NULL, 0);
	proto_buf_reset(out);
	if (proto_cur_array(&c, &n) != PROTO_OK
	    || proto_cur_int(&c, &v) != PROTO_OK
	    || proto_cur_int(&c, &v) != PROTO_OK)
		return false;
	proto_buf_append(out, in->data, (size_t) (c.p - in->data));
	if (proto_cur_map(&c, &n) != PROTO_OK || idx >= n)
		return false;
	msgpack_packer_init(&pk, out, pack_to_buf);
	msgpack_pack_map(&pk, rep == NULL ? (dup ? n + 1 : n - 1) : n);
	for (j = 0; j < n; j++) {
		kstart = c.p;
		proto_cur_skip(&c);
		vstart = c.p;
		proto_cur_skip(&c);
		if (j != idx) {
			proto_buf_append(out, kstart, (size_t) (c.p - kstart));
			continue;
		}
		/* Body keys are fixstr: the length is in the first byte. */
		snprintf(key, keylen, "%.*s", (int) (kstart[0] & 0x1f),
		    (const char *) kstart + 1);
		if (rep != NULL) {
			proto_buf_append(
			    out, kstart, (size_t) (vstart - kstart));
			proto_buf_append(out, rep, nrep);
		} else if (dup) {
			proto_buf_append(out, kstart, (size_t) (c.p - kstart));
			proto_buf_append(out, kstart, (size_t) (c.p - kstart));
		}
	}
	return true;
}

static void
field_missing_or_twice(void)
{
	char key[64], want[96];
	proto_buf b, mut;
	uint32_t k;
	size_t i;
	int n = 0;

	proto_buf_init(&b);
	proto_buf_init(&mut);
	for (i = 0; i < NSAMPLES; i++) {
		CHECK(encode_sample(i, &b) == 0);
		for (k = 0;
		     edit_body(&b, k, false, NULL, 0, &mut, key, sizeof(key));
		     k++, n++) {
			CHECK_ERR(
			    decode(mut.data, mut.len, NULL), PROTO_EPROTO);
			snprintf(
			    want, sizeof(want), "missing field \"%s\"", key);
			CHECK_STR(err, want);
			CHECK(edit_body(
			    &b, k, true, NULL, 0, &mut, key, sizeof(key)));
			CHECK_ERR(
			    decode(mut.data, mut.len, NULL), PROTO_EPROTO);
			snprintf(
			    want, sizeof(want), "duplicate field \"%s\"", key);
			CHECK_STR(err, want);
		}
	}
	CHECK(n == 8 + 7 + 8 + 6 + 3 + 10 + 10 + 4 + 4 + 7);
	proto_buf_fini(&b);
	proto_buf_fini(&mut);
}

static void
pull_table_with_nul(void)
{
	static const uint8_t nul[] = {0xa3, 'a', 0, 'b'};
	static const uint8_t empty[] = {0xa0};
	char key[64];
	proto_buf b, mut;

	proto_buf_init(&b);
	proto_buf_init(&mut);
	CHECK(encode_sample(5, &b) == 0);
	/* pair 7 is "table": header 0..5, "cursor" 6 */
	CHECK(
	    edit_body(&b, 7, false, nul, sizeof(nul), &mut, key, sizeof(key)));
	CHECK(strcmp(key, "table") == 0);
	CHECK_ERR(decode(mut.data, mut.len, NULL), PROTO_EPROTO);
	CHECK_STR(err, "field \"table\": str contains a NUL byte");
	CHECK(edit_body(
	    &b, 7, false, empty, sizeof(empty), &mut, key, sizeof(key)));
	CHECK_OK(decode(mut.data, mut.len, NULL));
	proto_buf_fini(&b);
	proto_buf_fini(&mut);
}

/* ---- limits and envelope --------------------------------------------- */

static void
limits_not_enforced(void)
{
	proto_limits lim = {0};
	push_spec s = good;
	proto_buf b;

	s.nevents = 3;
	lim.max_events = 2;
	CHECK_ERR(try_push(&s, &lim), PROTO_ETOOBIG);
	CHECK_STR(err, "3 events exceed the limit of 2");
	lim.max_events = 3;
	CHECK_OK(try_push(&s, &lim));
	lim.max_columns = 1;
	CHECK_ERR(try_push(&s, &lim), PROTO_ETOOBIG);
	proto_buf_init(&b);
	CHECK(encode_sample(2, &b) == 0); /* 2 tables */
	lim = (proto_limits) {0};
	lim.max_tables = 1;
	CHECK_ERR(decode(b.data, b.len, &lim), PROTO_ETOOBIG);
	lim = (proto_limits) {0};
	lim.max_msg_bytes = b.len - 1;
	CHECK_ERR(decode(b.data, b.len, &lim), PROTO_ETOOBIG);
	lim.max_msg_bytes = b.len;
	CHECK_OK(decode(b.data, b.len, &lim));
	CHECK(encode_sample(3, &b) == 0); /* 2 outcomes */
	lim = (proto_limits) {0};
	lim.max_outcomes = 1;
	CHECK_ERR(decode(b.data, b.len, &lim), PROTO_ETOOBIG);
	proto_buf_fini(&b);
}

static void
count_larger_than_data(void)
{
	static const uint8_t events32[] = {0x93, 0x01, 0x03, 0x81, 0xa6, 'e',
	    'v', 'e', 'n', 't', 's', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
	static const uint8_t body32[]
	    = {0x93, 0x01, 0x03, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0};
	static const uint8_t top32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t outc32[] = {0x93, 0x01, 0x04, 0x81, 0xa8, 'o',
	    'u', 't', 'c', 'o', 'm', 'e', 's', 0xdd, 0x00, 0x01, 0x00, 0x00};
	proto_limits lim = {0};

	/* With limits out of the way only the input size can stop it. */
	lim.max_events = lim.max_outcomes = UINT32_MAX;
	CHECK_ERR(decode(events32, sizeof(events32), &lim), PROTO_EPROTO);
	CHECK_STR(err, "4294967295 elements exceeds the 1 bytes that remain");
	CHECK_ERR(decode(body32, sizeof(body32), &lim), PROTO_EPROTO);
	CHECK_ERR(decode(top32, sizeof(top32), &lim), PROTO_EPROTO);
	CHECK_ERR(decode(outc32, sizeof(outc32), &lim), PROTO_EPROTO);
}

static void
trailing_garbage(void)
{
	proto_buf b;

	proto_buf_init(&b);
	CHECK(encode_sample(0, &b) == 0);
	CHECK_OK(proto_buf_append(&b, "\xc0\xc0", 2));
	CHECK_ERR(decode(b.data, b.len, NULL), PROTO_EPROTO);
	CHECK_STR(err, "2 trailing bytes after the message");
	proto_buf_fini(&b);
}

static void
wrong_version(void)
{
	static const uint8_t v2[] = {0x93, 0x02, 0x01, 0x80};
	static const uint8_t v0[] = {0x93, 0x00, 0x01, 0x80};
	static const uint8_t v2long[] = {0x94, 0x02, 0x01, 0x80, 0xc0};
	static const uint8_t v1long[] = {0x94, 0x01, 0x01, 0x80, 0xc0};
	static const uint8_t vstr[] = {0x93, 0xa1, '1', 0x01, 0x80};

	CHECK_ERR(decode(v2, sizeof(v2), NULL), PROTO_EVERSION);
	CHECK_STR(err, "unsupported protocol version 2");
	CHECK_ERR(decode(v0, sizeof(v0), NULL), PROTO_EVERSION);
	CHECK_ERR(decode(v2long, sizeof(v2long), NULL), PROTO_EVERSION);
	CHECK_ERR(decode(v1long, sizeof(v1long), NULL), PROTO_EPROTO);
	CHECK_ERR(decode(vstr, sizeof(vstr), NULL), PROTO_EPROTO);
	CHECK_STR(err, "envelope: expected int, got str");
}

static void
unknown_type(void)
{
	static const uint8_t t9[] = {0x93, 0x01, 0x09, 0x80};
	static const uint8_t t8[] = {0x93, 0x01, 0x08, 0x80};
	static const uint8_t t0[] = {0x93, 0x01, 0x00, 0x80};
	static const uint8_t t5[] = {0x93, 0x01, 0x05, 0x80};
	static const uint8_t t6[] = {0x93, 0x01, 0x06, 0x80};
	static const uint8_t tneg[] = {0x93, 0x01, 0xff, 0x80};

	CHECK_ERR(decode(t9, sizeof(t9), NULL), PROTO_EPROTO);
	CHECK_STR(err, "unknown message type 9");
	CHECK_ERR(decode(t8, sizeof(t8), NULL), PROTO_EPROTO);
	CHECK_STR(err, "unknown message type 8");
	CHECK_ERR(decode(t0, sizeof(t0), NULL), PROTO_EPROTO);
	CHECK_STR(err, "unknown message type 0");
	CHECK_ERR(decode(tneg, sizeof(tneg), NULL), PROTO_EPROTO);
	/* PULL and CHANGES are known now: an empty body lacks fields. */
	CHECK_ERR(decode(t5, sizeof(t5), NULL), PROTO_EPROTO);
	CHECK_STR(err, "missing field \"branch\"");
	CHECK_ERR(decode(t6, sizeof(t6), NULL), PROTO_EPROTO);
	CHECK_STR(err, "missing field \"cursor\"");
}

static void
empty_or_not_an_array(void)
{
	static const uint8_t map[] = {0x80};
	static const uint8_t empty[] = {0x90};
	static const uint8_t bad[] = {0xc1};

	CHECK_ERR(decode(NULL, 0, NULL), PROTO_EPROTO);
	CHECK_ERR(decode(map, sizeof(map), NULL), PROTO_EPROTO);
	CHECK_STR(err, "envelope: expected array, got map");
	CHECK_ERR(decode(empty, sizeof(empty), NULL), PROTO_EPROTO);
	CHECK_ERR(decode(bad, sizeof(bad), NULL), PROTO_EPROTO);
}

static void
hello_with_nul_in_branch(void)
{
	proto_buf b;
	walk w;

	proto_buf_init(&b);
	{
		proto_buf good_b;
		proto_buf_init(&good_b);
		CHECK(encode_sample(0, &good_b) == 0);
		/* value 5 is "branch": make it "b\0" */
		CHECK(replace(&good_b, 5,
		    (const uint8_t *) "\xa2"
		                      "b\0",
		    3, &b, &w));
		proto_buf_fini(&good_b);
	}
	CHECK_ERR(decode(b.data, b.len, NULL), PROTO_EPROTO);
	CHECK_STR(err, "field \"branch\": str contains a NUL byte");
	proto_buf_fini(&b);
}

/* ---- encoder validation ---------------------------------------------- */

/* encode_einval encodes m expecting PROTO_EINVAL and nothing written. */
static proto_err
encode_einval(const proto_msg *m)
{
	proto_buf b;
	proto_err rv;

	proto_buf_init(&b);
	err[0] = '\0';
	rv = proto_msg_encode(m, &b, err, sizeof(err));
	if (b.len != 0 || !err[0])
		rv = PROTO_ERR_COUNT;
	proto_buf_fini(&b);
	return rv;
}

static void
encode_inconsistent_push(void)
{
	proto_table t[1] = {{"t", 2, cols0, 1}};
	proto_value v[2] = {VI(1), VI(2)};
	proto_event e[1] = {{1, 0, 0, PROTO_OP_UPSERT, 2, v, false, 0}};
	proto_msg m;

	sample_push(&m);
	m.u.push = (proto_push) {sample_hdr, 1, t, 1, e};
	e[0].table = 1;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "event 0: table index 1 out of range");
	e[0].table = 0;
	e[0].nvals = 1;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	e[0].op = PROTO_OP_DELETE;
	e[0].nvals = 2;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	e[0].op = PROTO_OP_NONE;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	e[0].op = (proto_op) 7;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	e[0].op = PROTO_OP_UPSERT;
	t[0].nkey = 0;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	t[0].nkey = 3;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	t[0].nkey = 2;
	v[1].type = PROTO_STR;
	v[1].u.s = NULL;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
}

/* encode_only encodes m into a scratch buffer and returns the result. */
static proto_err
encode_only(const proto_msg *m)
{
	proto_buf b;
	proto_err rv;

	proto_buf_init(&b);
	rv = proto_msg_encode(m, &b, err, sizeof(err));
	proto_buf_fini(&b);
	return rv;
}

static void
encode_inconsistent_changes(void)
{
	proto_table t[1] = {{"t", 2, cols0, 1}};
	proto_value v[2] = {VI(1), VI(2)};
	proto_event e[2] = {{5, 0, 0, PROTO_OP_UPSERT, 2, v, false, 0},
	    {6, 0, 0, PROTO_OP_DELETE, 1, v, false, 0}};
	proto_msg m;

	sample_changes(&m);
	m.u.changes = (proto_changes) {6, true, 1, t, 2, e};
	CHECK_OK(encode_only(&m));
	e[1].op = PROTO_OP_NONE;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(
	    err, "field \"changes\": change 1: op 0 not between 1 and 2");
	e[1].op = PROTO_OP_DELETE;
	e[1].seq = 5;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "change 1: id 5 not above the previous id 5");
	e[1].seq = 6;
	m.u.changes.cursor = 5;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "field \"cursor\": 5 is below the last change id 6");
	m.u.changes.cursor = 6;
	e[1].nvals = 2;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	e[1].nvals = 1;
	e[0].table = 1;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "change 0: table index 1 out of range");
	e[0].table = 0;
	m.u.changes.nchanges = 0; /* an empty page needs no array */
	m.u.changes.changes = NULL;
	m.u.changes.ntables = 0;
	m.u.changes.tables = NULL;
	CHECK_OK(encode_only(&m));
}

/* The encoder refuses names the decoder would refuse. */
static void
encode_names_not_utf8(void)
{
	const char *cols[] = {"id", "caf\xe9"};
	proto_table t[1] = {{"t", 2, cols, 1}};
	proto_msg e;

	sample_hello(&e);
	e.u.hello.hdr.log_id = "abc\x80";
	CHECK_ERR(encode_einval(&e), PROTO_EINVAL);
	CHECK_STR(err, "field \"log_id\": not valid UTF-8 (byte 3)");
	sample_push(&e);
	e.u.push = (proto_push) {sample_hdr, 1, t, 0, NULL};
	CHECK_ERR(encode_einval(&e), PROTO_EINVAL);
	CHECK_STR(err, "column 1: not valid UTF-8 (byte 3)");
}

static void
encode_null_strings(void)
{
	const char *cols[] = {"a", NULL};
	proto_table t[1] = {{"t", 2, cols, 1}};
	proto_outcome o[1] = {{1, PROTO_OUT_REJECTED, NULL}};
	proto_msg m;

	sample_hello(&m);
	m.u.hello.hdr.branch = NULL;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "field \"branch\" is NULL");
	sample_push(&m);
	m.u.push = (proto_push) {sample_hdr, 1, t, 0, NULL};
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	sample_ack(&m);
	m.u.ack.noutcomes = 1;
	m.u.ack.outcomes = o;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	o[0].reason = "";
	o[0].code = (proto_outcome_code) 0;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	sample_pull(&m);
	m.u.pull.table = NULL;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "field \"table\" is NULL");
	sample_changes(&m);
	m.u.changes.tables = NULL;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "tables or changes array is NULL");
	sample_error(&m);
	m.type = (proto_type) 8;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
	CHECK_STR(err, "cannot encode message type 8");
	m.type = (proto_type) 0;
	CHECK_ERR(encode_einval(&m), PROTO_EINVAL);
}

static void
encode_appends_not(void)
{
	proto_msg m, *d = NULL;
	proto_buf b;
	size_t first;

	/* Two messages back to back: the second starts where the first
	 * ends, and each decodes on its own. */
	proto_buf_init(&b);
	sample_error(&m);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	first = b.len;
	sample_welcome(&m);
	CHECK_OK(proto_msg_encode(&m, &b, err, sizeof(err)));
	CHECK_OK(proto_msg_decode(
	    b.data + first, b.len - first, NULL, &d, err, sizeof(err)));
	CHECK(d->type == PROTO_WELCOME && d->u.welcome.watermark == 41);
	proto_msg_free(d);
	CHECK_ERR(decode(b.data, first, NULL), PROTO_OK);
	proto_buf_fini(&b);
}

static const test_case cases[] = {
    {"hello round trip differs", hello_round_trip_differs},
    {"till round trip differs", till_round_trip_differs},
    {"welcome round trip differs", welcome_round_trip_differs},
    {"push round trip differs", push_round_trip_differs},
    {"ack round trip differs", ack_round_trip_differs},
    {"error round trip differs", error_round_trip_differs},
    {"pull round trip differs", pull_round_trip_differs},
    {"changes round trip differs", changes_round_trip_differs},
    {"changes tag not sent", changes_tag_not_sent},
    {"push values lose detail", push_values_lose_detail},
    {"float specials change", float_specials_change},
    {"limits default wrong", limits_default_wrong},
    {"truncated at every length", truncated_at_every_length},
    {"field of wrong type", field_of_wrong_type},
    {"wrong type error text", wrong_type_error_text},
    {"builder is wrong", builder_is_wrong},
    {"table index out of range", table_index_out_of_range},
    {"value count mismatch", value_count_mismatch},
    {"nkey out of range", nkey_out_of_range},
    {"op out of range", op_out_of_range},
    {"ahead only on push upserts", ahead_only_on_push_upserts},
    {"missing field", missing_field},
    {"duplicate field", duplicate_field},
    {"unknown key not skipped", unknown_key_not_skipped},
    {"unknown key nested deep", unknown_key_nested_deep},
    {"row value nested", row_value_nested},
    {"name with NUL", name_with_nul},
    {"names not UTF-8", names_not_utf8},
    {"oversized string", oversized_string},
    {"changes builder is wrong", changes_builder_is_wrong},
    {"changes op NONE accepted", changes_op_none_accepted},
    {"changes ids not increasing", changes_ids_not_increasing},
    {"changes value count mismatch", changes_value_count_mismatch},
    {"changes table index out of range", changes_table_index_out_of_range},
    {"changes cursor behind", changes_cursor_behind},
    {"changes limits not enforced", changes_limits_not_enforced},
    {"welcome seq order not checked", welcome_seq_order_not_checked},
    {"welcome seq limit not enforced", welcome_seq_limit_not_enforced},
    {"welcome empty lists differ", welcome_empty_lists_differ},
    {"field missing or twice", field_missing_or_twice},
    {"pull table with NUL", pull_table_with_nul},
    {"limits not enforced", limits_not_enforced},
    {"count larger than data", count_larger_than_data},
    {"trailing garbage", trailing_garbage},
    {"wrong version", wrong_version},
    {"unknown type", unknown_type},
    {"empty or not an array", empty_or_not_an_array},
    {"hello with NUL in branch", hello_with_nul_in_branch},
    {"encode inconsistent push", encode_inconsistent_push},
    {"encode inconsistent changes", encode_inconsistent_changes},
    {"encode null strings", encode_null_strings},
    {"encode names not UTF-8", encode_names_not_utf8},
    {"encode appends not", encode_appends_not},
};

TEST_MAIN(cases)
