/*
 * downstream.c: the master-data thread: wait for a nudge or the pull
 * interval, pull pages, apply them, back off on failure.
 *
 * Like the sender, requests go through hubclient (hubclient.h), so a stop
 * is seen quickly. The nudge socket only ever shortens a wait:
 * a lost nudge costs at most pull_interval_ms.
 */
#include "downstream.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "fault.h"
#include "hubclient.h"
#include "inbox.h"
#include "log.h"
#include "nudgesub.h"
#include "platform.h"
#include "proto/msg.h"
#include "util.h"

#define WAIT_SLICE_MS  100
#define NUDGE_SLICE_MS 500
#define PULL_MAX_BYTES (4 << 20)

struct downstream {
	const agent_config *conf; /* configuration (borrowed) */
	sqlite3 *db;              /* own connection to the POS file */
	inbox *ib;                /* applies pages */
	hubclient hc;             /* PULL requests to the hub */
	nng_socket sub;           /* sub0 socket for nudges, if configured */
	bool has_sub;             /* sub is open */
	pthread_t thread;         /* the loop */
	atomic_bool stop;         /* downstream_stop was called */
	atomic_bool connected;    /* a nudge connection came up: pull */
	sqlite3_stmt *dv;         /* PRAGMA data_version */
	int64_t data_version;     /* its last value */
	unsigned failures;        /* consecutive failed pulls, for backoff */
	char noted[512];          /* the reason in down_last_error, "" none */
	bool noted_known;         /* noted was written by this process */
};

/* note records why pulls fail ("" when they work again) for "status",
 * when that changes. */
static void
note(downstream *ds, const char *why)
{
	char err[256];

	if (ds->noted_known && !strncmp(ds->noted, why, sizeof ds->noted - 1))
		return;
	if (inbox_note_error(ds->db, why, err, sizeof err) != PROTO_OK) {
		log_debug("AGENT-DOWN-ERROR", "%s", err);
		return;
	}
	snprintf(ds->noted, sizeof ds->noted, "%s", why);
	ds->noted_known = true;
}

static bool
stopping(downstream *ds)
{
	return plat_stop_requested() || atomic_load(&ds->stop);
}

static bool
stop_cb(void *arg)
{
	return stopping(arg);
}

/*
 * pull_page asks for the page after cursor of table ("" = all) and
 * applies it (reload names the reloaded table, or NULL). *more says
 * whether to ask again at once.
 */
static proto_err
pull_page(downstream *ds, const inbox_state *st, const char *reload,
    bool *more, bool *no_retry)
{
	int64_t cursor = reload ? st->reload_cursor : st->down_cursor;
	proto_msg req = {.type = PROTO_PULL}, *resp = NULL;
	proto_pull *p = &req.u.pull;
	char err[400];
	proto_err rv;

	p->hdr = (proto_agent_hdr) {ds->conf->branch, ds->conf->secret,
	    st->log_id, st->queue_events, 0, 0, ds->conf->till};
	p->cursor = cursor;
	p->table = reload ? reload : "";
	p->max_rows = ds->conf->pull_max_rows;
	/* The page's byte count is approximate: stay well under our limit. */
	p->max_bytes = ds->conf->max_message_bytes / 4 < PULL_MAX_BYTES
	    ? ds->conf->max_message_bytes / 4
	    : PULL_MAX_BYTES;
	*more = false;
	if ((rv = hubclient_request(&ds->hc, &req, &resp)) != PROTO_OK)
		return rv;
	if (resp->type == PROTO_CHANGES)
		fault_hit(FAULT_AGENT_BEFORE_CHANGES_APPLY);
	if (resp->type != PROTO_CHANGES)
		rv = hubclient_error(&ds->hc, resp, no_retry);
	else if ((rv = inbox_apply(
	              ds->ib, &resp->u.changes, reload, err, sizeof err))
	    != PROTO_OK)
		snprintf(ds->hc.why, sizeof ds->hc.why,
		    "could not apply changes after %" PRId64 ": %s", cursor,
		    err);
	else {
		const proto_changes *ch = &resp->u.changes;
		log_debug(NULL,
		    "applied %" PRIu32 " changes%s%s, cursor %" PRId64,
		    ch->nchanges, reload ? " of reload " : "",
		    reload ? reload : "", ch->cursor);
		/* The last page of a reload ends it: the feed comes next. A
		 * page that does not advance would loop forever. */
		if (reload != NULL && !ch->more)
			*more = true;
		else
			*more = ch->more && ch->cursor > cursor;
	}
	proto_msg_free(resp);
	return rv;
}

static proto_err
read_state(downstream *ds, inbox_state *st)
{
	char err[400];
	proto_err rv = inbox_state_read(ds->db, st, err, sizeof err);

	if (rv != PROTO_OK)
		snprintf(ds->hc.why, sizeof ds->hc.why, "%s", err);
	return rv;
}

