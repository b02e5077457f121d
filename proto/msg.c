/*
 * msg.c: branchsync messages to msgpack bytes, and what both directions
 * share.
 *
 * Each message type's body is described by one table of fields (name,
 * kind, offset in proto_msg; msg_int.h). The encoder here walks the table
 * with msgpack-c's packer; the decoder (msgdec.c) reads the same table.
 * PUSH, ACK and CHANGES are checked for consistency by the functions here
 * on both sides, so what encodes also decodes. PUSH and CHANGES share the
 * tables array and the event code; an event list description
 * (evlist_desc) holds what differs between them. Also here: the limits'
 * defaults, type names and value equality.
 */
#include <msgpack.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"
#include "proto_int.h"

void
proto_limits_default(proto_limits *lim)
{
	lim->max_msg_bytes = 16 * 1024 * 1024;
	lim->max_events = 10000;
	lim->max_tables = 64;
	lim->max_columns = 256;
	lim->max_value_bytes = 1024 * 1024;
	lim->max_outcomes = 10000;
	lim->max_depth = 8;
}

void
proto_limits_resolve(const proto_limits *in, proto_limits *out)
{
	proto_limits d;

	proto_limits_default(&d);
	*out = in != NULL ? *in : d;
	if (out->max_msg_bytes == 0)
		out->max_msg_bytes = d.max_msg_bytes;
	if (out->max_events == 0)
		out->max_events = d.max_events;
	if (out->max_tables == 0)
		out->max_tables = d.max_tables;
	if (out->max_columns == 0)
		out->max_columns = d.max_columns;
	if (out->max_value_bytes == 0)
		out->max_value_bytes = d.max_value_bytes;
	if (out->max_outcomes == 0)
		out->max_outcomes = d.max_outcomes;
	if (out->max_depth == 0)
		out->max_depth = d.max_depth;
}

const char *
proto_type_name(int type)
{
	switch (type) {
	case PROTO_HELLO:
		return "hello";
	case PROTO_WELCOME:
		return "welcome";
	case PROTO_PUSH:
		return "push";
	case PROTO_ACK:
		return "ack";
	case PROTO_PULL:
		return "pull";
	case PROTO_CHANGES:
		return "changes";
	case PROTO_ERROR:
		return "error";
	default:
		return "unknown";
	}
}

/* Floats compare by bit pattern: a NaN equals itself after a round trip,
 * and 0.0 differs from -0.0, as both survive the wire unchanged. */
bool
proto_value_eq(const proto_value *a, const proto_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case PROTO_NIL:
		return true;
	case PROTO_BOOL:
		return a->u.b == b->u.b;
	case PROTO_INT:
		return a->u.i == b->u.i;
	case PROTO_FLOAT:
		return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
	case PROTO_STR:
	case PROTO_BIN:
		if (a->len != b->len)
			return false;
		return a->len == 0 || memcmp(a->u.p, b->u.p, a->len) == 0;
	default:
		return false;
	}
}

/* ---- body descriptions ----------------------------------------------- */

const evlist_desc msg_push_events
    = {"events", "event", 5, true, PROTO_OP_NONE, true, false};
const evlist_desc msg_changes_events
    = {"changes", "change", 4, false, PROTO_OP_UPSERT, false, true};

#define F(name, kind, member)                                                 \
	{                                                                     \
		name, kind, offsetof(proto_msg, u.member), 0, false, false    \
	}
/* FP describes a name of version 1 only (see field_desc.plain). */
#define FP(name, member)                                                      \
	{                                                                     \
		name, FK_NAME, offsetof(proto_msg, u.member), 0, false, true  \
	}
/* FOP describes an optional name of version 1 only: absent is NULL. */
#define FOP(name, member)                                                     \
	{                                                                     \
		name, FK_NAME, offsetof(proto_msg, u.member), 0, true, true   \
	}
/* L describes an array field: its count and its element pointer. */
#define L(name, kind, count, array)                                           \
	{                                                                     \
		name, kind, offsetof(proto_msg, u.count),                     \
		    offsetof(proto_msg, u.array), false, false                \
	}
#define HDR_FIELDS(t)                                                         \
	FP("branch", t.hdr.branch), FP("key", t.hdr.key),                     \
	    F("log_id", FK_NAME, t.hdr.log_id),                               \
	    F("queue_events", FK_INT, t.hdr.queue_events),                    \
	    F("queue_bytes", FK_INT, t.hdr.queue_bytes),                      \
	    F("oldest_age_s", FK_INT, t.hdr.oldest_age_s),                    \
	    FOP("till", t.hdr.till)

