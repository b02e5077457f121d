/*
 * msgdec.c: branchsync messages from msgpack bytes.
 *
 * The decoder reads the envelope and the body map with the bounds-checked
 * cursor of codec.c, looks every key up in the message type's table of
 * fields (msg.c, msg_int.h), skips keys it does not know (the
 * compatibility rule of msg.h), copies what it keeps into an arena owned
 * by the message, and checks the result with the same functions the
 * encoder uses, so what encodes also decodes.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "proto_int.h"

/* ---- decoding -------------------------------------------------------- */

/* Each decoder reads one value at c into memory from a and, on failure,
 * leaves a reason in c->err which its caller prefixes with context. */

static proto_err
dec_nomem(proto_cur *c)
{
	proto_seterr(c->err, c->errlen, "out of memory");
	return PROTO_ENOMEM;
}

/*
 * dec_str reads a str into *out: with name, a name (see name_check: valid
 * UTF-8, no control characters); else a text, which must not hold NUL.
 */
static proto_err
dec_str(proto_cur *c, proto_arena *a, bool name, const char **out)
{
	const uint8_t *s;
	uint32_t len;
	proto_err rv;

	if ((rv = proto_cur_str(c, &s, &len)) != PROTO_OK)
		return rv;
	if (name) {
		if (!msg_name_check(s, len, c->err, c->errlen))
			return PROTO_EPROTO;
	} else if (memchr(s, '\0', len) != NULL) {
		proto_seterr(c->err, c->errlen, "str contains a NUL byte");
		return PROTO_EPROTO;
	}
	if ((*out = proto_arena_strndup(a, (const char *) s, len)) == NULL)
		return dec_nomem(c);
	return PROTO_OK;
}

/* dec_tuple reads an array header that must declare exactly n elements. */
static proto_err
dec_tuple(proto_cur *c, uint32_t n)
{
	uint32_t got;
	proto_err rv;

	if ((rv = proto_cur_array(c, &got)) != PROTO_OK)
		return rv;
	if (got != n) {
		proto_seterr(c->err, c->errlen,
		    "expected array of %u elements, got %u", n, got);
		return PROTO_EPROTO;
	}
	return PROTO_OK;
}

/* dec_count reads an array header whose count must not exceed max. */
static proto_err
dec_count(proto_cur *c, uint32_t *n, uint32_t max, const char *what)
{
	proto_err rv;

	if ((rv = proto_cur_array(c, n)) != PROTO_OK)
		return rv;
	if (*n > max) {
		proto_seterr(c->err, c->errlen, "%u %s exceed the limit of %u",
		    *n, what, max);
		return PROTO_ETOOBIG;
	}
	return PROTO_OK;
}

/* dec_range reads an int that must lie in [lo, hi]. */
static proto_err
dec_range(proto_cur *c, int64_t lo, int64_t hi, const char *what, int64_t *v)
{
	proto_err rv;

	if ((rv = proto_cur_int(c, v)) != PROTO_OK)
		return rv;
	if (*v < lo || *v > hi) {
		proto_seterr(c->err, c->errlen,
		    "%s %lld not between %lld and %lld", what, (long long) *v,
		    (long long) lo, (long long) hi);
		return PROTO_EPROTO;
	}
	return PROTO_OK;
}

/* dec_table reads [name, [col, ...], nkey]; msg_check (table_check)
 * applies the rule for names to the names afterwards. */
static proto_err
dec_table(proto_cur *c, proto_arena *a, proto_table *t)
{
	proto_err rv;
	int64_t nkey;
	uint32_t i;

	if ((rv = dec_tuple(c, 3)) != PROTO_OK)
		return rv;
	if ((rv = dec_str(c, a, false, &t->name)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "name: ");
		return rv;
	}
	rv = dec_count(c, &t->ncols, c->lim->max_columns, "columns");
	if (rv != PROTO_OK)
		return rv;
	if ((t->cols = proto_arena_array(a, t->ncols, sizeof(char *))) == NULL)
		return dec_nomem(c);
	for (i = 0; i < t->ncols; i++) {
		if ((rv = dec_str(c, a, false, &t->cols[i])) != PROTO_OK) {
			proto_preerr(c->err, c->errlen, "column %u: ", i);
			return rv;
		}
	}
	if ((rv = dec_range(c, 1, t->ncols, "nkey", &nkey)) != PROTO_OK)
		return rv;
	t->nkey = (uint32_t) nkey;
	return PROTO_OK;
}

