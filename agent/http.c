/*
 * http.c: GET /status and GET /metrics on 127.0.0.1:http_port.
 *
 * Only requests whose Host is an address or "localhost" are answered
 * (httpres.h), so a web page elsewhere cannot read them through DNS
 * rebinding.
 *
 * nng runs the handlers on its own threads. They are short (a few
 * primary-key lookups and one scan of the pending log entries), so they
 * run there, one at a time under the listener's mutex, which also keeps
 * the SQLite connection to one thread at a time.
 */
#include "http.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"
#include "httpres.h"
#include "log.h"
#include "prom.h"
#include "status.h"
#include "util.h"

struct agent_http {
	const agent_config *conf; /* configuration (borrowed) */
	nng_http_server *srv;     /* the listener */
	pthread_mutex_t mu;       /* one request at a time; guards db */
	sqlite3 *db;              /* read-only connection, NULL once stopped */
};

/* Collects the status under the mutex; false with a reason in err. */
static bool
collect(agent_http *h, agent_status *st, char *err, size_t errlen)
{
	live_state live;
	proto_err rv = PROTO_ECLOSED;

	live_get(&live);
	pthread_mutex_lock(&h->mu);
	if (h->db != NULL)
		rv = status_collect(h->db, h->conf, &live, st, err, errlen);
	else
		snprintf(err, errlen, "the agent is stopping");
	pthread_mutex_unlock(&h->mu);
	return rv == PROTO_OK;
}

static void
fail(nng_aio *aio, const char *err)
{
	log_debug("AGENT-HTTP", "could not read the status: %s", err);
	http_respond_text(aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR,
	    "could not read the status: %s", err);
}

static void
status_cb(nng_aio *aio)
{
	agent_http *h = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	agent_status st;
	char err[512], *body;

	if (!http_check_host(aio, NULL, 0))
		return;
	if (!collect(h, &st, err, sizeof err)) {
		fail(aio, err);
		return;
	}
	body = status_json_text(h->conf, &st);
	http_respond(
	    aio, NNG_HTTP_STATUS_OK, HTTP_TYPE_JSON, body, strlen(body));
	free(body);
}

static void
metrics_cb(nng_aio *aio)
{
	agent_http *h = nng_http_handler_get_data(nng_aio_get_input(aio, 1));
	agent_status st;
	strbuf b = {0};
	char err[512];

	if (!http_check_host(aio, NULL, 0))
		return;
	if (!collect(h, &st, err, sizeof err)) {
		fail(aio, err);
		return;
	}
	status_metrics(&b, h->conf, &st);
	http_respond(aio, NNG_HTTP_STATUS_OK, HTTP_TYPE_PROM,
	    b.p != NULL ? b.p : "", b.len);
	strbuf_fini(&b);
}

/* Registers a GET handler for path that takes no request body. */
static int
add(agent_http *h, const char *path, void (*cb)(nng_aio *))
{
	nng_http_handler *hd;
	int rv;

	if ((rv = nng_http_handler_alloc(&hd, path, cb)) != 0)
		return rv;
	if ((rv = nng_http_handler_set_data(hd, h, NULL)) != 0
	    || (rv = nng_http_handler_collect_body(hd, true, 0)) != 0
	    || (rv = nng_http_server_add_handler(h->srv, hd)) != 0)
		nng_http_handler_free(hd);
	return rv;
}

static proto_err
open_db(agent_http *h, char *err, size_t errlen)
{
	int rc = sqlite3_open_v2(
	    h->conf->database, &h->db, SQLITE_OPEN_READONLY, NULL);

	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "could not open database \"%s\": %s",
		    h->conf->database,
		    h->db != NULL ? sqlite3_errmsg(h->db) : "out of memory");
		return PROTO_EDB;
	}
	sqlite3_busy_timeout(h->db, (int) h->conf->busy_timeout_ms);
	return PROTO_OK;
}

static proto_err
listen_on(agent_http *h, char *err, size_t errlen)
{
	char addr[64];
	nng_url *url = NULL;
	int rv;

	snprintf(addr, sizeof addr, "http://127.0.0.1:%d",
	    (int) h->conf->http_port);
	if ((rv = nng_url_parse(&url, addr)) == 0) {
		rv = nng_http_server_hold(&h->srv, url);
		nng_url_free(url);
	}
	if (rv == 0 && (rv = add(h, "/status", status_cb)) == 0
	    && (rv = add(h, "/metrics", metrics_cb)) == 0)
		rv = nng_http_server_start(h->srv);
	if (rv != 0) {
		snprintf(err, errlen,
		    "could not listen on 127.0.0.1:%d (http_port): %s",
		    (int) h->conf->http_port, nng_strerror(rv));
		return PROTO_EIO;
	}
	log_info("AGENT-HTTP-LISTEN",
	    "status and metrics on http://127.0.0.1:%d/",
	    (int) h->conf->http_port);
	return PROTO_OK;
}

proto_err
agent_http_start(
    const agent_config *conf, agent_http **out, char *err, size_t errlen)
{
	agent_http *h;
	proto_err rv;

	*out = NULL;
	if (conf->http_port == 0)
		return PROTO_OK;
	h = xcalloc(1, sizeof *h);
	h->conf = conf;
	pthread_mutex_init(&h->mu, NULL);
	if ((rv = open_db(h, err, errlen)) != PROTO_OK
	    || (rv = listen_on(h, err, errlen)) != PROTO_OK) {
		agent_http_stop(h);
		return rv;
	}
	*out = h;
	return PROTO_OK;
}

void
agent_http_stop(agent_http *h)
{
	if (h == NULL)
		return;
	if (h->srv != NULL) {
		nng_http_server_stop(h->srv);
		nng_http_server_release(h->srv);
	}
	pthread_mutex_lock(&h->mu);
	sqlite3_close_v2(h->db);
	h->db = NULL;
	pthread_mutex_unlock(&h->mu);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