static const field_desc hello_fields[] = {
    HDR_FIELDS(hello),
    F("high_seq", FK_INT, hello.high_seq),
    F("version", FK_NAME, hello.version),
};
static const field_desc welcome_fields[] = {
    F("watermark", FK_INT, welcome.watermark),
    F("tag", FK_INT, welcome.tag),
    F("version", FK_NAME, welcome.version),
    F("max_events", FK_INT, welcome.max_events),
    F("max_bytes", FK_INT, welcome.max_bytes),
    L("retry", FK_SEQS, welcome.nretry, welcome.retry),
    L("discard", FK_SEQS, welcome.ndiscard, welcome.discard),
};
static const field_desc push_fields[] = {
    HDR_FIELDS(push),
    L("tables", FK_TABLES, push.ntables, push.tables),
    L("events", FK_EVENTS, push.nevents, push.events),
};
static const field_desc ack_fields[] = {
    F("log_id", FK_NAME, ack.log_id),
    F("watermark", FK_INT, ack.watermark),
    F("tag", FK_INT, ack.tag),
    F("applied", FK_INT, ack.applied),
    F("duplicates", FK_INT, ack.duplicates),
    L("outcomes", FK_OUTCOMES, ack.noutcomes, ack.outcomes),
};
static const field_desc pull_fields[] = {
    HDR_FIELDS(pull),
    F("cursor", FK_INT, pull.cursor),
    F("table", FK_NAME, pull.table),
    F("max_rows", FK_INT, pull.max_rows),
    F("max_bytes", FK_INT, pull.max_bytes),
};
static const field_desc changes_fields[] = {
    F("cursor", FK_INT, changes.cursor),
    F("more", FK_BOOL, changes.more),
    L("tables", FK_TABLES, changes.ntables, changes.tables),
    L("changes", FK_CHANGES, changes.nchanges, changes.changes),
};
static const field_desc error_fields[] = {
    F("code", FK_INT, error.code),
    F("message", FK_STR, error.message),
    F("retry", FK_BOOL, error.retry),
};
#undef F
#undef FP
#undef FOP
#undef L

#define BODY(a)                                                               \
	{                                                                     \
		a, sizeof(a) / sizeof(a[0])                                   \
	}

const body_desc *
msg_body_for(int64_t type)
{
	static const body_desc hello = BODY(hello_fields);
	static const body_desc welcome = BODY(welcome_fields);
	static const body_desc push = BODY(push_fields);
	static const body_desc ack = BODY(ack_fields);
	static const body_desc pull = BODY(pull_fields);
	static const body_desc changes = BODY(changes_fields);
	static const body_desc error = BODY(error_fields);

	switch (type) {
	case PROTO_HELLO:
		return &hello;
	case PROTO_WELCOME:
		return &welcome;
	case PROTO_PUSH:
		return &push;
	case PROTO_ACK:
		return &ack;
	case PROTO_PULL:
		return &pull;
	case PROTO_CHANGES:
		return &changes;
	case PROTO_ERROR:
		return &error;
	default:
		return NULL;
	}
}

bool
msg_field_on(const field_desc *f, int version)
{
	return version == PROTO_VERSION_PLAIN || !f->plain;
}

/* ---- consistency checks (encoder input and decoder output) ----------- */

/*
 * msg_name_check accepts a name: at most PROTO_NAME_MAX bytes of valid
 * UTF-8 without control characters (U+0000..U+001F, U+007F). Names end up
 * in PostgreSQL (as parameters and in reject rows, status rows such as the
 * agent's version) and in log lines; PostgreSQL refuses invalid UTF-8 in
 * any statement, so a request carrying one would fail for ever.
 */
bool
msg_name_check(const uint8_t *s, size_t len, char *err, size_t errlen)
{
	if (len > PROTO_NAME_MAX) {
		proto_seterr(err, errlen, "a name of %zu bytes (at most %d)",
		    len, PROTO_NAME_MAX);
		return false;
	}
	for (size_t i = 0; i < len;) {
		size_t n = proto_utf8_len(s + i, len - i);
		if (n == 0) {
			proto_seterr(
			    err, errlen, "not valid UTF-8 (byte %zu)", i);
			return false;
		}
		if (s[i] == 0) {
			proto_seterr(err, errlen, "str contains a NUL byte");
			return false;
		}
		if (s[i] < 0x20 || s[i] == 0x7f) {
			proto_seterr(err, errlen,
			    "control character 0x%02x (byte %zu) in a name",
			    s[i], i);
			return false;
		}
		i += n;
	}
	return true;
}

