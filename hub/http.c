/*
 * http.c: the operator listener (see http.h).
 *
 * nng runs the handler on its own threads. Every request that needs
 * PostgreSQL takes the listener's mutex for its queries, so the one
 * connection serves one request at a time; the backlog sampler
 * (sampler.c) runs its statements through the same with_conn. A lost
 * connection is dropped and opened again by the next request or sample,
 * never waited for.
 *
 * One handler at "/" (a tree, any method) sees every request, so that
 * unknown paths and other methods get our short text answers rather than
 * nng's HTML pages. Request input only ever selects a route and, through
 * a bounded and checked "branch" parameter, a SQL parameter.
 */
#include "http.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "httpres.h"
#include "lists.h"
#include "log.h"
#include "metrics.h"
#include "overview.h"
#include "query.h"
#include "sampler.h"
#include "tls.h"
#include "util.h"
#include "webauth.h"

/* The page and its files, generated from web/ by CMake (web_*.c). */
extern const unsigned char hub_web_page[], hub_web_css[], hub_web_js[];
extern const size_t hub_web_page_len, hub_web_css_len, hub_web_js_len;

/* Longest branch code (db.c accepts 1 to 64 characters). */
#define CODE_MAX 64
/* Most rows of /api/rejects and /api/conflicts (the newest, lists.h). */
#define LIST_MAX "500"
/* Largest request body read (only GET is served; bounds what nng buffers). */
#define BODY_MAX 4096

struct hub_http {
	const hub_config *conf;  /* borrowed; outlives the listener */
	ov_limits lim;           /* state thresholds from conf */
	nng_http_server *srv;    /* the listener, NULL if not held */
	pthread_mutex_t mu;      /* one query at a time; guards below */
	PGconn *conn;            /* NULL until connected, or once lost */
	bool db_down;            /* last attempt failed (logged once) */
	pthread_mutex_t stop_mu; /* guards stopping and busy */
	pthread_cond_t stop_cv;  /* stopping set, or busy back to 0 */
	bool stopping;           /* hub_http_stop was called */
	int busy;                /* requests being answered */
	hub_sampler *sampler;    /* the backlog sampler, or NULL */
	webauth *auth;           /* http_users_file, or NULL: no login */
};

/* One request being answered; a query fills json or text. */
typedef struct {
	bool has_branch;              /* ?branch= given, not empty */
	char branch[QUERY_VALUE_MAX]; /* its value, decoded */
	const ov_limits *lim;         /* thresholds */
	int64_t interval_s;           /* sample_interval_s */
	json_t *json;                 /* the JSON answer, or NULL */
	strbuf text;                  /* the text answer */
} request;

typedef proto_err (*query_fn)(
    PGconn *conn, request *rq, char *err, size_t errlen);

/* ----------------------------------------------------------- responses */

/*
 * code_plausible tells whether s could be a branch code (the characters
 * and length db.c allows); anything else names no branch and is not sent
 * to PostgreSQL at all.
 */
static bool
code_plausible(const char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";
	size_t n = strlen(s);

	return n > 0 && n <= CODE_MAX && strspn(s, ok) == n;
}

/* ------------------------------------------------------------- database */

/*
 * db_ready returns the connection, opening it if needed. Holding h->mu.
 * NULL with the reason in err.
 */
static PGconn *
db_ready(hub_http *h, char *err, size_t errlen)
{
	if (h->conn != NULL)
		return h->conn;
	if (db_connect(h->conf->postgres, &h->conn, err, errlen) != PROTO_OK)
		return NULL;
	/* Text from the database becomes JSON: have it in UTF-8. */
	if (PQsetClientEncoding(h->conn, "UTF8") != 0) {
		snprintf(err, errlen, "could not set client_encoding: %s",
		    PQerrorMessage(h->conn));
		PQfinish(h->conn);
		h->conn = NULL;
		return NULL;
	}
	return h->conn;
}

/*
 * db_note records the outcome of a database use (holding h->mu): a
 * failure counts in metrics, drops a lost connection and is logged when
 * it starts; the first success after it is logged too.
 */
