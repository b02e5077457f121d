/*
 * status_test.c: tests of agent/status.c, agent/live.c and agent/http.c
 * against real SQLite files: the figures "status" collects, the hub state
 * the sender persists only at transitions, the JSON keys, the Prometheus
 * text and the local listener. Cases are named after the failure they
 * exercise.
 */
#include <ctype.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "agent_test.h"
#include "capture.h"
#include "http.h"
#include "live.h"
#include "platform.h"
#include "status.h"

static agent_status st;

/* Installs capture and sets the thresholds status needs. */
static bool
init_pos(void)
{
	capture_result res;

	conf.branch = "b1";
	conf.stall_warning_ms = 300000;
	conf.outbox_warn_events = 100000;
	conf.outbox_warn_age_s = 86400;
	CHECK_OK(capture_install(db, &conf, false, &res, err, sizeof err));
	return true;
}

static bool
collect(const live_state *live)
{
	if (status_collect(db, &conf, live, &st, err, sizeof err)
	    != PROTO_OK) {
		fprintf(stderr, "status_collect: %s\n", err);
		return false;
	}
	return true;
}

static bool
test_pending_miscounted(void)
{
	CHECK(init_pos());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (2, 1);"
	           "UPDATE transactions SET total_cost = 5 WHERE id = 2;"
	           "UPDATE _branchsync_log SET err = 'bad' WHERE seq = 1;"));
	CHECK(collect(NULL));
	CHECK(st.c.high_seq == 3 && st.c.pending == 2 && st.c.rejected == 1);
	CHECK(st.c.queue_bytes == 2 * STATUS_EVENT_BYTES);
	CHECK(st.age_s >= 0 && st.stall == 0 && st.warn == 0);
	CHECK(strlen(st.log_id) == 32);
	CHECK(st.hub == LIVE_HUB_UNKNOWN && st.hub_since == 0);
	CHECK(st.last_error[0] == '\0');
	/* The sender's measured size replaces the starting estimate. */
	live_state live = {.running = true, .bytes_per_event = 1000};
	CHECK(collect(&live));
	CHECK(st.c.queue_bytes == 2000);
	return true;
}

static bool
test_no_init_not_reported(void)
{
	CHECK(status_collect(db, &conf, NULL, &st, err, sizeof err)
	    == PROTO_EDB);
	CHECK(strstr(err, "_branchsync") != NULL);
	return true;
}

static bool
test_json_key_missing(void)
{
	static const char *keys[] = {"branch", "till", "database", "log_id",
	    "version", "acked_seq", "high_seq", "pending_events",
	    "queue_bytes", "rejected_events", "retry_events", "last_ack",
	    "oldest_age_s", "stalled_since", "outbox_warning",
	    "outbox_warning_events", "outbox_warning_age", "hub_reachable",
	    "hub_state_since", "hub_last_contact", "last_error", "down_cursor",
	    "last_pull", "down_last_error", "reload_table", "reload_cursor",
	    "unfit_tables", "unchecked_tables"};
	json_t *o;

	CHECK(init_pos());
	CHECK(collect(NULL));
	CHECK((o = status_json(&conf, &st)) != NULL);
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (json_object_get(o, keys[i]) == NULL) {
			fprintf(stderr, "no key %s\n", keys[i]);
			json_decref(o);
			return false;
		}
	CHECK(json_object_size(o) == ARRAY_LEN(keys));
	CHECK(json_is_null(json_object_get(o, "hub_reachable")));
	CHECK(json_is_null(json_object_get(o, "last_ack")));
	CHECK(json_is_null(json_object_get(o, "down_last_error")));
	CHECK(json_is_null(json_object_get(o, "last_error")));
	CHECK(json_integer_value(json_object_get(o, "pending_events")) == 0);
	json_decref(o);
	return true;
}