bool
msg_code_check(const uint8_t *s, size_t len, char *err, size_t errlen)
{
	if (len == 0 || len > PROTO_CODE_MAX) {
		proto_seterr(err, errlen, "%zu bytes, expected 1 to %d", len,
		    PROTO_CODE_MAX);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		        || (c >= '0' && c <= '9') || c == '_' || c == '-'
		        || c == '.')) {
			proto_seterr(err, errlen,
			    "byte %zu (0x%02x) is not a letter, digit, \"_\", "
			    "\"-\" or \".\"",
			    i, c);
			return false;
		}
	}
	return true;
}

bool
proto_code_valid(const char *code)
{
	return msg_code_check((const uint8_t *) code, strlen(code), NULL, 0);
}

static bool
cname_check(const char *s, char *err, size_t errlen)
{
	return msg_name_check((const uint8_t *) s, strlen(s), err, errlen);
}

static bool
table_check(const proto_table *t, char *err, size_t errlen)
{
	uint32_t i;

	if (t->name == NULL) {
		proto_seterr(err, errlen, "name is NULL");
		return false;
	}
	if (!cname_check(t->name, err, errlen)) {
		proto_preerr(err, errlen, "name: ");
		return false;
	}
	if (t->ncols == 0 || t->cols == NULL) {
		proto_seterr(err, errlen, "no columns");
		return false;
	}
	for (i = 0; i < t->ncols; i++) {
		if (t->cols[i] == NULL) {
			proto_seterr(err, errlen, "column %u is NULL", i);
			return false;
		}
		if (!cname_check(t->cols[i], err, errlen)) {
			proto_preerr(err, errlen, "column %u: ", i);
			return false;
		}
	}
	if (t->nkey < 1 || t->nkey > t->ncols) {
		proto_seterr(err, errlen, "nkey %u not between 1 and %u",
		    t->nkey, t->ncols);
		return false;
	}
	return true;
}

static bool
value_check(const proto_value *v, char *err, size_t errlen)
{
	if (v->type < PROTO_NIL || v->type > PROTO_BIN) {
		proto_seterr(err, errlen, "unknown value type %d", v->type);
		return false;
	}
	if ((v->type == PROTO_STR && v->u.s == NULL)
	    || (v->type == PROTO_BIN && v->len > 0 && v->u.p == NULL)) {
		proto_seterr(err, errlen, "%s pointer is NULL",
		    v->type == PROTO_STR ? "str" : "bin");
		return false;
	}
	return true;
}

/* event_check verifies one event of list d against the tables. */
static bool
event_check(const proto_table *tables, uint32_t ntables, const proto_event *e,
    const evlist_desc *d, char *err, size_t errlen)
{
	const proto_table *t;
	uint32_t want, i;

	if (e->table >= ntables) {
		proto_seterr(err, errlen,
		    "table index %u out of range (%u %s)", e->table, ntables,
		    ntables == 1 ? "table" : "tables");
		return false;
	}
	if ((int) e->op < (int) d->op_lo || (int) e->op > PROTO_OP_DELETE) {
		proto_seterr(err, errlen, "op %d not between %d and %d",
		    (int) e->op, (int) d->op_lo, PROTO_OP_DELETE);
		return false;
	}
	if (e->ahead && (!d->ahead || e->op != PROTO_OP_UPSERT)) {
		proto_seterr(err, errlen, "ahead set on op %d of a %s",
		    (int) e->op, d->item);
		return false;
	}
	t = &tables[e->table];
	want = e->op == PROTO_OP_UPSERT ? t->ncols : t->nkey;
	if (e->nvals != want || (want > 0 && e->vals == NULL)) {
		proto_seterr(err, errlen,
		    "%u values for table \"%s\", expected %u for op %d",
		    e->nvals, t->name, want, (int) e->op);
		return false;
	}
	for (i = 0; i < e->nvals; i++) {
		if (!value_check(&e->vals[i], err, errlen)) {
			proto_preerr(err, errlen, "value %u: ", i);
			return false;
		}
	}
	return true;
}

/* events_check verifies what msg.h promises about a PUSH or a CHANGES:
 * every table is well formed, every event names a table, has an op
 * allowed in d and carries the right number of values for its op; and,
 * if d says so, seq strictly increases. (A PUSH's seq order is the hub's
 * business: it answers with an ERROR the agent can log.) */
