/*
 * fuzz_common.c: see fuzz_common.h.
 */
#include "fuzz_common.h"

#include <string.h>

uint64_t
fuzz_hash(const uint8_t *data, size_t size)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ULL;
	return h;
}

void
fuzz_limits_tight(proto_limits *lim)
{
	memset(lim, 0, sizeof *lim);
	lim->max_msg_bytes = 512;
	lim->max_events = 3;
	lim->max_tables = 2;
	lim->max_columns = 4;
	lim->max_value_bytes = 16;
	lim->max_outcomes = 3;
	lim->max_depth = 2;
}

static void
check_str(const char *s)
{
	FUZZ_ASSERT(s != NULL);
	(void) strlen(s); /* NUL-terminated within its allocation (ASan) */
}

static void
check_value(const proto_value *v, const proto_limits *lim)
{
	switch (v->type) {
	case PROTO_NIL:
	case PROTO_BOOL:
	case PROTO_INT:
	case PROTO_FLOAT:
		break;
	case PROTO_STR:
		FUZZ_ASSERT(v->u.s != NULL && v->u.s[v->len] == '\0');
		FUZZ_ASSERT(v->len <= lim->max_value_bytes);
		break;
	case PROTO_BIN:
		FUZZ_ASSERT(v->len == 0 || v->u.p != NULL);
		if (v->len > 0) {
			/* The whole value is readable (ASan). */
			volatile uint8_t last = v->u.p[v->len - 1];
			(void) last;
		}
		FUZZ_ASSERT(v->len <= lim->max_value_bytes);
		break;
	default:
		FUZZ_ASSERT(!"unknown value type");
	}
}

static void
check_tables(const proto_table *t, uint32_t n, const proto_limits *lim)
{
	FUZZ_ASSERT(n <= lim->max_tables);
	FUZZ_ASSERT(n == 0 || t != NULL);
	for (uint32_t i = 0; i < n; i++) {
		check_str(t[i].name);
		FUZZ_ASSERT(t[i].ncols <= lim->max_columns);
		FUZZ_ASSERT(t[i].nkey >= 1 && t[i].nkey <= t[i].ncols);
		for (uint32_t j = 0; j < t[i].ncols; j++)
			check_str(t[i].cols[j]);
	}
}

static void
check_events(const proto_table *t, uint32_t nt, const proto_event *e,
    uint32_t n, bool changes, const proto_limits *lim)
{
	FUZZ_ASSERT(n <= lim->max_events);
	FUZZ_ASSERT(n == 0 || e != NULL);
	for (uint32_t i = 0; i < n; i++) {
		FUZZ_ASSERT(e[i].table < nt);
		if (changes) {
			FUZZ_ASSERT(e[i].op == PROTO_OP_UPSERT
			    || e[i].op == PROTO_OP_DELETE);
			FUZZ_ASSERT(e[i].tag == 0);
			FUZZ_ASSERT(i == 0 || e[i].seq > e[i - 1].seq);
		} else
			FUZZ_ASSERT(e[i].op == PROTO_OP_NONE
			    || e[i].op == PROTO_OP_UPSERT
			    || e[i].op == PROTO_OP_DELETE);
		FUZZ_ASSERT(e[i].nvals
		    == (e[i].op == PROTO_OP_UPSERT ? t[e[i].table].ncols
		                                   : t[e[i].table].nkey));
		for (uint32_t j = 0; j < e[i].nvals; j++)
			check_value(&e[i].vals[j], lim);
	}
}

/* check_hdr: a version 2 header has no key (it never travels), a till
 * only if the auth map named one; version 1 has a key. */
static void
check_hdr(const proto_agent_hdr *h)
{
	check_str(h->branch);
	if (h->key != NULL)
		check_str(h->key);
	if (h->till != NULL)
		check_str(h->till);
	check_str(h->log_id);
}

static void
check_seqs(const int64_t *v, uint32_t n, const proto_limits *lim)
{
	FUZZ_ASSERT(n <= lim->max_outcomes);
	FUZZ_ASSERT(n == 0 || v != NULL);
	for (uint32_t i = 1; i < n; i++)
		FUZZ_ASSERT(v[i] > v[i - 1]);
}

