/*
 * pull.c: one page of the change feed for a PULL.
 *
 * The two halves of the query (scope 0 and the branch's own scope) each
 * walk the unique index (scope, id) from the cursor, so a page costs
 * O(page) whatever the size of the feed. Values are copied out of jansson
 * into an arena that lives until the next page, so the reply can point
 * into it without one allocation per value.
 */
#include "pull.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "metrics.h"
#include "util.h"

/* max_bytes when the request gives none (<= 0). */
#define PULL_DEFAULT_BYTES (4 * 1024 * 1024)
/* Bytes counted per change and per value besides the data: framing. */
#define PULL_CHANGE_OVERHEAD 16
#define PULL_VALUE_OVERHEAD  9

struct pull_ctx {
	const hub_config *conf; /* borrowed */
	const catalog *cat;     /* borrowed */
	proto_arena *arena;     /* values of the current page */
	proto_event *changes;   /* changes of the current page */
	size_t cap;             /* changes allocated */
	proto_table *tables;    /* tables of the current page */
	int *table_of;          /* catalog index -> page table index, or -1 */
};

/* Parameters: $1 cursor, $2 branch id, $3 row limit [, $4 table]. */
#define PULL_HALF(scope, where)                                               \
	"(SELECT id, tbl, op, key::text, row::text FROM branchsync.change"    \
	" WHERE scope = " scope " AND id > $1" where " ORDER BY id LIMIT $3)"
static const char *const pull_sql_all = PULL_HALF(
    "0", "") " UNION ALL " PULL_HALF("$2", "") " ORDER BY id LIMIT $3";
static const char *const pull_sql_table
    = PULL_HALF("0", " AND tbl = $4") " UNION ALL " PULL_HALF(
        "$2", " AND tbl = $4") " ORDER BY id LIMIT $3";

pull_ctx *
pull_new(const hub_config *conf, const catalog *cat)
{
	pull_ctx *ctx = xcalloc(1, sizeof *ctx);

	ctx->conf = conf;
	ctx->cat = cat;
	ctx->arena = proto_arena_new();
	if (ctx->arena == NULL)
		abort(); /* same OOM policy as xmalloc */
	ctx->tables = xcalloc(cat->ntables + 1, sizeof *ctx->tables);
	ctx->table_of = xcalloc(cat->ntables + 1, sizeof *ctx->table_of);
	return ctx;
}

void
pull_free(pull_ctx *ctx)
{
	if (ctx == NULL)
		return;
	proto_arena_free(ctx->arena);
	free(ctx->changes);
	free(ctx->tables);
	free(ctx->table_of);
	free(ctx);
}

/* set_str stores n bytes of s as a str value copied into the arena. */
static bool
set_str(pull_ctx *ctx, proto_value *v, const char *s, size_t n)
{
	v->type = PROTO_STR;
	v->len = (uint32_t) n;
	v->u.s = proto_arena_strndup(ctx->arena, s, n);
	return v->u.s != NULL;
}

/* json_value converts one JSON value; false when out of memory. */
static bool
json_value(pull_ctx *ctx, json_t *j, proto_value *v)
{
	char *text;
	bool ok;

	memset(v, 0, sizeof *v);
	switch (j == NULL ? JSON_NULL : json_typeof(j)) {
	case JSON_INTEGER:
		v->type = PROTO_INT;
		v->u.i = json_integer_value(j);
		return true;
	case JSON_REAL:
		v->type = PROTO_FLOAT;
		v->u.f = json_real_value(j);
		return true;
	case JSON_STRING:
		return set_str(
		    ctx, v, json_string_value(j), json_string_length(j));
	case JSON_TRUE:
	case JSON_FALSE:
		v->type = PROTO_BOOL;
		v->u.b = json_is_true(j);
		return true;
	case JSON_OBJECT:
	case JSON_ARRAY:
		/* A json/jsonb or array column: the branch stores the text. */
		if ((text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY))
		    == NULL)
			return false;
		ok = set_str(ctx, v, text, strlen(text));
		free(text);
		return ok;
	default:
		v->type = PROTO_NIL;
		return true;
	}
}

/* value_bytes estimates the encoded size of v. */
static size_t
value_bytes(const proto_value *v)
{
	return PULL_VALUE_OVERHEAD
	    + (v->type == PROTO_STR || v->type == PROTO_BIN ? v->len : 0);
}

/*
 * to_jsonb writes timestamps as "2026-11-22T10:00:00"; PostgreSQL's text
 * output, which upstream rows arrive in, and the POS use a space. Keep one
 * format on both paths.
 */