static bool
events_check(const proto_table *tables, uint32_t ntables,
    const proto_event *events, uint32_t nevents, const evlist_desc *d,
    char *err, size_t errlen)
{
	uint32_t i;

	if ((ntables > 0 && tables == NULL)
	    || (nevents > 0 && events == NULL)) {
		proto_seterr(
		    err, errlen, "tables or %s array is NULL", d->what);
		return false;
	}
	for (i = 0; i < ntables; i++) {
		if (!table_check(&tables[i], err, errlen)) {
			proto_preerr(
			    err, errlen, "field \"tables\": table %u: ", i);
			return false;
		}
	}
	for (i = 0; i < nevents; i++) {
		if (!event_check(
		        tables, ntables, &events[i], d, err, errlen)) {
			proto_preerr(err, errlen,
			    "field \"%s\": %s %u: ", d->what, d->item, i);
			return false;
		}
		if (d->increasing && i > 0
		    && events[i].seq <= events[i - 1].seq) {
			proto_seterr(err, errlen,
			    "field \"%s\": %s %u: id %lld not above the "
			    "previous id %lld",
			    d->what, d->item, i, (long long) events[i].seq,
			    (long long) events[i - 1].seq);
			return false;
		}
	}
	return true;
}

/* changes_check adds to events_check that the cursor is not behind the
 * last change: the agent stores it and pulls from there next time. It may
 * be ahead (the hub skips changes of tables it no longer sends). */
static bool
changes_check(const proto_changes *ch, char *err, size_t errlen)
{
	int64_t last;

	if (!events_check(ch->tables, ch->ntables, ch->changes, ch->nchanges,
	        &msg_changes_events, err, errlen))
		return false;
	if (ch->nchanges == 0)
		return true;
	last = ch->changes[ch->nchanges - 1].seq;
	if (ch->cursor < last) {
		proto_seterr(err, errlen,
		    "field \"cursor\": %lld is below the last change id %lld",
		    (long long) ch->cursor, (long long) last);
		return false;
	}
	return true;
}

static bool
outcome_check(const proto_outcome *o, char *err, size_t errlen)
{
	if (o->code < PROTO_OUT_DUPLICATE || o->code > PROTO_OUT_REJECTED) {
		proto_seterr(
		    err, errlen, "code %d out of range", (int) o->code);
		return false;
	}
	if (o->reason == NULL) {
		proto_seterr(err, errlen, "reason is NULL");
		return false;
	}
	return true;
}

static bool
ack_check(const proto_ack *ack, char *err, size_t errlen)
{
	uint32_t i;

	if (ack->noutcomes > 0 && ack->outcomes == NULL) {
		proto_seterr(err, errlen, "field \"outcomes\" is NULL");
		return false;
	}
	for (i = 0; i < ack->noutcomes; i++) {
		if (!outcome_check(&ack->outcomes[i], err, errlen)) {
			proto_preerr(err, errlen,
			    "field \"outcomes\": outcome %u: ", i);
			return false;
		}
	}
	return true;
}

/* seqs_check verifies a seq list (FK_SEQS field f of m): an array unless
 * empty, and strictly increasing. */
static bool
seqs_check(const proto_msg *m, const field_desc *f, char *err, size_t errlen)
{
	uint32_t n = *FIELD(const uint32_t, m, f->off), i;
	const int64_t *v = *FIELD(const int64_t *const, m, f->aoff);

	if (n > 0 && v == NULL) {
		proto_seterr(err, errlen, "field \"%s\" is NULL", f->name);
		return false;
	}
	for (i = 1; i < n; i++) {
		if (v[i] <= v[i - 1]) {
			proto_seterr(err, errlen,
			    "field \"%s\": element %u: seq %lld not above the "
			    "previous seq %lld",
			    f->name, i, (long long) v[i],
			    (long long) v[i - 1]);
			return false;
		}
	}
	return true;
}

/* msg_check verifies the parts of m that span fields or elements: seq
 * lists increasing; PUSH, ACK and CHANGES consistent. The encoder runs it
 * on its input and the decoder on its output. */