/* A reload of a table that is not (or no longer) down is dropped. */
static proto_err
check_reload(downstream *ds, inbox_state *st)
{
	const agent_table_config *tc;
	char err[400];

	if (st->reload_table[0] == '\0')
		return PROTO_OK;
	tc = agent_config_find(ds->conf, st->reload_table);
	if (tc != NULL && tc->down)
		return PROTO_OK;
	log_warn("AGENT-RELOAD",
	    "table \"%s\" is not configured with direction = down; reload "
	    "dropped",
	    st->reload_table);
	if (db_exec(ds->db,
	        "DELETE FROM _branchsync_meta WHERE name IN ('reload_table', "
	        "'reload_cursor')",
	        err, sizeof err)
	    != PROTO_OK) {
		snprintf(ds->hc.why, sizeof ds->hc.why, "%s", err);
		return PROTO_EDB;
	}
	st->reload_table[0] = '\0';
	return PROTO_OK;
}

/* pull_all: a reload in progress first, then the feed, until drained. */
static proto_err
pull_all(downstream *ds, bool *no_retry)
{
	bool more = true, reloading = false;
	inbox_state st;
	proto_err rv;

	while (more && !stopping(ds)) {
		if ((rv = read_state(ds, &st)) != PROTO_OK
		    || (rv = check_reload(ds, &st)) != PROTO_OK)
			return rv;
		if (st.reload_table[0] != '\0' && !reloading) {
			log_notice("AGENT-RELOAD", "reloading table \"%s\"",
			    st.reload_table);
			reloading = true;
		} else if (st.reload_table[0] == '\0' && reloading) {
			log_notice("AGENT-RELOAD", "reload done");
			reloading = false;
		}
		rv = pull_page(ds, &st,
		    st.reload_table[0] != '\0' ? st.reload_table : NULL, &more,
		    no_retry);
		if (rv != PROTO_OK)
			return rv;
	}
	return PROTO_OK;
}

/* True when another connection committed (e.g. "reload") since last time.
 */
static bool
file_changed(downstream *ds)
{
	int64_t v;

	if (sqlite3_step(ds->dv) != SQLITE_ROW) {
		sqlite3_reset(ds->dv);
		return false;
	}
	v = sqlite3_column_int64(ds->dv, 0);
	sqlite3_reset(ds->dv);
	if (v == ds->data_version)
		return false;
	ds->data_version = v;
	return true;
}

/* A reload was requested while we waited. */
static bool
reload_pending(downstream *ds)
{
	inbox_state st;

	if (!file_changed(ds)
	    || inbox_state_read(ds->db, &st, ds->hc.why, sizeof ds->hc.why)
	        != PROTO_OK)
		return false;
	return st.reload_table[0] != '\0';
}

/* Waits up to ms for a nudge; true if one (or a reload request) came. */
static bool
wait_nudge(downstream *ds, int64_t ms)
{
	int64_t end = plat_mono_ms() + ms;
	bool nudged = false;

	while (!nudged && !stopping(ds) && plat_mono_ms() < end) {
		nng_msg *m;
		int64_t left = end - plat_mono_ms();
		if (left > NUDGE_SLICE_MS)
			left = NUDGE_SLICE_MS;
		if (!ds->has_sub)
			plat_sleep_ms(left > 0 ? left : 1);
		else if (nng_recvmsg(ds->sub, &m, 0) == 0) {
			nng_msg_free(m);
			nudged = true;
			/* Nudges sent during one pull need one pull. */
			while (
			    nng_recvmsg(ds->sub, &m, NNG_FLAG_NONBLOCK) == 0)
				nng_msg_free(m);
		}
		nudged = nudged || atomic_exchange(&ds->connected, false)
		    || reload_pending(ds);
	}
	if (nudged)
		log_debug("AGENT-NUDGE", "pulling now");
	return nudged;
}

static void
backoff(downstream *ds, proto_err rv, bool no_retry)
{
	int64_t ms;
	/* As the sender's: nng does not say why no connection comes up. */
	bool loud = hubclient_backoff(&ds->hc, ds->failures, no_retry, &ms);

	if (rv == PROTO_EDB || rv == PROTO_EINVAL)
		log_error("AGENT-DOWN-ERROR", "%s", ds->hc.why);
	else
		log_msg(loud ? (no_retry ? LOG_LVL_ERROR : LOG_LVL_WARN)
		             : LOG_LVL_DEBUG,
		    "AGENT-DOWN-ERROR", "%s", ds->hc.why);
	log_debug("AGENT-BACKOFF", "pulling again in %" PRId64 " ms", ms);
	note(ds, ds->hc.why);
	ds->failures++;
	for (int64_t end = plat_mono_ms() + ms;
	     !stopping(ds) && plat_mono_ms() < end;)
		plat_sleep_ms(WAIT_SLICE_MS);
}