void
fuzz_msg_check(const proto_msg *m, const proto_limits *lim)
{
	switch (m->type) {
	case PROTO_HELLO:
		check_hdr(&m->u.hello.hdr);
		check_str(m->u.hello.version);
		break;
	case PROTO_WELCOME:
		check_str(m->u.welcome.version);
		check_seqs(m->u.welcome.retry, m->u.welcome.nretry, lim);
		check_seqs(m->u.welcome.discard, m->u.welcome.ndiscard, lim);
		break;
	case PROTO_PUSH:
		check_hdr(&m->u.push.hdr);
		check_tables(m->u.push.tables, m->u.push.ntables, lim);
		check_events(m->u.push.tables, m->u.push.ntables,
		    m->u.push.events, m->u.push.nevents, false, lim);
		break;
	case PROTO_ACK:
		check_str(m->u.ack.log_id);
		FUZZ_ASSERT(m->u.ack.noutcomes <= lim->max_outcomes);
		for (uint32_t i = 0; i < m->u.ack.noutcomes; i++) {
			proto_outcome_code c = m->u.ack.outcomes[i].code;
			FUZZ_ASSERT(c == PROTO_OUT_DUPLICATE
			    || c == PROTO_OUT_CONFLICT
			    || c == PROTO_OUT_REJECTED);
			check_str(m->u.ack.outcomes[i].reason);
		}
		break;
	case PROTO_PULL:
		check_hdr(&m->u.pull.hdr);
		check_str(m->u.pull.table);
		break;
	case PROTO_CHANGES:
		check_tables(m->u.changes.tables, m->u.changes.ntables, lim);
		check_events(m->u.changes.tables, m->u.changes.ntables,
		    m->u.changes.changes, m->u.changes.nchanges, true, lim);
		if (m->u.changes.nchanges > 0)
			FUZZ_ASSERT(m->u.changes.cursor
			    >= m->u.changes.changes[m->u.changes.nchanges - 1]
			           .seq);
		break;
	case PROTO_ERROR:
		check_str(m->u.error.message);
		break;
	default:
		FUZZ_ASSERT(!"unknown message type");
	}
}

/* ---- comparison ------------------------------------------------------- */

#define SAME_STR(a, b) FUZZ_ASSERT(strcmp((a), (b)) == 0)

/* SAME_OPT compares two strings that may both be NULL. */
#define SAME_OPT(a, b)                                                        \
	FUZZ_ASSERT(((a) == NULL) == ((b) == NULL)                            \
	    && ((a) == NULL || strcmp((a), (b)) == 0))

static void
same_hdr(const proto_agent_hdr *a, const proto_agent_hdr *b)
{
	SAME_STR(a->branch, b->branch);
	SAME_OPT(a->key, b->key);
	SAME_OPT(a->till, b->till);
	SAME_STR(a->log_id, b->log_id);
	FUZZ_ASSERT(a->queue_events == b->queue_events);
	FUZZ_ASSERT(a->queue_bytes == b->queue_bytes);
	FUZZ_ASSERT(a->oldest_age_s == b->oldest_age_s);
}

static void
same_tables(const proto_table *a, const proto_table *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		SAME_STR(a[i].name, b[i].name);
		FUZZ_ASSERT(a[i].ncols == b[i].ncols);
		FUZZ_ASSERT(a[i].nkey == b[i].nkey);
		for (uint32_t j = 0; j < a[i].ncols; j++)
			SAME_STR(a[i].cols[j], b[i].cols[j]);
	}
}

static void
same_events(const proto_event *a, const proto_event *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		FUZZ_ASSERT(a[i].seq == b[i].seq);
		FUZZ_ASSERT(a[i].tag == b[i].tag);
		FUZZ_ASSERT(a[i].table == b[i].table);
		FUZZ_ASSERT(a[i].op == b[i].op);
		FUZZ_ASSERT(a[i].nvals == b[i].nvals);
		for (uint32_t j = 0; j < a[i].nvals; j++)
			FUZZ_ASSERT(
			    proto_value_eq(&a[i].vals[j], &b[i].vals[j]));
	}
}

static void
same_seqs(const int64_t *a, uint32_t na, const int64_t *b, uint32_t nb)
{
	FUZZ_ASSERT(na == nb);
	for (uint32_t i = 0; i < na; i++)
		FUZZ_ASSERT(a[i] == b[i]);
}