bool
msg_check(const proto_msg *m, char *err, size_t errlen)
{
	const body_desc *d = msg_body_for(m->type);
	const proto_push *p = &m->u.push;
	size_t i;

	for (i = 0; d != NULL && i < d->nfields; i++)
		if (d->fields[i].kind == FK_SEQS
		    && !seqs_check(m, &d->fields[i], err, errlen))
			return false;
	switch (m->type) {
	case PROTO_PUSH:
		return events_check(p->tables, p->ntables, p->events,
		    p->nevents, &msg_push_events, err, errlen);
	case PROTO_ACK:
		return ack_check(&m->u.ack, err, errlen);
	case PROTO_CHANGES:
		return changes_check(&m->u.changes, err, errlen);
	default:
		return true;
	}
}

/* body_check verifies m before encoding a body of version: strings set,
 * then msg_check. */
static bool
body_check(const proto_msg *m, const body_desc *d, int version, char *err,
    size_t errlen)
{
	size_t i;

	for (i = 0; i < d->nfields; i++) {
		const field_desc *f = &d->fields[i];
		const char *str;
		if ((f->kind != FK_STR && f->kind != FK_NAME)
		    || !msg_field_on(f, version))
			continue;
		str = *FIELD(const char *, m, f->off);
		if (str == NULL && f->optional)
			continue;
		if (str == NULL) {
			proto_seterr(
			    err, errlen, "field \"%s\" is NULL", f->name);
			return false;
		}
		if (f->kind == FK_NAME && !cname_check(str, err, errlen)) {
			proto_preerr(err, errlen, "field \"%s\": ", f->name);
			return false;
		}
	}
	return msg_check(m, err, errlen);
}

/* ---- encoding -------------------------------------------------------- */

/* The packer's write callback. A failed append is only ever ENOMEM; the
 * packer hands the nonzero result back through every msgpack_pack_* call,
 * and the encoder ORs them into one status. */
static int
enc_write_cb(void *data, const char *buf, size_t len)
{
	return proto_buf_append(data, buf, len) == PROTO_OK ? 0 : -1;
}

static int
pack_cstr(msgpack_packer *pk, const char *s)
{
	return msgpack_pack_str_with_body(pk, s, strlen(s));
}

static int
pack_value(msgpack_packer *pk, const proto_value *v)
{
	switch (v->type) {
	case PROTO_NIL:
		return msgpack_pack_nil(pk);
	case PROTO_BOOL:
		return v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	case PROTO_INT:
		return msgpack_pack_int64(pk, v->u.i);
	case PROTO_FLOAT:
		return msgpack_pack_double(pk, v->u.f);
	case PROTO_STR:
		return msgpack_pack_str_with_body(pk, v->u.s, v->len);
	default:
		return msgpack_pack_bin_with_body(pk, v->u.p, v->len);
	}
}

static int
pack_tables(msgpack_packer *pk, const proto_table *tables, uint32_t n)
{
	int rc = msgpack_pack_array(pk, n);
	uint32_t i, j;

	for (i = 0; i < n; i++) {
		const proto_table *t = &tables[i];
		rc |= msgpack_pack_array(pk, 3);
		rc |= pack_cstr(pk, t->name);
		rc |= msgpack_pack_array(pk, t->ncols);
		for (j = 0; j < t->ncols; j++)
			rc |= pack_cstr(pk, t->cols[j]);
		rc |= msgpack_pack_uint32(pk, t->nkey);
	}
	return rc;
}

/* pack_events writes [seq, tag, table, op, values] (PUSH) or
 * [id, table, op, values] (CHANGES: no tag), as d says. */
static int
pack_events(msgpack_packer *pk, const proto_event *events, uint32_t n,
    const evlist_desc *d)
{
	int rc = msgpack_pack_array(pk, n);
	uint32_t i, j;

	for (i = 0; i < n; i++) {
		const proto_event *e = &events[i];
		rc |= msgpack_pack_array(pk, d->tuple);
		rc |= msgpack_pack_int64(pk, e->seq);
		if (d->has_tag)
			rc |= msgpack_pack_int64(pk, e->tag);
		rc |= msgpack_pack_uint32(pk, e->table);
		rc |= msgpack_pack_int(
		    pk, e->ahead ? PROTO_WIRE_UPSERT_AHEAD : (int) e->op);
		rc |= msgpack_pack_array(pk, e->nvals);
		for (j = 0; j < e->nvals; j++)
			rc |= pack_value(pk, &e->vals[j]);
	}
	return rc;
}

static int
pack_outcomes(msgpack_packer *pk, const proto_outcome *o, uint32_t n)
{
	int rc = msgpack_pack_array(pk, n);
	uint32_t i;

	for (i = 0; i < n; i++) {
		rc |= msgpack_pack_array(pk, 3);
		rc |= msgpack_pack_int64(pk, o[i].seq);
		rc |= msgpack_pack_int(pk, (int) o[i].code);
		rc |= pack_cstr(pk, o[i].reason);
	}
	return rc;
}