static proto_err
dec_tables(proto_cur *c, proto_arena *a, proto_table **tables, uint32_t *n)
{
	proto_err rv;
	uint32_t i;

	if ((rv = dec_count(c, n, c->lim->max_tables, "tables")) != PROTO_OK)
		return rv;
	if ((*tables = proto_arena_array(a, *n, sizeof(proto_table))) == NULL)
		return dec_nomem(c);
	for (i = 0; i < *n; i++) {
		if ((rv = dec_table(c, a, &(*tables)[i])) != PROTO_OK) {
			proto_preerr(c->err, c->errlen, "table %u: ", i);
			return rv;
		}
	}
	return PROTO_OK;
}

/* dec_event_head reads seq (or id), tag if d has one, table and op. */
static proto_err
dec_event_head(proto_cur *c, proto_event *e, const evlist_desc *d)
{
	proto_err rv;
	int64_t v;

	if ((rv = proto_cur_int(c, &e->seq)) != PROTO_OK) {
		proto_preerr(
		    c->err, c->errlen, "%s: ", d->has_tag ? "seq" : "id");
		return rv;
	}
	if (d->has_tag && (rv = proto_cur_int(c, &e->tag)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "tag: ");
		return rv;
	}
	rv = dec_range(c, 0, UINT32_MAX, "table index", &v);
	if (rv != PROTO_OK)
		return rv;
	e->table = (uint32_t) v;
	if ((rv = dec_range(c, d->op_lo,
	         d->ahead ? PROTO_WIRE_UPSERT_AHEAD : PROTO_OP_DELETE, "op",
	         &v)))
		return rv;
	e->ahead = v == PROTO_WIRE_UPSERT_AHEAD;
	e->op = e->ahead ? PROTO_OP_UPSERT : (proto_op) v;
	return PROTO_OK;
}

/* dec_event reads [seq, tag, table, op, [value, ...]] (PUSH) or
 * [id, table, op, [value, ...]] (CHANGES). */
static proto_err
dec_event(proto_cur *c, proto_arena *a, proto_event *e, const evlist_desc *d)
{
	proto_err rv;
	uint32_t i;

	if ((rv = dec_tuple(c, d->tuple)) != PROTO_OK
	    || (rv = dec_event_head(c, e, d)) != PROTO_OK)
		return rv;
	rv = dec_count(c, &e->nvals, c->lim->max_columns, "values");
	if (rv != PROTO_OK)
		return rv;
	if ((e->vals = proto_arena_array(a, e->nvals, sizeof(proto_value)))
	    == NULL)
		return dec_nomem(c);
	for (i = 0; i < e->nvals; i++) {
		if ((rv = proto_cur_value(c, a, &e->vals[i])) != PROTO_OK) {
			proto_preerr(c->err, c->errlen, "value %u: ", i);
			return rv;
		}
	}
	return PROTO_OK;
}

/* dec_events reads a PUSH's events or a CHANGES' changes; both count
 * against max_events. */
static proto_err
dec_events(proto_cur *c, proto_arena *a, proto_event **events, uint32_t *n,
    const evlist_desc *d)
{
	proto_err rv;
	uint32_t i;

	if ((rv = dec_count(c, n, c->lim->max_events, d->what)) != PROTO_OK)
		return rv;
	if ((*events = proto_arena_array(a, *n, sizeof(proto_event))) == NULL)
		return dec_nomem(c);
	for (i = 0; i < *n; i++) {
		if ((rv = dec_event(c, a, &(*events)[i], d)) != PROTO_OK) {
			proto_preerr(c->err, c->errlen, "%s %u: ", d->item, i);
			return rv;
		}
	}
	return PROTO_OK;
}