void
fuzz_msg_same(const proto_msg *a, const proto_msg *b)
{
	FUZZ_ASSERT(a->type == b->type);
	switch (a->type) {
	case PROTO_HELLO:
		same_hdr(&a->u.hello.hdr, &b->u.hello.hdr);
		FUZZ_ASSERT(a->u.hello.high_seq == b->u.hello.high_seq);
		SAME_STR(a->u.hello.version, b->u.hello.version);
		break;
	case PROTO_WELCOME: {
		const proto_welcome *x = &a->u.welcome, *y = &b->u.welcome;
		FUZZ_ASSERT(x->watermark == y->watermark && x->tag == y->tag);
		SAME_STR(x->version, y->version);
		FUZZ_ASSERT(x->max_events == y->max_events);
		FUZZ_ASSERT(x->max_bytes == y->max_bytes);
		same_seqs(x->retry, x->nretry, y->retry, y->nretry);
		same_seqs(x->discard, x->ndiscard, y->discard, y->ndiscard);
		break;
	}
	case PROTO_PUSH: {
		const proto_push *x = &a->u.push, *y = &b->u.push;
		same_hdr(&x->hdr, &y->hdr);
		FUZZ_ASSERT(x->ntables == y->ntables);
		same_tables(x->tables, y->tables, x->ntables);
		FUZZ_ASSERT(x->nevents == y->nevents);
		same_events(x->events, y->events, x->nevents);
		break;
	}
	case PROTO_ACK: {
		const proto_ack *x = &a->u.ack, *y = &b->u.ack;
		SAME_STR(x->log_id, y->log_id);
		FUZZ_ASSERT(x->watermark == y->watermark && x->tag == y->tag);
		FUZZ_ASSERT(x->applied == y->applied);
		FUZZ_ASSERT(x->duplicates == y->duplicates);
		FUZZ_ASSERT(x->noutcomes == y->noutcomes);
		for (uint32_t i = 0; i < x->noutcomes; i++) {
			FUZZ_ASSERT(x->outcomes[i].seq == y->outcomes[i].seq);
			FUZZ_ASSERT(
			    x->outcomes[i].code == y->outcomes[i].code);
			SAME_STR(x->outcomes[i].reason, y->outcomes[i].reason);
		}
		break;
	}
	case PROTO_PULL: {
		const proto_pull *x = &a->u.pull, *y = &b->u.pull;
		same_hdr(&x->hdr, &y->hdr);
		FUZZ_ASSERT(x->cursor == y->cursor);
		SAME_STR(x->table, y->table);
		FUZZ_ASSERT(x->max_rows == y->max_rows);
		FUZZ_ASSERT(x->max_bytes == y->max_bytes);
		break;
	}
	case PROTO_CHANGES: {
		const proto_changes *x = &a->u.changes, *y = &b->u.changes;
		FUZZ_ASSERT(x->cursor == y->cursor && x->more == y->more);
		FUZZ_ASSERT(x->ntables == y->ntables);
		same_tables(x->tables, y->tables, x->ntables);
		FUZZ_ASSERT(x->nchanges == y->nchanges);
		same_events(x->changes, y->changes, x->nchanges);
		break;
	}
	case PROTO_ERROR:
		FUZZ_ASSERT(a->u.error.code == b->u.error.code);
		SAME_STR(a->u.error.message, b->u.error.message);
		FUZZ_ASSERT(a->u.error.retry == b->u.error.retry);
		break;
	default:
		FUZZ_ASSERT(!"unknown message type");
	}
}