static void
db_note(hub_http *h, bool ok, const char *what, const char *err)
{
	if (ok) {
		if (h->db_down)
			log_notice("HUB-HTTP-DB-UP", "PostgreSQL is back");
		h->db_down = false;
		return;
	}
	metrics_pg_error();
	if (h->conn != NULL && db_lost(h->conn)) {
		PQfinish(h->conn);
		h->conn = NULL;
	}
	if (!h->db_down)
		log_warn("HUB-HTTP-DB", "could not %s: %s", what, err);
	else
		log_debug("HUB-HTTP-DB", "could not %s: %s", what, err);
	h->db_down = true;
}

/*
 * with_conn runs fn on the connection under the mutex and notes the
 * outcome (a sampler_db_fn: the sampler's statements come here too).
 */
static proto_err
with_conn(void *owner, const char *what, sampler_conn_fn fn, void *arg,
    char *err, size_t errlen)
{
	hub_http *h = owner;
	proto_err rv = PROTO_EDB;
	PGconn *conn;

	pthread_mutex_lock(&h->mu);
	if ((conn = db_ready(h, err, errlen)) != NULL)
		rv = fn(conn, arg, err, errlen);
	db_note(h, rv == PROTO_OK, what, err);
	pthread_mutex_unlock(&h->mu);
	return rv;
}

/* A route's query and its request, for with_conn. */
typedef struct {
	query_fn fn;
	request *rq;
} query_call;

static proto_err
query_cb(PGconn *conn, void *arg, char *err, size_t errlen)
{
	query_call *c = arg;

	return c->fn(conn, c->rq, err, errlen);
}

/* run_query runs a route's query fn for rq on the connection. */
static proto_err
run_query(hub_http *h, query_fn fn, request *rq, char *err, size_t errlen)
{
	query_call c = {fn, rq};

	return with_conn(
	    h, "answer an HTTP request", query_cb, &c, err, errlen);
}

/* col_int returns an integer column; 0 when NULL. */
static json_int_t
col_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	    ? 0
	    : (json_int_t) strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* col_str returns a text column as a JSON string (null when NULL). */
static json_t *
col_str(const PGresult *res, int row, int col)
{
	json_t *s;

	if (PQgetisnull(res, row, col))
		return json_null();
	s = json_string(PQgetvalue(res, row, col));
	/* The connection is UTF-8, so this is only a safety net. */
	return s != NULL ? s : json_string("(not UTF-8)");
}

/* col_json returns a jsonb column as its JSON value (null when NULL). */
static json_t *
col_json(const PGresult *res, int row, int col)
{
	json_t *v;

	if (PQgetisnull(res, row, col))
		return json_null();
	v = json_loadb(PQgetvalue(res, row, col),
	    (size_t) PQgetlength(res, row, col), JSON_DECODE_ANY, NULL);
	return v != NULL ? v : col_str(res, row, col);
}

/* -------------------------------------------------------------- queries */

/* pg_up appends the gauge saying whether PostgreSQL answered. */
static void
pg_up(strbuf *b, int up)
{
	prom_head(b, "branchsync_hub_postgres_up", "gauge",
	    "1 when this scrape could read the branches from PostgreSQL.");
	prom_sample_i(b, "branchsync_hub_postgres_up", NULL, NULL, up);
}

static proto_err
query_metrics(PGconn *conn, request *rq, char *err, size_t errlen)
{
	ov_list l = {0};
	proto_err rv;

	if ((rv = overview_read(conn, rq->lim, &l, err, errlen)) != PROTO_OK)
		return rv;
	overview_render_prom(&l, &rq->text);
	overview_free(&l);
	metrics_render(&rq->text);
	pg_up(&rq->text, 1);
	return PROTO_OK;
}

static proto_err
query_status(PGconn *conn, request *rq, char *err, size_t errlen)
{
	ov_list l = {0};
	proto_err rv;

	if ((rv = overview_read(conn, rq->lim, &l, err, errlen)) != PROTO_OK)
		return rv;
	rq->json = overview_json(&l, rq->lim);
	overview_free(&l);
	return PROTO_OK;
}