static bool
test_json_loses_bad_utf8(void)
{
	json_t *o;
	bool ok;

	CHECK(init_pos());
	CHECK(collect(NULL));
	conf.branch = "b\xff"
	              "1";
	snprintf(st.last_error, sizeof st.last_error, "bad \xc3(");
	CHECK((o = status_json(&conf, &st)) != NULL);
	ok = json_is_string(json_object_get(o, "branch"))
	    && !strcmp(json_string_value(json_object_get(o, "branch")), "b?1")
	    && !strcmp(
	        json_string_value(json_object_get(o, "last_error")), "bad ?(");
	json_decref(o);
	CHECK(ok);
	return true;
}

static const char *
meta(const char *name)
{
	static char sql[200];
	snprintf(sql, sizeof sql,
	    "SELECT value FROM _branchsync_meta WHERE name = '%s'", name);
	return query(sql);
}

static bool
test_hub_state_written_per_request(void)
{
	CHECK(init_pos());
	live_start();
	CHECK_OK(live_sync(db, 1000, err, sizeof err));
	CHECK_STR(meta("hub_state"), ""); /* unknown: nothing written */
	live_unreachable(5000000, "no hub answered");
	CHECK_OK(live_sync(db, 1000, err, sizeof err));
	CHECK_STR(meta("hub_state"), "down");
	CHECK_STR(meta("hub_state_since"), "5000");
	CHECK_STR(meta("hub_last_error"), "no hub answered");
	/* Same state again: no write (the marker stays). */
	CHECK(exec("UPDATE _branchsync_meta SET value = 'mark' WHERE name = "
	           "'hub_last_error'"));
	live_unreachable(6000000, "still none");
	live_error("hub error: auth");
	CHECK_OK(live_sync(db, 1000, err, sizeof err));
	CHECK_STR(meta("hub_last_error"), "mark");
	/* Inside a transaction: deferred to the next call. */
	live_answer(7000000);
	CHECK(exec("BEGIN"));
	CHECK_OK(live_sync(db, 1000, err, sizeof err));
	CHECK(exec("COMMIT"));
	CHECK_STR(meta("hub_state"), "down");
	CHECK_OK(live_sync(db, 1000, err, sizeof err));
	CHECK_STR(meta("hub_state"), "up");
	CHECK_STR(meta("hub_state_since"), "7000");
	CHECK_STR(meta("hub_last_error"), "hub error: auth");
	live_answer(8000000);
	CHECK(exec("UPDATE _branchsync_meta SET value = 'mark' WHERE name = "
	           "'hub_state'"));
	CHECK_OK(live_sync(db, 1000, err, sizeof err));
	CHECK_STR(meta("hub_state"), "mark");
	return true;
}

/*
 * A POS transaction holding the write lock does not hold up live_sync
 * for the busy timeout (30 s here): it writes at the next call instead.
 */