static void
timestamp_text(const catalog_col *col, proto_value *v)
{
	if (v->type == PROTO_STR && v->len >= 19 && v->u.s[10] == 'T'
	    && strncmp(col->type, "timestamp", 9) == 0)
		((char *) v->u.s)[10] = ' ';
}

/*
 * fill_values converts a record's JSON (the row for an upsert, the key
 * array for a delete) into the values of c in t's sending order. *bytes
 * receives the estimated encoded size.
 */
static proto_err
fill_values(pull_ctx *ctx, const catalog_table *t, const char *text,
    proto_event *c, size_t *bytes, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	bool up = c->op == PROTO_OP_UPSERT;
	proto_err rv = PROTO_OK;

	if (root == NULL
	    || (up ? !json_is_object(root) : !json_is_array(root))) {
		snprintf(err, errlen,
		    "change %" PRId64 " of table \"%s\": invalid JSON: %s",
		    c->seq, t->cfg->name, root == NULL ? jerr.text : "type");
		json_decref(root);
		return PROTO_EINVAL;
	}
	c->nvals = (uint32_t) (up ? t->nsend : t->nkey);
	c->vals = proto_arena_alloc(ctx->arena, c->nvals * sizeof *c->vals);
	*bytes = PULL_CHANGE_OVERHEAD;
	for (uint32_t i = 0; c->vals != NULL && i < c->nvals; i++) {
		json_t *j = up ? json_object_get(root, t->send_names[i])
		               : json_array_get(root, i);
		if (!json_value(ctx, j, &c->vals[i])) {
			rv = PROTO_ENOMEM;
			break;
		}
		timestamp_text(&t->cols[t->send[i]], &c->vals[i]);
		*bytes += value_bytes(&c->vals[i]);
	}
	if (c->vals == NULL)
		rv = PROTO_ENOMEM;
	if (rv == PROTO_ENOMEM)
		snprintf(err, errlen, "out of memory");
	json_decref(root);
	return rv;
}

/* table_index returns the page's index of t, adding it if new. */
static uint32_t
table_index(pull_ctx *ctx, const catalog_table *t, proto_changes *out)
{
	size_t ci = (size_t) (t - ctx->cat->tables);
	proto_table *pt;

	if (ctx->table_of[ci] >= 0)
		return (uint32_t) ctx->table_of[ci];
	pt = &ctx->tables[out->ntables];
	pt->name = t->cfg->name;
	pt->ncols = (uint32_t) t->nsend;
	pt->cols = t->send_names;
	pt->nkey = (uint32_t) t->nkey;
	ctx->table_of[ci] = (int) out->ntables;
	return out->ntables++;
}

/* page_reset empties the page state for a result of nrows rows. */
static void
page_reset(pull_ctx *ctx, size_t nrows, proto_changes *out)
{
	proto_arena_reset(ctx->arena);
	if (nrows > ctx->cap) {
		free(ctx->changes);
		ctx->changes = xcalloc(nrows, sizeof *ctx->changes);
		ctx->cap = nrows;
	}
	for (size_t i = 0; i < ctx->cat->ntables; i++)
		ctx->table_of[i] = -1;
	memset(out, 0, sizeof *out);
	out->tables = ctx->tables;
	out->changes = ctx->changes;
}

/*
 * build_page turns the query result into out. It stops before a change
 * that would take the page past max_bytes (never before the first one).
 * *stopped says whether it did.
 */
static proto_err
build_page(pull_ctx *ctx, PGresult *res, int64_t max_bytes, proto_changes *out,
    bool *stopped, char *err, size_t errlen)
{
	size_t total = 0, bytes;
	int n = PQntuples(res);
	proto_err rv;

	*stopped = false;
	for (int i = 0; i < n; i++) {
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		const catalog_table *t
		    = catalog_find(ctx->cat, PQgetvalue(res, i, 1));
		proto_event *c = &ctx->changes[out->nchanges];
		if (t == NULL || !t->cfg->down) {
			out->cursor = id; /* no longer configured: skip */
			continue;
		}
		memset(c, 0, sizeof *c);
		c->seq = id;
		c->op = atoi(PQgetvalue(res, i, 2)) == 2 ? PROTO_OP_DELETE
		                                         : PROTO_OP_UPSERT;
		rv = fill_values(ctx, t,
		    PQgetvalue(res, i, c->op == PROTO_OP_UPSERT ? 4 : 3), c,
		    &bytes, err, errlen);
		if (rv != PROTO_OK)
			return rv;
		if (out->nchanges > 0 && total + bytes > (size_t) max_bytes) {
			*stopped = true;
			break;
		}
		total += bytes;
		c->table = table_index(ctx, t, out);
		out->nchanges++;
		out->cursor = id;
	}
	return PROTO_OK;
}