void
fuzz_roundtrip(const proto_msg *m)
{
	proto_msg *m2 = NULL;
	proto_buf b1, b2;
	proto_limits big = {0};
	char err[256];

	proto_buf_init(&b1);
	proto_buf_init(&b2);
	if (proto_msg_encode(m, &b1, err, sizeof err) != PROTO_OK) {
		fprintf(stderr, "encode: %s\n", err);
		FUZZ_ASSERT(!"a decoded message does not encode");
	}
	/* float32 widens to float64, so the encoding may outgrow the input;
	 * likewise every other limit may be exceeded by a re-encoding of a
	 * message built in memory. */
	big.max_msg_bytes = SIZE_MAX;
	big.max_events = big.max_tables = big.max_columns = UINT32_MAX;
	big.max_value_bytes = big.max_outcomes = UINT32_MAX;
	if (proto_msg_decode(b1.data, b1.len, &big, &m2, err, sizeof err)
	    != PROTO_OK) {
		fprintf(stderr, "decode: %s\n", err);
		FUZZ_ASSERT(!"an encoding does not decode");
	}
	fuzz_msg_same(m, m2);
	FUZZ_ASSERT(proto_msg_encode(m2, &b2, err, sizeof err) == PROTO_OK);
	FUZZ_ASSERT(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	proto_msg_free(m2);
	proto_buf_fini(&b1);
	proto_buf_fini(&b2);
}

void
fuzz_env_check(const proto_env *env, const uint8_t *data, size_t size)
{
	const proto_auth *a = &env->auth;

	FUZZ_ASSERT(env->version == PROTO_VERSION
	    || env->version == PROTO_VERSION_PLAIN);
	if (env->version == PROTO_VERSION_PLAIN) {
		FUZZ_ASSERT(env->body == data && env->body_len == size);
		return;
	}
	/* The body is a slice of the input, and ends it. */
	FUZZ_ASSERT(env->body >= data && env->body_len <= size
	    && env->body + env->body_len == data + size);
	FUZZ_ASSERT(a->nnonces <= PROTO_MAX_NONCES);
	if (!proto_request_type(env->type)) {
		FUZZ_ASSERT(a->has_mac || env->type == PROTO_ERROR);
		FUZZ_ASSERT(a->branch[0] == '\0' && a->nnonces == 0);
		return;
	}
	FUZZ_ASSERT(a->has_mac && !a->has_nonce && a->ctr >= 0);
	FUZZ_ASSERT(proto_code_valid(a->branch));
	FUZZ_ASSERT(a->till[0] == '\0' || proto_code_valid(a->till));
}

void
fuzz_roundtrip_v2(const proto_msg *m, const proto_env *env)
{
	proto_buf body, b1, b2;
	proto_env e1 = *env, back;
	proto_msg *m2 = NULL;
	proto_limits big = {0};
	char err[256];

	proto_buf_init(&body);
	proto_buf_init(&b1);
	proto_buf_init(&b2);
	if (proto_body_encode(m, &body, err, sizeof err) != PROTO_OK) {
		fprintf(stderr, "body encode: %s\n", err);
		FUZZ_ASSERT(!"a decoded body does not encode");
	}
	e1.body = body.data;
	e1.body_len = body.len;
	FUZZ_ASSERT(proto_env_encode(&e1, &b1, err, sizeof err) == PROTO_OK);
	big.max_msg_bytes = SIZE_MAX;
	big.max_events = big.max_tables = big.max_columns = UINT32_MAX;
	big.max_value_bytes = big.max_outcomes = UINT32_MAX;
	FUZZ_ASSERT(
	    proto_env_decode(b1.data, b1.len, &big, &back, err, sizeof err)
	    == PROTO_OK);
	FUZZ_ASSERT(back.type == env->type && back.auth.ctr == env->auth.ctr
	    && back.auth.nnonces == env->auth.nnonces
	    && back.auth.has_mac == env->auth.has_mac
	    && !strcmp(back.auth.branch, env->auth.branch)
	    && !strcmp(back.auth.till, env->auth.till)
	    && !memcmp(back.auth.mac, env->auth.mac, sizeof back.auth.mac)
	    && !memcmp(back.auth.nonces, env->auth.nonces,
	        env->auth.nnonces * sizeof back.auth.nonces[0]));
	FUZZ_ASSERT(back.body_len == body.len
	    && !memcmp(back.body, body.data, body.len));
	if (proto_body_decode(&back, &big, &m2, err, sizeof err) != PROTO_OK) {
		fprintf(stderr, "body decode: %s\n", err);
		FUZZ_ASSERT(!"an encoded body does not decode");
	}
	fuzz_msg_same(m, m2);
	FUZZ_ASSERT(proto_body_encode(m2, &b2, err, sizeof err) == PROTO_OK);
	FUZZ_ASSERT(b2.len == body.len && !memcmp(b2.data, body.data, b2.len));
	proto_msg_free(m2);
	proto_buf_fini(&body);
	proto_buf_fini(&b1);
	proto_buf_fini(&b2);
}