/*
 * query_history: the last hour of backlog samples of enabled branches.
 * One statement, so that series and total agree: grouping set (code, ts)
 * gives the points, (ts) the total, () one row that always exists and
 * carries now(). Samples are unique per branch and second, so a series
 * has at most 3600 points, whatever sample_interval_s.
 */
static proto_err
query_history(PGconn *conn, request *rq, char *err, size_t errlen)
{
	PGresult *res;
	json_t *series, *total, *points = NULL;
	const char *code = NULL;
	json_int_t now = 0;
	proto_err rv;

	rv = db_exec(conn,
	    "SELECT grouping(b.code, s.ts), extract(epoch FROM now())::bigint,"
	    " b.code, extract(epoch FROM s.ts)::bigint, sum(s.queue_events)"
	    " FROM branchsync.backlog_sample s"
	    " JOIN branchsync.branch b ON b.id = s.branch_id"
	    " WHERE b.enabled AND s.ts > now() - interval '1 hour'"
	    " GROUP BY GROUPING SETS ((b.code, s.ts), (s.ts), ())"
	    " ORDER BY b.code NULLS FIRST, s.ts",
	    0, NULL, PGRES_TUPLES_OK, &res, NULL, err, errlen);
	if (rv != PROTO_OK)
		return rv;
	series = json_array();
	total = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *pt = json_pack(
		    "[I,I]", col_int(res, i, 3), col_int(res, i, 4));
		switch (col_int(res, i, 0)) {
		case 0: /* (code, ts): a point of a branch */
			if (code == NULL
			    || strcmp(code, PQgetvalue(res, i, 2))) {
				code = PQgetvalue(res, i, 2);
				points = json_array();
				json_array_append_new(series,
				    json_pack("{s:o,s:o}", "branch",
				        col_str(res, i, 2), "points", points));
			}
			json_array_append_new(points, pt);
			break;
		case 2: /* (ts): the sum over branches */
			json_array_append_new(total, pt);
			break;
		default: /* (): now */
			now = col_int(res, i, 1);
			json_decref(pt);
			break;
		}
	}
	PQclear(res);
	rq->json = json_pack("{s:I,s:I,s:o,s:o}", "interval_s",
	    (json_int_t) rq->interval_s, "now", now, "series", series, "total",
	    total);
	return PROTO_OK;
}

/* One field of a list's row objects: its name and result column. */
typedef struct {
	const char *name; /* JSON key; "key" holds JSON */
	int col;          /* column of the lists.h result */
} list_field;

/* A lists.h query: lists_rejects_get or lists_conflicts_get. */
typedef proto_err (*list_fn)(PGconn *conn, const char *branch, bool all,
    const char *limit, PGresult **out, char *err, size_t errlen);

/*
 * query_list runs fn (open ones of ?branch=, at most LIST_MAX) and
 * answers {name: [row objects]}, one key per field; bigint columns are
 * integers and "key" is JSON. An implausible code matches nothing.
 */
static proto_err
query_list(PGconn *conn, request *rq, list_fn fn, const char *name,
    const list_field *fields, int nfields, char *err, size_t errlen)
{
	json_t *list = json_array();
	PGresult *res;
	proto_err rv;

	rq->json = json_pack("{s:o}", name, list);
	if (rq->has_branch && !code_plausible(rq->branch))
		return PROTO_OK;
	rv = fn(conn, rq->has_branch ? rq->branch : NULL, false, LIST_MAX,
	    &res, err, errlen);
	if (rv != PROTO_OK) {
		json_decref(rq->json);
		rq->json = NULL;
		return rv;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *o = json_object();
		for (int f = 0; f < nfields; f++) {
			int c = fields[f].col;
			json_t *v;
			if (!strcmp(fields[f].name, "key"))
				v = col_json(res, i, c);
			else if (PQftype(res, c) == 20 /* int8 */)
				v = json_integer(col_int(res, i, c));
			else
				v = col_str(res, i, c);
			json_object_set_new(o, fields[f].name, v);
		}
		json_array_append_new(list, o);
	}
	PQclear(res);
	return PROTO_OK;
}