static void *
run_loop(void *arg)
{
	downstream *ds = arg;
	int64_t next = 0; /* pull at once */

	while (!stopping(ds)) {
		bool no_retry = false;
		proto_err rv;
		if (plat_mono_ms() < next
		    && !wait_nudge(ds, next - plat_mono_ms()))
			continue;
		if ((rv = pull_all(ds, &no_retry)) != PROTO_OK) {
			if (!stopping(ds))
				backoff(ds, rv, no_retry);
			continue; /* and pull again */
		}
		if (ds->failures > 0)
			log_notice("AGENT-DOWN-OK",
			    "pulled after %u failed attempts", ds->failures);
		ds->failures = 0;
		note(ds, "");
		next = plat_mono_ms() + ds->conf->pull_interval_ms;
	}
	return NULL;
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void) p;
	(void) ev;
	atomic_store(&((downstream *) arg)->connected, true);
}

/* The nudge socket: this branch's pull topic and everyone's. */
static proto_err
open_sub(downstream *ds, char *err, size_t errlen)
{
	proto_err rv;

	if ((rv = nudgesub_open(
	         ds->conf, "b*", pipe_cb, ds, &ds->sub, err, errlen))
	    != PROTO_OK)
		return rv;
	ds->has_sub = true;
	nng_socket_set_ms(ds->sub, NNG_OPT_RECVTIMEO, NUDGE_SLICE_MS);
	return PROTO_OK;
}

static proto_err
open_sockets(downstream *ds, char *err, size_t errlen)
{
	hubclient_opts o
	    = {.name_in_errors = true, .stop = stop_cb, .stop_arg = ds};
	proto_err rv;

	if ((rv = hubclient_open(&ds->hc, ds->conf, &o, err, errlen))
	    != PROTO_OK)
		return rv;
	if (ds->conf->nudge != NULL && ds->conf->nudge[0] != '\0')
		return open_sub(ds, err, errlen);
	return PROTO_OK;
}

/* The POS file: own connection, init done, down tables present. */
static proto_err
open_db(downstream *ds, char *err, size_t errlen)
{
	const agent_config *c = ds->conf;
	inbox_state st;
	proto_err rv;

	if ((rv = db_open(
	         c->database, c->busy_timeout_ms, &ds->db, err, errlen))
	    != PROTO_OK)
		return rv;
	db_tune(ds->db);
	if (inbox_state_read(ds->db, &st, err, errlen) != PROTO_OK
	    || st.log_id[0] == '\0') {
		snprintf(err, errlen,
		    "database \"%s\" is not set up; run \"branchsync-agent "
		    "init\" first",
		    c->database);
		return PROTO_EINVAL;
	}
	if ((rv = inbox_open(ds->db, c, &ds->ib, err, errlen)) != PROTO_OK
	    || (rv = db_prepare(
	            ds->db, "PRAGMA data_version", &ds->dv, err, errlen))
	        != PROTO_OK)
		return rv;
	file_changed(ds);
	return PROTO_OK;
}

static void
ds_free(downstream *ds)
{
	hubclient_close(&ds->hc);
	if (ds->has_sub)
		nng_close(ds->sub);
	sqlite3_finalize(ds->dv);
	inbox_close(ds->ib);
	sqlite3_close_v2(ds->db);
	free(ds);
}

proto_err
downstream_start(
    const agent_config *conf, downstream **out, char *err, size_t errlen)
{
	downstream *ds;
	proto_err rv;

	*out = NULL;
	if (agent_config_count_down(conf) == 0)
		return PROTO_OK;
	ds = xcalloc(1, sizeof *ds);
	ds->conf = conf;
	atomic_init(&ds->stop, false);
	atomic_init(&ds->connected, false);
	if ((rv = open_db(ds, err, errlen)) != PROTO_OK
	    || (rv = open_sockets(ds, err, errlen)) != PROTO_OK)
		goto fail;
	if (pthread_create(&ds->thread, NULL, run_loop, ds) != 0) {
		snprintf(err, errlen, "could not start the downstream thread");
		rv = PROTO_ENOMEM;
		goto fail;
	}
	log_info("AGENT-DOWN-START",
	    "pulling %zu down tables every %" PRId64 " ms%s%s",
	    agent_config_count_down(conf), conf->pull_interval_ms,
	    ds->has_sub ? ", nudges from " : "",
	    ds->has_sub ? conf->nudge : "");
	*out = ds;
	return PROTO_OK;
fail:
	ds_free(ds);
	return rv;
}

void
downstream_stop(downstream *ds)
{
	if (ds == NULL)
		return;
	atomic_store(&ds->stop, true);
	pthread_join(ds->thread, NULL);
	ds_free(ds);
}