/* query runs the page query for p with at most limit rows. */
static proto_err
query(PGconn *conn, int branch_id, const proto_pull *p, int64_t limit,
    PGresult **res, char *err, size_t errlen)
{
	char cursor[24], branch[16], lim[24];
	const char *params[4] = {cursor, branch, lim, p->table};
	bool one = p->table != NULL && p->table[0] != '\0';

	snprintf(cursor, sizeof cursor, "%" PRId64, p->cursor);
	snprintf(branch, sizeof branch, "%d", branch_id);
	snprintf(lim, sizeof lim, "%" PRId64, limit);
	return db_exec(conn, one ? pull_sql_table : pull_sql_all, one ? 4 : 3,
	    params, PGRES_TUPLES_OK, res, NULL, err, errlen);
}

/*
 * record notes the pull in the till's branch_status row: who pulled, when,
 * how far. The page itself depends on the branch only: every till of a
 * branch receives the branch's master data.
 */
static proto_err
record(PGconn *conn, int branch_id, int till_id, int64_t cursor, char *err,
    size_t errlen)
{
	char b[16], t[16], c[24];
	const char *params[3] = {b, c, t};

	snprintf(b, sizeof b, "%d", branch_id);
	snprintf(t, sizeof t, "%d", till_id);
	snprintf(c, sizeof c, "%" PRId64, cursor);
	return db_exec(conn,
	    "INSERT INTO branchsync.branch_status(branch_id, till_id,"
	    " last_seen, last_pull, pull_cursor)"
	    " VALUES ($1, $3, now(), now(), $2)"
	    " ON CONFLICT (branch_id, till_id) DO UPDATE SET last_seen = "
	    "now(),"
	    " last_pull = now(), pull_cursor = EXCLUDED.pull_cursor",
	    3, params, PGRES_COMMAND_OK, NULL, NULL, err, errlen);
}

proto_err
pull_page(pull_ctx *ctx, PGconn *conn, int branch_id, int till_id,
    const proto_pull *p, proto_changes *out, char *err, size_t errlen)
{
	int64_t limit = ctx->conf->max_pull_rows;
	int64_t max_bytes
	    = p->max_bytes > 0 ? p->max_bytes : PULL_DEFAULT_BYTES;
	PGresult *res;
	bool stopped;
	proto_err rv;

	if (p->max_rows > 0 && p->max_rows < limit)
		limit = p->max_rows;
	/*
	 * Read holding the feed lock: see DB_FEED_LOCK in db.h. Each half of
	 * the query must walk the (scope, id) index and stop at the limit;
	 * with stale statistics (right after a bulk load) the planner would
	 * rather sort every record after the cursor for every page, which
	 * makes a bootstrap quadratic. The settings last for this
	 * transaction only.
	 */
	if ((rv = db_exec(conn,
	         "BEGIN; SET LOCAL enable_bitmapscan = off;"
	         " SET LOCAL enable_sort = off;"
	         " SELECT pg_advisory_xact_lock(" DB_FEED_LOCK ")",
	         0, NULL, PGRES_TUPLES_OK, NULL, NULL, err, errlen))
	    != PROTO_OK)
		goto rollback;
	if ((rv = query(conn, branch_id, p, limit, &res, err, errlen))
	    != PROTO_OK)
		goto rollback;
	if ((rv = db_exec(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL,
	         NULL, err, errlen))
	    != PROTO_OK) {
		PQclear(res);
		goto rollback;
	}
	page_reset(ctx, (size_t) PQntuples(res), out);
	out->cursor = p->cursor;
	rv = build_page(ctx, res, max_bytes, out, &stopped, err, errlen);
	out->more = stopped || PQntuples(res) == limit;
	PQclear(res);
	if (rv != PROTO_OK
	    || (rv = record(
	            conn, branch_id, till_id, out->cursor, err, errlen))
	        != PROTO_OK)
		return rv;
	metrics_changes_sent(out->nchanges);
	return PROTO_OK;
rollback:
	if (!db_lost(conn))
		PQclear(PQexec(conn, "ROLLBACK"));
	return rv;
}