static proto_err
query_rejects(PGconn *conn, request *rq, char *err, size_t errlen)
{
	static const list_field fields[]
	    = {{"id", LISTS_R_ID}, {"branch", LISTS_R_BRANCH},
	        {"seq", LISTS_R_SEQ}, {"tbl", LISTS_R_TBL},
	        {"key", LISTS_R_KEY}, {"reason", LISTS_R_REASON},
	        {"state", LISTS_R_STATE}, {"created_at", LISTS_R_CREATED_S}};

	return query_list(conn, rq, lists_rejects_get, "rejects", fields,
	    (int) ARRAY_LEN(fields), err, errlen);
}

static proto_err
query_conflicts(PGconn *conn, request *rq, char *err, size_t errlen)
{
	static const list_field fields[] = {{"id", LISTS_C_ID},
	    {"branch", LISTS_C_BRANCH}, {"seq", LISTS_C_SEQ},
	    {"tbl", LISTS_C_TBL}, {"key", LISTS_C_KEY}, {"type", LISTS_C_TYPE},
	    {"created_at", LISTS_C_CREATED_S}};

	return query_list(conn, rq, lists_conflicts_get, "conflicts", fields,
	    (int) ARRAY_LEN(fields), err, errlen);
}

/* --------------------------------------------------------------- routes */

typedef struct {
	const char *path;          /* exact path */
	query_fn query;            /* NULL: a file of the page */
	const char *type;          /* Content-Type of a success */
	const unsigned char *file; /* the file, without query */
	const size_t *len;         /* its length */
} route;

static const route routes[] = {
    {"/", NULL, HTTP_TYPE_HTML, hub_web_page, &hub_web_page_len},
    {"/app.css", NULL, HTTP_TYPE_CSS, hub_web_css, &hub_web_css_len},
    {"/app.js", NULL, HTTP_TYPE_JS, hub_web_js, &hub_web_js_len},
    {"/metrics", query_metrics, HTTP_TYPE_PROM, NULL, NULL},
    {"/api/status", query_status, HTTP_TYPE_JSON, NULL, NULL},
    {"/api/history", query_history, HTTP_TYPE_JSON, NULL, NULL},
    {"/api/rejects", query_rejects, HTTP_TYPE_JSON, NULL, NULL},
    {"/api/conflicts", query_conflicts, HTTP_TYPE_JSON, NULL, NULL},
};

/* find_route returns the route of uri's path (before any '?'), or NULL. */
static const route *
find_route(const char *uri)
{
	size_t n = strcspn(uri, "?");

	for (size_t i = 0; i < ARRAY_LEN(routes); i++)
		if (strlen(routes[i].path) == n
		    && !memcmp(routes[i].path, uri, n))
			return &routes[i];
	return NULL;
}

/* answer runs a route's query and sends what it produced. */
static void
answer(hub_http *h, nng_aio *aio, const route *r, request *rq)
{
	char err[1024];
	char *body;
	proto_err rv = run_query(h, r->query, rq, err, sizeof err);

	if (rv != PROTO_OK && r->query == query_metrics) {
		/*
		 * The process's own counters matter most while PostgreSQL
		 * fails (HubPostgresErrors): answer with them, without the
		 * branches, rather than fail the scrape.
		 */
		strbuf_reset(&rq->text);
		metrics_render(&rq->text);
		pg_up(&rq->text, 0);
		http_respond(aio, NNG_HTTP_STATUS_OK, r->type, rq->text.p,
		    rq->text.len);
		return;
	}
	if (rv != PROTO_OK) {
		http_respond_text(aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE,
		    "could not read from PostgreSQL: %s", err);
		return;
	}
	if (rq->json == NULL) {
		http_respond(aio, NNG_HTTP_STATUS_OK, r->type,
		    rq->text.p != NULL ? rq->text.p : "", rq->text.len);
		return;
	}
	if ((body = json_dumps(rq->json, JSON_COMPACT)) == NULL) {
		http_respond_text(aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR,
		    "could not encode the answer");
		return;
	}
	http_respond(aio, NNG_HTTP_STATUS_OK, r->type, body, strlen(body));
	free(body);
}

