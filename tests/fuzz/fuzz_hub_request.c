/*
 * fuzz_hub_request.c: libFuzzer target for the hub's request path short of
 * the database: decode, check the header's shape, validate the batch
 * against the allow-list. What comes after (authentication, the apply in
 * PostgreSQL) runs against a real PostgreSQL in the integration tests
 * (test_hostile, test_rejects, ...), never against a stand-in.
 *
 * Each input is one request, handled by the hub's own code up to its
 * first database call (hub/request.c, what hub/server.c runs on every
 * request): request_open() reads the envelope with the workers' limits
 * and refuses a reply type; for version 2, the MAC is computed over the
 * auth map and the body's digest with a fixed secret (as serverauth.c
 * does; a fuzzer cannot forge one, so the body is then decoded anyway:
 * request_body(), what a worker runs once the MAC matched); for version 1
 * (accept_plain_keys) request_decode() decodes the whole message. Either
 * checks the header's shape and makes the ERROR reply (encoded and
 * decoded again here); a PUSH then goes through apply_check() and
 * apply_event_reason(), with one apply_ctx kept across inputs as a
 * worker keeps it, so its cache of table mappings is exercised too.
 *
 * Oracles:
 *   - the header's names are what the decoder promises: valid UTF-8
 *     without control characters (PostgreSQL refuses invalid UTF-8 in any
 *     statement, so such a name would fail a batch for ever);
 *   - the allow-list: an event that would reach SQL belongs to a table of
 *     the catalog that is not a down table, sends no column the table
 *     lacks (except is_synced) and no "branch_id" (its branch column),
 *     has no NULL key value and holds no NUL byte;
 *     an event of any other table is rejected with a reason;
 *   - every value of an event that reaches SQL goes through
 *     pgval_array_elem, which must give one array element that reads back
 *     as the same value, and pgval_json, which must give JSON that
 *     jansson (and so jsonb) accepts.
 *
 * The allow-list is built here by hand, as catalog_load() would fill it
 * from PostgreSQL for these CREATE TABLEs (static, read-only):
 *
 *   transactions(branch_id int, id bigint, store_id int, total_cost
 *     bigint, payment_type text, created_at timestamptz, tax float8,
 *     PRIMARY KEY (branch_id, id))                      conflict overwrite
 *   payments(branch_id int, transaction_id bigint, line_no int, method
 *     text, amount bigint, PRIMARY KEY (branch_id, transaction_id,
 *     line_no), FOREIGN KEY (branch_id, transaction_id) REFERENCES
 *     transactions)                                     conflict insert_only
 *   transaction_items(branch_id int, id bigint, transaction_id bigint,
 *     qty int, note bytea, updated_at timestamptz, PRIMARY KEY
 *     (branch_id, id))                 conflict last_writer_wins updated_at
 *   products(id bigint PRIMARY KEY, name text, price bigint)      down
 *   branch_prices(branch_id int, product_id bigint, price bigint,
 *     PRIMARY KEY (branch_id, product_id))           down, scope branch_id
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "apply.h"
#include "catalog.h"
#include "proto/auth.h"
#include "config.h"
#include "fuzz_common.h"
#include "log.h"
#include "pgval.h"
#include "request.h"

#define COL(n, t, pk)                                                         \
	{                                                                     \
		(char *) n, (char *) "\"" n "\"", (char *) t, pk > 0, pk      \
	}

static hub_table_config cfgs[] = {
    {.name = (char *) "transactions",
        .schema = (char *) "public",
        .relname = (char *) "transactions",
        .branch_column = (char *) "branch_id"},
    {.name = (char *) "payments",
        .schema = (char *) "public",
        .relname = (char *) "payments",
        .branch_column = (char *) "branch_id",
        .policy = HUB_CONFLICT_INSERT_ONLY},
    {.name = (char *) "transaction_items",
        .schema = (char *) "public",
        .relname = (char *) "transaction_items",
        .branch_column = (char *) "branch_id",
        .conflict_column = (char *) "updated_at",
        .policy = HUB_CONFLICT_LWW},
    {.name = (char *) "products",
        .schema = (char *) "public",
        .relname = (char *) "products",
        .down = true},
    {.name = (char *) "branch_prices",
        .schema = (char *) "public",
        .relname = (char *) "branch_prices",
        .down = true,
        .scope = (char *) "branch_id"},
};

static catalog_col tx_cols[] = {COL("branch_id", "integer", 1),
    COL("id", "bigint", 2), COL("store_id", "integer", 0),
    COL("total_cost", "bigint", 0), COL("payment_type", "text", 0),
    COL("created_at", "timestamp with time zone", 0),
    COL("tax", "double precision", 0)};
static catalog_col pay_cols[] = {COL("branch_id", "integer", 1),
    COL("transaction_id", "bigint", 2), COL("line_no", "integer", 3),
    COL("method", "text", 0), COL("amount", "bigint", 0)};
static catalog_col item_cols[] = {COL("branch_id", "integer", 1),
    COL("id", "bigint", 2), COL("transaction_id", "bigint", 0),
    COL("qty", "integer", 0), COL("note", "bytea", 0),
    COL("updated_at", "timestamp with time zone", 0)};
static catalog_col prod_cols[] = {
    COL("id", "bigint", 1), COL("name", "text", 0), COL("price", "bigint", 0)};
static catalog_col bp_cols[] = {COL("branch_id", "integer", 1),
    COL("product_id", "bigint", 2), COL("price", "bigint", 0)};

/* payments (branch_id, transaction_id) -> transactions (branch_id, id) */
static size_t pay_fk_cols[] = {0, 1}, pay_fk_pcols[] = {0, 1};
static catalog_fk pay_fks[] = {{0, pay_fk_cols, pay_fk_pcols, 2}};