/* dec_outcome reads [seq, code, reason]. */
static proto_err
dec_outcome(proto_cur *c, proto_arena *a, proto_outcome *o)
{
	proto_err rv;
	int64_t code;

	if ((rv = dec_tuple(c, 3)) != PROTO_OK)
		return rv;
	if ((rv = proto_cur_int(c, &o->seq)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "seq: ");
		return rv;
	}
	rv = dec_range(
	    c, PROTO_OUT_DUPLICATE, PROTO_OUT_REJECTED, "code", &code);
	if (rv != PROTO_OK)
		return rv;
	o->code = (proto_outcome_code) code;
	if ((rv = dec_str(c, a, false, &o->reason)) != PROTO_OK)
		proto_preerr(c->err, c->errlen, "reason: ");
	return rv;
}

static proto_err
dec_outcomes(proto_cur *c, proto_arena *a, proto_outcome **o, uint32_t *n)
{
	proto_err rv;
	uint32_t i;

	rv = dec_count(c, n, c->lim->max_outcomes, "outcomes");
	if (rv != PROTO_OK)
		return rv;
	if ((*o = proto_arena_array(a, *n, sizeof(proto_outcome))) == NULL)
		return dec_nomem(c);
	for (i = 0; i < *n; i++) {
		if ((rv = dec_outcome(c, a, &(*o)[i])) != PROTO_OK) {
			proto_preerr(c->err, c->errlen, "outcome %u: ", i);
			return rv;
		}
	}
	return PROTO_OK;
}

/* dec_seqs reads [seq int, ...] of at most max_outcomes elements; the order
 * is checked afterwards by msg_check. */
static proto_err
dec_seqs(proto_cur *c, proto_arena *a, int64_t **v, uint32_t *n)
{
	proto_err rv;
	uint32_t i;

	if ((rv = dec_count(c, n, c->lim->max_outcomes, "seqs")) != PROTO_OK)
		return rv;
	if ((*v = proto_arena_array(a, *n, sizeof(int64_t))) == NULL)
		return dec_nomem(c);
	for (i = 0; i < *n; i++) {
		if ((rv = proto_cur_int(c, &(*v)[i])) != PROTO_OK) {
			proto_preerr(c->err, c->errlen, "element %u: ", i);
			return rv;
		}
	}
	return PROTO_OK;
}

static proto_err
dec_field(proto_cur *c, proto_arena *a, proto_msg *m, const field_desc *f)
{
	/* Arrays: n is the count at f->off, the elements are at f->aoff. */
	uint32_t *n = FIELD(uint32_t, m, f->off);

	switch (f->kind) {
	case FK_INT:
		return proto_cur_int(c, FIELD(int64_t, m, f->off));
	case FK_BOOL:
		return proto_cur_bool(c, FIELD(bool, m, f->off));
	case FK_STR:
		return dec_str(c, a, false, FIELD(const char *, m, f->off));
	case FK_NAME:
		return dec_str(c, a, true, FIELD(const char *, m, f->off));
	case FK_TABLES:
		return dec_tables(c, a, FIELD(proto_table *, m, f->aoff), n);
	case FK_EVENTS:
	case FK_CHANGES:
		return dec_events(c, a, FIELD(proto_event *, m, f->aoff), n,
		    f->kind == FK_EVENTS ? &msg_push_events
		                         : &msg_changes_events);
	case FK_SEQS:
		return dec_seqs(c, a, FIELD(int64_t *, m, f->aoff), n);
	default:
		return dec_outcomes(
		    c, a, FIELD(proto_outcome *, m, f->aoff), n);
	}
}

/* dec_key reads a body key and finds it among the fields of d that belong
 * to version: *idx = nfields if unknown. */
static proto_err
dec_key(proto_cur *c, const body_desc *d, int version, uint32_t i, size_t *idx)
{
	const uint8_t *s;
	uint32_t len;
	proto_err rv;

	if ((rv = proto_cur_str(c, &s, &len)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "body: key %u: ", i);
		return rv;
	}
	for (*idx = 0; *idx < d->nfields; (*idx)++) {
		const char *name = d->fields[*idx].name;
		if (strlen(name) == len && memcmp(name, s, len) == 0
		    && msg_field_on(&d->fields[*idx], version))
			break;
	}
	return PROTO_OK;
}