static int
pack_seqs(msgpack_packer *pk, const int64_t *v, uint32_t n)
{
	int rc = msgpack_pack_array(pk, n);
	uint32_t i;

	for (i = 0; i < n; i++)
		rc |= msgpack_pack_int64(pk, v[i]);
	return rc;
}

static int
pack_field(msgpack_packer *pk, const proto_msg *m, const field_desc *f)
{
	/* Arrays: n is the count at f->off, the elements are at f->aoff. */
#define N (*FIELD(const uint32_t, m, f->off))
	switch (f->kind) {
	case FK_INT:
		return msgpack_pack_int64(
		    pk, *FIELD(const int64_t, m, f->off));
	case FK_BOOL:
		return *FIELD(const bool, m, f->off) ? msgpack_pack_true(pk)
		                                     : msgpack_pack_false(pk);
	case FK_STR:
	case FK_NAME:
		return pack_cstr(pk, *FIELD(const char *const, m, f->off));
	case FK_TABLES:
		return pack_tables(
		    pk, *FIELD(proto_table *const, m, f->aoff), N);
	case FK_EVENTS:
	case FK_CHANGES:
		return pack_events(pk, *FIELD(proto_event *const, m, f->aoff),
		    N,
		    f->kind == FK_EVENTS ? &msg_push_events
		                         : &msg_changes_events);
	case FK_SEQS:
		return pack_seqs(
		    pk, *FIELD(const int64_t *const, m, f->aoff), N);
	default:
		return pack_outcomes(
		    pk, *FIELD(proto_outcome *const, m, f->aoff), N);
	}
#undef N
}

/* written says whether field f of m goes into a body of version: it
 * belongs to that version and, if optional, is set. */
static bool
written(const proto_msg *m, const field_desc *f, int version)
{
	return msg_field_on(f, version)
	    && !(f->optional && *FIELD(const char *const, m, f->off) == NULL);
}

/* pack_body writes the body map of m (fields of d) for version. */
static int
pack_body(
    msgpack_packer *pk, const proto_msg *m, const body_desc *d, int version)
{
	size_t i, n = 0;
	int rc;

	for (i = 0; i < d->nfields; i++)
		n += written(m, &d->fields[i], version);
	rc = msgpack_pack_map(pk, (uint32_t) n);
	for (i = 0; i < d->nfields; i++) {
		if (!written(m, &d->fields[i], version))
			continue;
		rc |= pack_cstr(pk, d->fields[i].name);
		rc |= pack_field(pk, m, &d->fields[i]);
	}
	return rc;
}

/*
 * encode appends m to out: with envelope, the version 1 message
 * [1, type, body]; without, the version 2 body map alone.
 */
static proto_err
encode(const proto_msg *m, bool envelope, proto_buf *out, char *err,
    size_t errlen)
{
	const body_desc *d = msg_body_for(m->type);
	int version = envelope ? PROTO_VERSION_PLAIN : PROTO_VERSION;
	size_t old = out->len;
	msgpack_packer pk;
	int rc = 0;

	if (d == NULL) {
		proto_seterr(err, errlen, "cannot encode message type %d (%s)",
		    (int) m->type, proto_type_name(m->type));
		return PROTO_EINVAL;
	}
	if (!body_check(m, d, version, err, errlen))
		return PROTO_EINVAL;
	msgpack_packer_init(&pk, out, enc_write_cb);
	if (envelope) {
		rc |= msgpack_pack_array(&pk, 3);
		rc |= msgpack_pack_uint32(&pk, PROTO_VERSION_PLAIN);
		rc |= msgpack_pack_uint32(&pk, (uint32_t) m->type);
	}
	rc |= pack_body(&pk, m, d, version);
	if (rc != 0) {
		out->len = old; /* leave no half message behind */
		proto_seterr(err, errlen, "out of memory");
		return PROTO_ENOMEM;
	}
	return PROTO_OK;
}

proto_err
proto_msg_encode(const proto_msg *m, proto_buf *out, char *err, size_t errlen)
{
	return encode(m, true, out, err, errlen);
}

proto_err
proto_body_encode(const proto_msg *m, proto_buf *out, char *err, size_t errlen)
{
	return encode(m, false, out, err, errlen);
}