/* Down layouts as layout_down() makes them: key minus scope, then rest. */
static size_t prod_send[] = {0, 1, 2}, bp_send[] = {1, 2};
static const char *prod_send_names[] = {"id", "name", "price"};
static const char *bp_send_names[] = {"product_id", "price"};

/* Up tables have branch_id as column 0 and no till_column. */
#define UP(c, q, cl, n, np, fk, nfk)                                          \
	{                                                                     \
		.cfg = (c), .quoted = (char *) (q), .cols = (cl),             \
		.ncols = (n), .npk = (np), .scope = -1, .fks = (fk),          \
		.nfks = (nfk), .till = -1, .branch = 0                        \
	}
#define DOWN(c, q, cl, n, np, sc, sd, nm, ns, nk)                             \
	{                                                                     \
		.cfg = (c), .quoted = (char *) (q), .cols = (cl),             \
		.ncols = (n), .npk = (np), .scope = (sc), .send = (sd),       \
		.send_names = (nm), .nsend = (ns), .nkey = (nk), .till = -1   \
	}
static catalog_table tables[] = {
    UP(&cfgs[0], "\"public\".\"transactions\"", tx_cols, 7, 2, NULL, 0),
    UP(&cfgs[1], "\"public\".\"payments\"", pay_cols, 5, 3, pay_fks, 1),
    UP(&cfgs[2], "\"public\".\"transaction_items\"", item_cols, 6, 2, NULL, 0),
    DOWN(&cfgs[3], "\"public\".\"products\"", prod_cols, 3, 1, -1, prod_send,
        prod_send_names, 3, 1),
    DOWN(&cfgs[4], "\"public\".\"branch_prices\"", bp_cols, 3, 2, 0, bp_send,
        bp_send_names, 2, 1),
};

static const catalog cat = {tables, 5};

/* The defaults of hub/config.c. */
static hub_config conf = {
    .max_message_bytes = 16777216,
    .max_batch_events = 10000,
    .max_columns = 256,
    .max_tables = 64,
    .max_value_bytes = 1048576,
    .max_pull_rows = 5000,
    .tables = cfgs,
    .ntables = 5,
};

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Nothing is logged: the path is the same, stderr stays readable. */
	log_init("fuzz_hub_request", (log_level) 0);
	return 0;
}

/* ---- oracles --------------------------------------------------------- */

/* utf8_valid: n bytes at s are UTF-8 (and, if name, no control chars). */
static bool
utf8_valid(const char *s, size_t n, bool name)
{
	const uint8_t *u = (const uint8_t *) s;

	for (size_t i = 0, k; i < n; i += k) {
		if ((k = proto_utf8_len(u + i, n - i)) == 0)
			return false;
		if (name && (u[i] < 0x20 || u[i] == 0x7f))
			return false;
	}
	return true;
}

static bool
name_ok(const char *s)
{
	return s != NULL && utf8_valid(s, strlen(s), true);
}

/* unquote reads the one array element of "{...}" text into out. */
static bool
unquote(const char *s, char *out, size_t *n, bool *null)
{
	size_t o = 0;

	*null = false;
	if (*s++ != '{')
		return false;
	if (*s != '"') {
		size_t k = strcspn(s, "}");
		if (s[k] != '}' || s[k + 1] != '\0')
			return false;
		*null = k == 4 && !strncmp(s, "NULL", 4);
		memcpy(out, s, k);
		out[k] = '\0';
		*n = k;
		return true;
	}
	for (s++; *s != '"'; s++) {
		if (*s == '\0' || (*s == '\\' && *++s == '\0'))
			return false;
		out[o++] = *s;
	}
	out[o] = '\0';
	*n = o;
	return s[1] == '}' && s[2] == '\0';
}