/* dec_body reads the body map of version: known keys once each, unknown
 * keys skipped, then every field of d in that version must have been
 * seen. */
static proto_err
dec_body(proto_cur *c, proto_arena *a, proto_msg *m, const body_desc *d,
    int version)
{
	uint32_t n, i, seen = 0;
	proto_err rv;
	size_t k;

	if ((rv = proto_cur_map(c, &n)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "body: ");
		return rv;
	}
	for (i = 0; i < n; i++) {
		if ((rv = dec_key(c, d, version, i, &k)) != PROTO_OK)
			return rv;
		if (k == d->nfields) {
			if ((rv = proto_cur_skip(c)) != PROTO_OK)
				proto_preerr(c->err, c->errlen,
				    "body: unknown key %u: ", i);
			if (rv != PROTO_OK)
				return rv;
			continue;
		}
		if (seen & (1u << k)) {
			proto_seterr(c->err, c->errlen,
			    "duplicate field \"%s\"", d->fields[k].name);
			return PROTO_EPROTO;
		}
		seen |= 1u << k;
		if ((rv = dec_field(c, a, m, &d->fields[k])) != PROTO_OK) {
			proto_preerr(c->err, c->errlen,
			    "field \"%s\": ", d->fields[k].name);
			return rv;
		}
	}
	for (k = 0; k < d->nfields; k++) {
		if (!(seen & (1u << k)) && !d->fields[k].optional
		    && msg_field_on(&d->fields[k], version)) {
			proto_seterr(c->err, c->errlen, "missing field \"%s\"",
			    d->fields[k].name);
			return PROTO_EPROTO;
		}
	}
	return PROTO_OK;
}

/* dec_envelope reads [1, type, body], a version 1 message. The version
 * comes first and is checked before the element count, so another
 * version, whose envelope has another shape, is reported as
 * PROTO_EVERSION. */
static proto_err
dec_envelope(proto_cur *c, proto_arena *a, proto_msg *m)
{
	const body_desc *d;
	int64_t version, type;
	proto_err rv;
	uint32_t n;

	if ((rv = proto_cur_array(c, &n)) != PROTO_OK
	    || (n > 0 && (rv = proto_cur_int(c, &version)) != PROTO_OK)) {
		proto_preerr(c->err, c->errlen, "envelope: ");
		return rv;
	}
	if (n > 0 && version != PROTO_VERSION_PLAIN) {
		proto_seterr(c->err, c->errlen,
		    "unsupported protocol version %lld (expected %d)",
		    (long long) version, PROTO_VERSION_PLAIN);
		return PROTO_EVERSION;
	}
	if (n != 3) {
		proto_seterr(c->err, c->errlen,
		    "envelope: expected array of 3 elements, got %u", n);
		return PROTO_EPROTO;
	}
	if ((rv = proto_cur_int(c, &type)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "envelope: type: ");
		return rv;
	}
	if ((d = msg_body_for(type)) == NULL) {
		proto_seterr(c->err, c->errlen, "unknown message type %lld",
		    (long long) type);
		return PROTO_EPROTO;
	}
	m->type = (proto_type) type;
	if ((rv = dec_body(c, a, m, d, PROTO_VERSION_PLAIN)) != PROTO_OK)
		return rv;
	if (!msg_check(m, c->err, c->errlen))
		return PROTO_EPROTO;
	return PROTO_OK;
}

/*
 * start makes the arena and the message of a decode of len bytes under
 * lim (resolved into l); PROTO_ETOOBIG or PROTO_ENOMEM with the reason in
 * err otherwise.
 */