/* serve answers one request. */
static void
serve(hub_http *h, nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	const char *method = nng_http_req_get_method(req);
	const char *uri = nng_http_req_get_uri(req);
	request rq
	    = {.lim = &h->lim, .interval_s = h->conf->sample_interval_s};
	const route *r;

	if (!http_check_host(aio, h->conf->http_hosts, h->conf->nhttp_hosts))
		return;
	if (h->auth != NULL
	    && !webauth_check(
	        h->auth, nng_http_req_get_header(req, "Authorization"))) {
		http_respond_text(aio, NNG_HTTP_STATUS_UNAUTHORIZED,
		    "authentication required");
		return;
	}
	if ((r = find_route(uri)) == NULL) {
		http_respond_text(aio, NNG_HTTP_STATUS_NOT_FOUND, "not found");
		return;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		http_respond_text(aio, NNG_HTTP_STATUS_METHOD_NOT_ALLOWED,
		    "method not allowed: only GET");
		return;
	}
	if (!query_parse(uri, rq.branch, &rq.has_branch)) {
		http_respond_text(
		    aio, NNG_HTTP_STATUS_BAD_REQUEST, "invalid query string");
		return;
	}
	if (r->query == NULL) {
		http_respond(
		    aio, NNG_HTTP_STATUS_OK, r->type, r->file, *r->len);
		return;
	}
	answer(h, aio, r, &rq);
	json_decref(rq.json);
	strbuf_fini(&rq.text);
}

/*
 * handle_cb serves every request (see the top of the file). nng may still
 * run it while the server is being stopped: hub_http_stop waits until
 * busy is back to 0, and h is not touched after that.
 */
static void
handle_cb(nng_aio *aio)
{
	hub_http *h = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	bool stopping;

	pthread_mutex_lock(&h->stop_mu);
	if (!(stopping = h->stopping))
		h->busy++;
	pthread_mutex_unlock(&h->stop_mu);
	if (stopping) {
		http_respond_text(aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE,
		    "the hub is stopping");
		return;
	}
	serve(h, aio);
	pthread_mutex_lock(&h->stop_mu);
	if (--h->busy == 0)
		pthread_cond_broadcast(&h->stop_cv);
	pthread_mutex_unlock(&h->stop_mu);
}

/* --------------------------------------------------------- start, stop */

/* loopback tells whether "host:port" is on a loopback address. */
static bool
loopback(const char *hostport)
{
	return !strncmp(hostport, "127.", 4)
	    || !strncmp(hostport, "localhost:", 10)
	    || !strncmp(hostport, "[::1]:", 6);
}

/*
 * secure_listener loads the users file and the HTTPS configuration, and
 * warns about a listener that others can reach without a password, or
 * with one sent in the clear.
 */
static proto_err
secure_listener(hub_http *h, nng_tls_config **tls, char *err, size_t errlen)
{
	const hub_config *c = h->conf;
	tls_opts o = {NULL, NULL, c->http_tls_cert, c->http_tls_key, NULL,
	    "HUB-HTTP-KEY-PERMS"};
	proto_err rv;

	*tls = NULL;
	if (c->http_users_file != NULL
	    && (rv = webauth_load(c->http_users_file, &h->auth, err, errlen))
	        != PROTO_OK)
		return rv;
	if (c->http_tls_cert != NULL
	    && (rv = tls_server_new(&o, tls, err, errlen)) != PROTO_OK)
		return rv;
	if (loopback(c->http_listen))
		return PROTO_OK;
	if (h->auth == NULL)
		log_warn("HUB-HTTP-OPEN",
		    "the operator listener on %s asks for no password: anyone "
		    "who reaches it reads every branch's status and rejects; "
		    "set http_users_file",
		    c->http_listen);
	else if (*tls == NULL)
		log_warn("HUB-HTTP-PLAIN",
		    "the operator listener on %s takes passwords over plain "
		    "HTTP; set http_tls_cert and http_tls_key",
		    c->http_listen);
	return PROTO_OK;
}