static bool
test_hub_state_waits_for_lock(void)
{
	sqlite3 *pos;
	int64_t t0;

	CHECK(init_pos());
	sqlite3_busy_timeout(db, 30000); /* as the agent's connection has */
	live_start();
	live_unreachable(5000000, "no hub answered");
	CHECK(sqlite3_open(path, &pos) == SQLITE_OK);
	CHECK(sqlite3_exec(pos, "BEGIN IMMEDIATE", NULL, NULL, NULL)
	    == SQLITE_OK);
	t0 = plat_mono_ms();
	CHECK_OK(live_sync(db, 30000, err, sizeof err));
	CHECK(plat_mono_ms() - t0 < 5000);
	CHECK(sqlite3_exec(pos, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(pos);
	CHECK_STR(meta("hub_state"), "");
	CHECK_OK(live_sync(db, 30000, err, sizeof err));
	CHECK_STR(meta("hub_state"), "down");
	return true;
}

static bool
test_offline_status_ignores_meta(void)
{
	live_state live;

	CHECK(init_pos());
	live_start();
	live_unreachable(5000000, "no hub answered");
	CHECK_OK(live_sync(db, 1000, err, sizeof err));
	live_answer(9000000);
	live_get(&live);
	live_stop();
	/* The CLI: the meta rows of the last transition. */
	CHECK(collect(NULL));
	CHECK(st.hub == LIVE_HUB_DOWN && st.hub_since == 5000);
	CHECK(st.hub_contact == 0);
	CHECK_STR(st.last_error, "no hub answered");
	/* The running agent: the live state wins. */
	live.running = true;
	CHECK(collect(&live));
	CHECK(st.hub == LIVE_HUB_UP && st.hub_since == 9000);
	CHECK(st.hub_contact == 9000);
	return true;
}

/* A Prometheus sample line: name{label="v",...} value. */
static bool
sample_ok(const char *l)
{
	const char *p = l;
	char *end;

	if (!isalpha((unsigned char) *p) && *p != '_')
		return false;
	while (isalnum((unsigned char) *p) || *p == '_' || *p == ':')
		p++;
	if (*p == '{') {
		for (p++; *p != '}'; p++) {
			if (*p == '\0')
				return false;
			if (*p == '"')
				for (p++; *p != '"'; p++) {
					if (*p == '\0' || *p == '\n')
						return false;
					if (*p == '\\')
						p++;
				}
		}
		p++;
	}
	if (*p++ != ' ')
		return false;
	strtod(p, &end);
	return end != p && *end == '\0';
}

static bool
metrics_ok(const char *text)
{
	char *copy = xstrdup(text), *save = NULL;
	bool ok = true;

	for (char *l = strtok_r(copy, "\n", &save); l != NULL;
	     l = strtok_r(NULL, "\n", &save))
		if (l[0] != '#' && !sample_ok(l)) {
			fprintf(stderr, "bad sample line: %s\n", l);
			ok = false;
		}
	free(copy);
	return ok;
}

static bool
test_metrics_malformed(void)
{
	strbuf b = {0};
	live_state live = {.running = true};
	bool ok;

	CHECK(init_pos());
	conf.branch = "b\"1\\";
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"));
	CHECK(collect(NULL));
	status_metrics(&b, &conf, &st);
	ok = metrics_ok(b.p)
	    && strstr(b.p,
	        "branchsync_agent_queue_events{branch=\"b\\\"1\\\\\"} 1\n")
	    && strstr(b.p, "branchsync_agent_info{branch=") != NULL
	    /* never acked, hub unknown: no sample */
	    && strstr(b.p, "branchsync_agent_last_ack_timestamp_seconds{")
	        == NULL
	    && strstr(b.p, "branchsync_agent_hub_up{") == NULL
	    && strstr(b.p, "# TYPE branchsync_agent_hub_up gauge") != NULL;
	strbuf_reset(&b);
	live.hub = LIVE_HUB_DOWN;
	live.since_ms = 1000;
	if (ok && collect(&live)) {
		status_metrics(&b, &conf, &st);
		ok = metrics_ok(b.p)
		    && strstr(b.p,
		        "branchsync_agent_hub_up{branch=\"b\\\"1"
		        "\\\\\"} 0\n");
	}
	strbuf_fini(&b);
	CHECK(ok);
	return true;
}

/*
 * listen_any listens on a free TCP port of 127.0.0.1 (nng picks it: the
 * same code on every platform) and returns the port, or 0.
 */
static int
listen_any(nng_stream_listener **l)
{
	int port = 0;

	if (nng_stream_listener_alloc(l, "tcp://127.0.0.1:0") != 0)
		return 0;
	if (nng_stream_listener_listen(*l) != 0
	    || nng_stream_listener_get_int(*l, NNG_OPT_TCP_BOUND_PORT, &port)
	        != 0) {
		nng_stream_listener_free(*l);
		*l = NULL;
		return 0;
	}
	return port;
}

/* A port on 127.0.0.1 that was free a moment ago. */
static int
free_port(void)
{
	nng_stream_listener *l = NULL;
	int port = listen_any(&l);

	nng_stream_listener_free(l);
	return port;
}

/*
 * get fetches uri from 127.0.0.1:port into out as "STATUS content-type\n"
 * and the body; false if there is no answer.
 */
static bool
get(int port, const char *uri, char *out, size_t outlen)
{
	nng_http_client *c = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
	nng_url *url = NULL;
	char u[128];
	void *body;
	size_t blen;
	const char *ct;
	bool ok = false;

	snprintf(u, sizeof u, "http://127.0.0.1:%d%s", port, uri);
	if (nng_url_parse(&url, u) != 0 || nng_http_client_alloc(&c, url) != 0
	    || nng_http_req_alloc(&req, url) != 0
	    || nng_http_res_alloc(&res) != 0
	    || nng_aio_alloc(&aio, NULL, NULL) != 0)
		goto done;
	nng_aio_set_timeout(aio, 10000);
	nng_http_client_transact(c, req, res, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0)
		goto done;
	nng_http_res_get_data(res, &body, &blen);
	ct = nng_http_res_get_header(res, "Content-Type");
	snprintf(out, outlen, "%d %s\n%.*s",
	    (int) nng_http_res_get_status(res), ct ? ct : "-", (int) blen,
	    (const char *) body);
	ok = true;
done:
	nng_aio_free(aio);
	nng_http_res_free(res);
	nng_http_req_free(req);
	nng_http_client_free(c);
	nng_url_free(url);
	return ok;
}

static bool
test_listener_wrong(void)
{
	static char out[16384];
	agent_http *h = NULL;
	int port = free_port();
	bool ok;

	CHECK(init_pos());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"));
	conf.http_port = 0;
	CHECK_OK(agent_http_start(&conf, &h, err, sizeof err));
	CHECK(h == NULL);
	conf.http_port = port;
	CHECK_OK(agent_http_start(&conf, &h, err, sizeof err));
	ok = get(port, "/status", out, sizeof out)
	    && strstr(out, "200 application/json") == out
	    && strstr(out, "\"pending_events\": 1") != NULL
	    && get(port, "/metrics", out, sizeof out)
	    && strstr(out, "200 ") == out
	    && strstr(out, "branchsync_agent_queue_events{branch=\"b1\"} 1\n")
	    && get(port, "/nope", out, sizeof out)
	    && strstr(out, "404 ") == out;
	agent_http_stop(h);
	CHECK(ok);
	return true;
}

static bool
test_port_in_use_ignored(void)
{
	nng_stream_listener *l = NULL;
	agent_http *h = NULL;
	int port = listen_any(&l);
	proto_err rv;

	CHECK(init_pos());
	CHECK(port != 0);
	conf.http_port = port;
	rv = agent_http_start(&conf, &h, err, sizeof err);
	nng_stream_listener_free(l);
	agent_http_stop(h);
	CHECK(rv == PROTO_EIO && h == NULL);
	CHECK(strstr(err, "http_port") != NULL);
	return true;
}

static const agent_test_case cases[] = {
    {"pending miscounted", test_pending_miscounted},
    {"no init not reported", test_no_init_not_reported},
    {"json key missing", test_json_key_missing},
    {"json loses bad utf-8", test_json_loses_bad_utf8},
    {"hub state written per request", test_hub_state_written_per_request},
    {"hub state waits for the lock", test_hub_state_waits_for_lock},
    {"offline status ignores meta", test_offline_status_ignores_meta},
    {"metrics malformed", test_metrics_malformed},
    {"listener wrong", test_listener_wrong},
    {"port in use ignored", test_port_in_use_ignored},
};

int
main(void)
{
	return agent_test_main(
	    "status_test", LOG_LVL_ERROR, cases, ARRAY_LEN(cases), NULL);
}