static proto_err
start(size_t len, const proto_limits *lim, proto_limits *l, proto_msg **m,
    char *err, size_t errlen)
{
	proto_arena *a;

	*m = NULL;
	proto_limits_resolve(lim, l);
	if (len > l->max_msg_bytes) {
		proto_seterr(err, errlen,
		    "message of %zu bytes exceeds the limit of %zu bytes", len,
		    l->max_msg_bytes);
		return PROTO_ETOOBIG;
	}
	if ((a = proto_arena_new()) == NULL
	    || (*m = proto_arena_alloc(a, sizeof(**m))) == NULL) {
		proto_arena_free(a);
		proto_seterr(err, errlen, "out of memory");
		return PROTO_ENOMEM;
	}
	(*m)->arena = a;
	return PROTO_OK;
}

/* finish refuses bytes left after a decoded message, or hands it out. */
static proto_err
finish(proto_cur *c, proto_msg *m, proto_msg **out, char *err, size_t errlen)
{
	if (proto_cur_left(c) != 0) {
		proto_seterr(err, errlen,
		    "%zu trailing bytes after the message", proto_cur_left(c));
		proto_arena_free(m->arena);
		return PROTO_EPROTO;
	}
	*out = m;
	return PROTO_OK;
}

proto_err
proto_msg_decode(const uint8_t *buf, size_t len, const proto_limits *lim,
    proto_msg **out, char *err, size_t errlen)
{
	static const uint8_t empty[1];
	proto_msg *m;
	proto_limits l;
	proto_cur c;
	proto_err rv;

	*out = NULL;
	if ((rv = start(len, lim, &l, &m, err, errlen)) != PROTO_OK)
		return rv;
	proto_cur_init(&c, buf != NULL ? buf : empty, len, &l, err, errlen);
	if ((rv = dec_envelope(&c, m->arena, m)) != PROTO_OK) {
		proto_arena_free(m->arena);
		return rv;
	}
	return finish(&c, m, out, err, errlen);
}

/* set_code copies a code of the auth map into the arena; NULL for "". */
static proto_err
set_code(proto_arena *a, const char *code, const char **out)
{
	*out = NULL;
	if (code[0] == '\0')
		return PROTO_OK;
	*out = proto_arena_strndup(a, code, strlen(code));
	return *out != NULL ? PROTO_OK : PROTO_ENOMEM;
}

proto_err
proto_body_decode(const proto_env *env, const proto_limits *lim,
    proto_msg **out, char *err, size_t errlen)
{
	static const uint8_t empty[1];
	const body_desc *d = msg_body_for(env->type);
	proto_agent_hdr *hdr;
	proto_msg *m;
	proto_limits l;
	proto_cur c;
	proto_err rv;

	*out = NULL;
	if (env->version != PROTO_VERSION || d == NULL) {
		proto_seterr(err, errlen,
		    "no version %d body of message type %d", PROTO_VERSION,
		    (int) env->type);
		return PROTO_EINVAL;
	}
	if ((rv = start(env->body_len, lim, &l, &m, err, errlen)) != PROTO_OK)
		return rv;
	m->type = env->type;
	proto_cur_init(&c, env->body != NULL ? env->body : empty,
	    env->body_len, &l, err, errlen);
	if ((rv = dec_body(&c, m->arena, m, d, PROTO_VERSION)) != PROTO_OK)
		goto fail;
	/* The identity of a request is the auth map's. */
	hdr = m->type == PROTO_HELLO ? &m->u.hello.hdr
	    : m->type == PROTO_PUSH  ? &m->u.push.hdr
	    : m->type == PROTO_PULL  ? &m->u.pull.hdr
	                             : NULL;
	if (hdr != NULL
	    && ((rv = set_code(m->arena, env->auth.branch, &hdr->branch))
	            != PROTO_OK
	        || (rv = set_code(m->arena, env->auth.till, &hdr->till))
	            != PROTO_OK)) {
		proto_seterr(err, errlen, "out of memory");
		goto fail;
	}
	if (!msg_check(m, err, errlen)) {
		rv = PROTO_EPROTO;
		goto fail;
	}
	return finish(&c, m, out, err, errlen);
fail:
	proto_arena_free(m->arena);
	return rv;
}

void
proto_msg_free(proto_msg *m)
{
	/* The message itself lives in its arena. */
	if (m != NULL)
		proto_arena_free(m->arena);
}