/* check_pgval: v as an array element reads back as v; its JSON parses. */
static void
check_pgval(const proto_value *v)
{
	static const char hex[] = "0123456789abcdef";
	strbuf b = {0};
	char *txt;
	size_t n;
	bool null;
	json_error_t je;
	json_t *j;

	if (pgval_has_nul(v)) /* rejected before any SQL */
		return;
	strbuf_putc(&b, '{');
	pgval_array_elem(&b, v);
	strbuf_putc(&b, '}');
	txt = malloc(b.len + 1);
	FUZZ_ASSERT(unquote(b.p, txt, &n, &null));
	FUZZ_ASSERT(null == (v->type == PROTO_NIL));
	switch (v->type) {
	case PROTO_BOOL:
		FUZZ_ASSERT(!strcmp(txt, v->u.b ? "t" : "f"));
		break;
	case PROTO_INT: {
		char *end;
		FUZZ_ASSERT(strtoll(txt, &end, 10) == v->u.i && *end == '\0');
		break;
	}
	case PROTO_FLOAT: {
		char *end;
		double d = strtod(txt, &end);
		FUZZ_ASSERT(*end == '\0');
		if (isnan(v->u.f))
			FUZZ_ASSERT(!strcmp(txt, "NaN"));
		else
			FUZZ_ASSERT(
			    d == v->u.f && signbit(d) == signbit(v->u.f));
		break;
	}
	case PROTO_STR:
		FUZZ_ASSERT(n == v->len && !memcmp(txt, v->u.s, n));
		break;
	case PROTO_BIN:
		FUZZ_ASSERT(n == 2 + 2 * (size_t) v->len);
		FUZZ_ASSERT(txt[0] == '\\' && txt[1] == 'x');
		for (size_t i = 0; i < v->len; i++)
			FUZZ_ASSERT(txt[2 + 2 * i] == hex[v->u.p[i] >> 4]
			    && txt[3 + 2 * i] == hex[v->u.p[i] & 15]);
		break;
	default:
		break;
	}
	free(txt);
	strbuf_reset(&b);
	pgval_json(&b, v);
	j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &je);
	if (j == NULL)
		fprintf(stderr, "bad JSON %s: %s\n", b.p, je.text);
	FUZZ_ASSERT(j != NULL);
	if (v->type == PROTO_STR && utf8_valid(v->u.s, v->len, false))
		FUZZ_ASSERT(json_is_string(j)
		    && json_string_length(j) == v->len
		    && !memcmp(json_string_value(j), v->u.s, v->len));
	if (v->type == PROTO_INT)
		FUZZ_ASSERT(
		    json_is_integer(j) && json_integer_value(j) == v->u.i);
	json_decref(j);
	strbuf_fini(&b);
}

/* ---- the request path ------------------------------------------------- */

static apply_ctx *ctx; /* one worker's context, kept across inputs */

/* may_reach_sql: what the allow-list lets through, decided independently. */
static bool
may_reach_sql(const proto_push *p, const proto_event *ev)
{
	const proto_table *pt = &p->tables[ev->table];
	const catalog_table *t = catalog_find(&cat, pt->name);

	if (t == NULL || t->cfg->down)
		return false;
	for (uint32_t i = 0; i < pt->ncols; i++) {
		if (!strcmp(pt->cols[i], "branch_id"))
			return false;
		if (catalog_col_find(t, pt->cols[i]) < 0
		    && strcmp(pt->cols[i], "is_synced") != 0)
			return false;
	}
	for (uint32_t i = 0; i < pt->nkey; i++)
		if (ev->vals[i].type == PROTO_NIL)
			return false;
	for (uint32_t i = 0; i < ev->nvals; i++)
		if (pgval_has_nul(&ev->vals[i]))
			return false;
	return true;
}

static void
handle_push(const proto_push *p, proto_msg *reply, char *err, size_t errlen)
{
	proto_err rv = apply_check(ctx, p, err, errlen);

	if (rv != PROTO_OK) {
		FUZZ_ASSERT(rv == PROTO_EPROTO && err[0] != '\0');
		request_error_set(reply, rv, err);
		fuzz_roundtrip(reply);
		return;
	}
	for (uint32_t e = 0; e < p->nevents; e++) {
		const proto_event *ev = &p->events[e];
		char *why = apply_event_reason(ctx, p, e);
		FUZZ_ASSERT(e == 0 || ev->seq > p->events[e - 1].seq);
		FUZZ_ASSERT(ev->table < p->ntables);
		if (why == NULL) {
			FUZZ_ASSERT(may_reach_sql(p, ev));
			for (uint32_t i = 0; i < ev->nvals; i++)
				check_pgval(&ev->vals[i]);
		} else {
			FUZZ_ASSERT(why[0] != '\0');
			free(why);
		}
	}
}