static proto_err
listen_on(hub_http *h, char *err, size_t errlen)
{
	char addr[300];
	nng_http_handler *hd = NULL;
	nng_tls_config *tls = NULL;
	nng_url *url = NULL;
	proto_err pe;
	int rv;

	if ((pe = secure_listener(h, &tls, err, errlen)) != PROTO_OK)
		return pe;
	snprintf(addr, sizeof addr, "%s://%s/", tls ? "https" : "http",
	    h->conf->http_listen);
	if ((rv = nng_url_parse(&url, addr)) == 0) {
		rv = nng_http_server_hold(&h->srv, url);
		nng_url_free(url);
	}
	if (rv == 0 && tls != NULL)
		rv = nng_http_server_set_tls(h->srv, tls);
	if (tls != NULL)
		nng_tls_config_free(tls); /* the server holds its own */
	if (rv == 0
	    && (rv = nng_http_handler_alloc(&hd, "/", handle_cb)) == 0) {
		if ((rv = nng_http_handler_set_tree(hd)) != 0
		    || (rv = nng_http_handler_set_method(hd, NULL)) != 0
		    || (rv = nng_http_handler_set_data(hd, h, NULL)) != 0
		    || (rv = nng_http_handler_collect_body(hd, true, BODY_MAX))
		        != 0
		    || (rv = nng_http_server_add_handler(h->srv, hd)) != 0)
			nng_http_handler_free(hd);
	}
	if (rv == 0)
		rv = nng_http_server_start(h->srv);
	if (rv != 0) {
		snprintf(err, errlen,
		    "could not listen on %s (http_listen): %s",
		    h->conf->http_listen, nng_strerror(rv));
		return PROTO_EIO;
	}
	log_info("HUB-HTTP-LISTEN", "operator page, /metrics and /api on %s%s",
	    addr, h->auth ? " (Basic authentication)" : "");
	return PROTO_OK;
}

proto_err
hub_http_start(
    const hub_config *conf, hub_http **out, char *err, size_t errlen)
{
	hub_http *h;
	proto_err rv;

	*out = NULL;
	if (conf->http_listen == NULL || conf->http_listen[0] == '\0')
		return PROTO_OK;
	h = xcalloc(1, sizeof *h);
	h->conf = conf;
	h->lim = (ov_limits) {
	    conf->behind_events, conf->behind_seconds, conf->silent_seconds};
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->stop_mu, NULL);
	pthread_cond_init(&h->stop_cv, NULL);
	if ((rv = listen_on(h, err, errlen)) != PROTO_OK) {
		hub_http_stop(h);
		return rv;
	}
	if ((rv = sampler_start(conf->sample_interval_s, with_conn, h,
	         &h->sampler, err, errlen))
	    != PROTO_OK) {
		hub_http_stop(h);
		return rv;
	}
	*out = h;
	return PROTO_OK;
}

void
hub_http_stop(hub_http *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->stop_mu);
	h->stopping = true;
	pthread_cond_broadcast(&h->stop_cv);
	pthread_mutex_unlock(&h->stop_mu);
	sampler_stop(h->sampler);
	if (h->srv != NULL) {
		nng_http_server_stop(h->srv);
		nng_http_server_release(h->srv);
	}
	pthread_mutex_lock(&h->stop_mu);
	while (h->busy > 0)
		pthread_cond_wait(&h->stop_cv, &h->stop_mu);
	pthread_mutex_unlock(&h->stop_mu);
	PQfinish(h->conn);
	webauth_free(h->auth);
	pthread_cond_destroy(&h->stop_cv);
	pthread_mutex_destroy(&h->stop_mu);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