/* check_names: the names of a decoded message are what the decoder says. */
static void
check_names(const proto_msg *m)
{
	const proto_agent_hdr *hdr = request_hdr(m);

	if (hdr == NULL)
		return;
	FUZZ_ASSERT(name_ok(hdr->branch) && name_ok(hdr->log_id));
	FUZZ_ASSERT(hdr->key == NULL || name_ok(hdr->key));
	FUZZ_ASSERT(hdr->till == NULL || name_ok(hdr->till));
	if (m->type == PROTO_HELLO)
		FUZZ_ASSERT(name_ok(m->u.hello.version));
	if (m->type == PROTO_PULL)
		FUZZ_ASSERT(name_ok(m->u.pull.table));
	if (m->type != PROTO_PUSH)
		return;
	for (uint32_t t = 0; t < m->u.push.ntables; t++) {
		const proto_table *pt = &m->u.push.tables[t];
		FUZZ_ASSERT(name_ok(pt->name));
		for (uint32_t c = 0; c < pt->ncols; c++)
			FUZZ_ASSERT(name_ok(pt->cols[c]));
	}
}

/* refused: a refusal's reply is its ERROR, and encodes. */
static void
refused(proto_err rv, const proto_msg *reply, const char *err)
{
	FUZZ_ASSERT(reply->type == PROTO_ERROR && reply->u.error.code == rv
	    && err[0] != '\0');
	FUZZ_ASSERT(!reply->u.error.retry || rv == PROTO_ENOMEM);
	fuzz_roundtrip(reply);
}

/* mac_of computes the request's MAC as serverauth.c would, with a fixed
 * secret; it must work for every envelope the decoder accepts. */
static void
mac_of(const proto_env *env)
{
	uint8_t s[PROTO_SECRET_BYTES], d[PROTO_DIGEST_BYTES];
	uint8_t mac[PROTO_MAC_BYTES];

	FUZZ_ASSERT(proto_key_secret("k3y", s) == PROTO_OK);
	FUZZ_ASSERT(proto_digest(env->body, env->body_len, d) == PROTO_OK);
	FUZZ_ASSERT(proto_req_mac(s, env, d, mac) == PROTO_OK);
	(void) proto_mac_equal(mac, env->auth.mac, sizeof mac);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_limits lim;
	proto_msg *m = NULL, reply;
	proto_env env;
	char err[1024];
	proto_err rv;

	if (ctx == NULL)
		ctx = apply_new(&conf, &cat);
	hub_config_limits(&conf, &lim);
	memset(&reply, 0, sizeof reply);
	rv = request_open(data, size, &lim, &env, &reply, err, sizeof err);
	if (rv != PROTO_OK) {
		FUZZ_ASSERT(rv == PROTO_EPROTO || rv == PROTO_EVERSION
		    || rv == PROTO_ETOOBIG);
		refused(rv, &reply, err);
		return 0;
	}
	fuzz_env_check(&env, data, size);
	if (env.version == PROTO_VERSION) {
		FUZZ_ASSERT(proto_request_type(env.type));
		mac_of(&env);
		rv = request_body(&env, &lim, &m, &reply, err, sizeof err);
	} else
		rv = request_decode(
		    data, size, &lim, &m, &reply, err, sizeof err);
	if (m != NULL)
		check_names(m);
	if (rv != PROTO_OK) {
		/* Only a malformed request or one of another type. */
		FUZZ_ASSERT(rv == PROTO_EPROTO || rv == PROTO_ETOOBIG
		    || rv == PROTO_EVERSION || rv == PROTO_ENOMEM);
		FUZZ_ASSERT(rv == PROTO_EPROTO || m == NULL);
		refused(rv, &reply, err);
	} else {
		FUZZ_ASSERT(request_hdr(m) != NULL);
		FUZZ_ASSERT(env.version == PROTO_VERSION_PLAIN
		    || (m->type == env.type && request_hdr(m)->key == NULL));
		if (m->type == PROTO_PUSH)
			handle_push(&m->u.push, &reply, err, sizeof err);
	}
	proto_msg_free(m);
	return 0;
}
