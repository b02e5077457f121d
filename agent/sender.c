/*
 * sender.c: HELLO/WELCOME, PUSH/ACK, backoff and idle polling.
 *
 * Requests go through hubclient (hubclient.h) and are cancelled only
 * when a termination signal arrives.
 */
#include "sender.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hubclient.h"
#include "live.h"
#include "log.h"
#include "nudgesub.h"
#include "outbox.h"
#include "platform.h"
#include "rejects.h"
#include "proto/msg.h"
#include "fault.h"
#include "schemawatch.h"
#include "sweep.h"
#include "util.h"

/* How often a drain looks for entries an operator asked to retry. */
#define RETRY_CHECK_MS 1000
/* How often the queue is checked for a stall or a large outbox. */
#define WATCH_MS 1000
/* The outbox warning is repeated at most this often. */
#define OUTBOX_WARN_EVERY_MS 600000

/* One PUSH and the memory it lives in, kept until its ACK is applied. */
typedef struct {
	proto_arena *arena; /* values, tables and events of msg */
	proto_msg msg;      /* the PUSH */
} batch;

typedef struct {
	const agent_config *conf; /* configuration (borrowed) */
	outbox *ob;               /* the POS log */
	hubclient hc;             /* requests to the hub */
	nng_socket sub;           /* "r:" nudges (nudgesub.h), if any */
	bool has_sub;             /* sub is open */
	batch b[2];               /* the batch in flight and the next one */
	int cur;                  /* index in b of the batch in flight */
	bool session;             /* WELCOME received, identity checked */
	size_t max_events;        /* events per PUSH: ours and the hub's */
	size_t max_bytes;       /* value bytes per PUSH: ours and the hub's */
	unsigned failures;      /* consecutive failures, for backoff */
	int64_t last_hello_ms;  /* when the last HELLO was answered */
	int64_t start_ms;       /* wall clock at start */
	int64_t last_ack_ms;    /* wall clock of the last ACK, 0 never */
	int64_t stall_since_ms; /* wall clock the stall began, 0 none */
	int64_t next_watch_ms;  /* monotonic: next stall/outbox check */
	int64_t next_warn_ms;   /* monotonic: outbox warning allowed again */
	int64_t next_retry_ms;  /* monotonic: next look for retries */
	schemawatch *sw;        /* the POS schema (schemawatch.h) */
	bool schema_hold;       /* schema changed: refit after the request
	                           in flight, send nothing more before */
	int64_t next_refit_ms;  /* monotonic: a failed refit is retried */
} sender;

static bool
stop_on_signal(void *arg)
{
	(void) arg;
	return plat_stop_requested();
}

static void
fill_hdr(sender *s, proto_agent_hdr *h, int64_t *high_seq)
{
	outbox_counts c = {0};
	char err[256];

	if (outbox_stats(s->ob, false, &c, err, sizeof err) != PROTO_OK)
		log_debug("AGENT-STATS", "%s", err);
	h->branch = s->conf->branch;
	h->till = s->conf->till;
	h->key = s->conf->secret;
	h->log_id = outbox_log_id(s->ob);
	h->queue_events = c.pending;
	h->queue_bytes = c.queue_bytes;
	if (c.pending > 0)
		live_bytes_per_event(c.queue_bytes / c.pending);
	h->oldest_age_s = 0; /* none pending, or captured before ts existed */
	if (c.oldest_ts > 0 && plat_wall_ms() / 1000 > c.oldest_ts)
		h->oldest_age_s = plat_wall_ms() / 1000 - c.oldest_ts;
	if (high_seq != NULL)
		*high_seq = c.high_seq;
}

static void
log_decision(sender *s, outbox_id_decision d, const proto_welcome *w,
    int64_t acked, int64_t high)
{
	switch (d) {
	case OUTBOX_ID_NEW_HUB:
		if (acked > 0)
			log_warn("AGENT-HUB-NEW",
			    "hub has no watermark for this log although seq "
			    "%" PRId64
			    " was acknowledged; sending all pending "
			    "events",
			    acked);
		break;
	case OUTBOX_ID_TRUST:
		log_debug(
		    NULL, "hub watermark %" PRId64 " confirmed", w->watermark);
		break;
	case OUTBOX_ID_RESTORED:
		log_error("AGENT-LOG-RESTORED",
		    "hub watermark %" PRId64 " (tag %" PRId64 ") does not "
		    "match the local log (high seq %" PRId64 "): the POS file "
		    "was restored from a backup; continuing as new log \"%s\"",
		    w->watermark, w->tag, high, outbox_log_id(s->ob));
		break;
	case OUTBOX_ID_HUB_BEHIND:
		log_error("AGENT-HUB-BEHIND",
		    "hub watermark %" PRId64 " is below the acknowledged seq "
		    "%" PRId64 ": the hub database lost acknowledged events",
		    w->watermark, acked);
		break;
	}
}

/* The WELCOME's lists of rejects an operator retried or discarded. */
static proto_err
welcome_lists(sender *s, const proto_welcome *w, char *err, size_t errlen)
{
	int64_t nr = 0, nd = 0;
	proto_err rv;

	rv = rejects_welcome(s->ob, w, &nr, &nd, err, errlen);
	if (nr > 0)
		log_info("AGENT-REJECT-RETRY",
		    "the hub asked to retry %" PRId64 " rejected events", nr);
	if (nd > 0)
		log_info("AGENT-REJECT-DISCARD",
		    "the hub discarded %" PRId64 " rejected events", nd);
	return rv;
}

/* WELCOME: identity check, then the hub's limits. */
static proto_err
welcome(sender *s, const proto_welcome *w, int64_t high)
{
	outbox_counts c = {0};
	outbox_id_decision d;
	char err[400];
	proto_err rv;

	if ((rv = outbox_stats(s->ob, false, &c, err, sizeof err)) != PROTO_OK
	    || (rv = outbox_welcome(
	            s->ob, w->watermark, w->tag, &d, err, sizeof err))
	        != PROTO_OK) {
		snprintf(s->hc.why, sizeof s->hc.why, "%s", err);
		return rv;
	}
	log_decision(s, d, w, c.acked_seq, high);
	/* The lists name seqs of the log the HELLO named: not ours now. */
	if (d != OUTBOX_ID_RESTORED
	    && (rv = welcome_lists(s, w, err, sizeof err)) != PROTO_OK) {
		snprintf(s->hc.why, sizeof s->hc.why, "%s", err);
		return rv;
	}
	s->max_events = (size_t) s->conf->batch_max_events;
	s->max_bytes = (size_t) s->conf->batch_max_bytes;
	if (w->max_events > 0 && (size_t) w->max_events < s->max_events)
		s->max_events = (size_t) w->max_events;
	/* Our byte count is approximate: stay well under the hub's limit. */
	if (w->max_bytes > 0 && (size_t) w->max_bytes / 2 < s->max_bytes)
		s->max_bytes = (size_t) w->max_bytes / 2;
	s->session = true;
	return PROTO_OK;
}

/*
 * nudged takes every "r:" nudge received so far; true if there was one:
 * rejects were retried or discarded at the hub, which a WELCOME tells.
 */
static bool
nudged(sender *s)
{
	bool any = false;
	nng_msg *m;

	while (s->has_sub && nng_recvmsg(s->sub, &m, NNG_FLAG_NONBLOCK) == 0) {
		nng_msg_free(m);
		any = true;
	}
	return any;
}

static proto_err
hello(sender *s, bool *no_retry)
{
	proto_msg req = {.type = PROTO_HELLO}, *resp = NULL;
	proto_err rv;

	/* This HELLO answers every nudge published before it is sent. */
	if (nudged(s))
		log_debug("AGENT-NUDGE", "rejects changed at the hub");
	fill_hdr(s, &req.u.hello.hdr, &req.u.hello.high_seq);
	req.u.hello.version = AGENT_VERSION;
	if ((rv = hubclient_request(&s->hc, &req, &resp)) != PROTO_OK)
		return rv;
	if (resp->type == PROTO_WELCOME) {
		rv = welcome(s, &resp->u.welcome, req.u.hello.high_seq);
		s->last_hello_ms = plat_mono_ms();
	} else
		rv = hubclient_error(&s->hc, resp, no_retry);
	proto_msg_free(resp);
	return rv;
}

/* ack_check_any: the ACK is for our log, outcomes in order. */
static proto_err
ack_check_any(sender *s, const proto_ack *a)
{
	if (a->log_id == NULL || strcmp(a->log_id, outbox_log_id(s->ob))) {
		snprintf(s->hc.why, sizeof s->hc.why, "ack for another log");
		return PROTO_EPROTO;
	}
	for (uint32_t i = 1; i < a->noutcomes; i++) {
		if (a->outcomes[i].seq <= a->outcomes[i - 1].seq) {
			snprintf(s->hc.why, sizeof s->hc.why,
			    "ack outcomes out of order");
			return PROTO_EPROTO;
		}
	}
	return PROTO_OK;
}

/* ack_check verifies that an ACK answers the batch p. */
static proto_err
ack_check(sender *s, const proto_push *p, const proto_ack *a)
{
	int64_t last = p->events[p->nevents - 1].seq;

	if (a->watermark > last) {
		snprintf(s->hc.why, sizeof s->hc.why,
		    "ack watermark %" PRId64 " beyond the batch (last seq "
		    "%" PRId64 ")",
		    a->watermark, last);
		return PROTO_EPROTO;
	}
	return ack_check_any(s, a);
}

/* An ACK arrived: a stall, if any, is over. */
static void
acked(sender *s)
{
	s->last_ack_ms = plat_wall_ms();
	if (s->stall_since_ms > 0) {
		log_notice("AGENT-STALL-END",
		    "the hub acknowledges events again after %" PRId64 " s",
		    (s->last_ack_ms - s->stall_since_ms) / 1000);
		s->stall_since_ms = 0;
	}
}

/*
 * ack_apply records the ACK of batch p in the POS file: a normal batch
 * moves acked_seq, a retry batch (an operator's retry) only settles its
 * entries.
 */
static proto_err
ack_apply(sender *s, const proto_push *p, const proto_ack *a, bool retry)
{
	uint32_t rejected = 0;
	char err[400];
	proto_err rv;

	for (uint32_t i = 0; i < a->noutcomes; i++)
		rejected += a->outcomes[i].code == PROTO_OUT_REJECTED;
	acked(s);
	rv = retry ? rejects_ack(s->ob, p, a->duplicates, a->outcomes,
	         a->noutcomes, err, sizeof err)
	           : outbox_ack(s->ob, a->watermark, p, a->duplicates,
	               a->outcomes, a->noutcomes, err, sizeof err);
	if (rv != PROTO_OK) {
		snprintf(s->hc.why, sizeof s->hc.why,
		    "could not process ack: %s", err);
		return rv;
	}
	if (retry && rejected > 0)
		log_warn("AGENT-REJECTED",
		    "hub rejected %" PRIu32 " of %" PRIu32 " retried events "
		    "again; reasons are in _branchsync_log.err",
		    rejected, p->nevents);
	else if (retry)
		log_info(
		    "AGENT-RETRIED", "retried %" PRIu32 " events", p->nevents);
	else if (rejected > 0)
		log_warn("AGENT-REJECTED",
		    "hub rejected %" PRIu32 " events; reasons are in "
		    "_branchsync_log.err",
		    rejected);
	else
		log_debug(NULL,
		    "pushed %" PRIu32 " events, watermark %" PRId64,
		    p->nevents, a->watermark);
	return PROTO_OK;
}

/*
 * push_retry sends the entries an operator asked to retry, if any, as
 * their own PUSH and processes the ACK before anything else is sent: a
 * retry batch never overlaps a normal one and never moves acked_seq.
 */
static proto_err
push_retry(sender *s, bool *sent, bool *no_retry)
{
	batch *b = &s->b[s->cur];
	proto_push *p = &b->msg.u.push;
	proto_msg *resp = NULL;
	char err[400];
	proto_err rv;

	*sent = false;
	s->next_retry_ms = plat_mono_ms() + RETRY_CHECK_MS;
	proto_arena_reset(b->arena);
	memset(&b->msg, 0, sizeof b->msg);
	b->msg.type = PROTO_PUSH;
	if ((rv = rejects_read(s->ob, s->max_events, s->max_bytes, b->arena, p,
	         err, sizeof err))
	    != PROTO_OK) {
		snprintf(s->hc.why, sizeof s->hc.why,
		    "could not read the log: %s", err);
		return rv;
	}
	if (p->nevents == 0)
		return PROTO_OK;
	fill_hdr(s, &p->hdr, NULL);
	*sent = true;
	if ((rv = hubclient_request(&s->hc, &b->msg, &resp)) != PROTO_OK)
		return rv;
	if (resp->type == PROTO_ACK)
		fault_hit(FAULT_AGENT_AFTER_ACK);
	if (resp->type != PROTO_ACK)
		rv = hubclient_error(&s->hc, resp, no_retry);
	else if ((rv = ack_check_any(s, &resp->u.ack)) == PROTO_OK)
		rv = ack_apply(s, p, &resp->u.ack, true);
	proto_msg_free(resp);
	return rv;
}

/* During a drain: time to look, and an entry waits to be retried. */
static bool
retry_wanted(sender *s)
{
	char err[400];
	bool yes = false;

	if (plat_mono_ms() < s->next_retry_ms)
		return false;
	s->next_retry_ms = plat_mono_ms() + RETRY_CHECK_MS;
	if (rejects_waiting(s->ob, &yes, err, sizeof err) != PROTO_OK)
		log_debug("AGENT-RETRY", "%s", err);
	return yes;
}

/* batch_read reads the next batch after seq `after` into b. */
static proto_err
batch_read(sender *s, batch *b, int64_t after)
{
	proto_push *p = &b->msg.u.push;
	char err[400];
	proto_err rv;

	proto_arena_reset(b->arena);
	memset(&b->msg, 0, sizeof b->msg);
	b->msg.type = PROTO_PUSH;
	if ((rv = outbox_read(s->ob, after, s->max_events, s->max_bytes,
	         b->arena, p, err, sizeof err))
	    != PROTO_OK) {
		snprintf(s->hc.why, sizeof s->hc.why,
		    "could not read the log: %s", err);
		return rv;
	}
	if (p->nevents > 0)
		fill_hdr(s, &p->hdr, NULL);
	return PROTO_OK;
}

/* send_next reads and sends the batch after seq `after`, if any. */
static proto_err
send_next(sender *s, batch *b, int64_t after)
{
	proto_err rv;

	if ((rv = batch_read(s, b, after)) != PROTO_OK
	    || b->msg.u.push.nevents == 0)
		return rv;
	return hubclient_start(&s->hc, &b->msg);
}

/*
 * read_ahead reads the batch after the one in flight into nxt while the
 * hub applies it, so that the ACK finds the next request ready to go;
 * true if nxt holds events. It holds what a read after the ACK would
 * hold, only read a little earlier: later POS writes are later entries.
 * A failed read is left to the read after the ACK.
 */
static bool
read_ahead(sender *s, batch *cur, batch *nxt)
{
	const proto_push *p = &cur->msg.u.push;

	return p->nevents > 0
	    && batch_read(s, nxt, p->events[p->nevents - 1].seq) == PROTO_OK
	    && nxt->msg.u.push.nevents > 0;
}

/* send_ahead sends the batch after seq `after`: nxt as read ahead if
 * ahead, else a fresh read. */
static proto_err
send_ahead(sender *s, batch *nxt, bool ahead, int64_t after)
{
	return ahead ? hubclient_start(&s->hc, &nxt->msg)
	             : send_next(s, nxt, after);
}

/*
 * move_pending carries out a move of log entries a sweep asked for
 * (sweep.h) before the next batch is read. Here no request is in flight
 * and the session's acked_seq is the hub's watermark, so no entry above
 * it has been seen by the hub, and each may take a new seq.
 */
static proto_err
move_pending(sender *s)
{
	int64_t moved;
	proto_err rv;

	rv = sweep_move_pending(
	    outbox_db(s->ob), &moved, s->hc.why, sizeof s->hc.why);
	if (rv == PROTO_OK && moved > 0)
		log_info("AGENT-SWEEP",
		    "moved %" PRId64 " entries captured before the sweep "
		    "behind the swept rows",
		    moved);
	return rv;
}

/*
 * push sends the next batch unless one is in flight, and takes its ACK.
 * While the hub applies a batch the agent reads the next one and
 * processes the previous ACK: on an ACK it first sends the next batch,
 * then records the ACK. There is still one request at a time, so the hub
 * sees batches in order. The next batch starts after this one only when
 * the ACK covers all of it, and not when entries wait to be retried:
 * those go first, alone (push_retry). *idle when nothing is pending.
 */
static proto_err
push(sender *s, bool *idle, bool *no_retry)
{
	batch *cur = &s->b[s->cur], *nxt = &s->b[!s->cur];
	const proto_push *p = &cur->msg.u.push;
	proto_msg *resp = NULL;
	bool ahead;
	proto_err rv;

	if (!s->hc.inflight && s->schema_hold) {
		/* The refit is due: send nothing read under the old schema. */
		*idle = false;
		plat_sleep_ms(s->conf->poll_ms);
		return PROTO_OK;
	}
	if (!s->hc.inflight) {
		bool sent;
		if ((rv = move_pending(s)) != PROTO_OK
		    || (rv = push_retry(s, &sent, no_retry)) != PROTO_OK)
			return rv;
		if (sent) {
			*idle = false;
			return PROTO_OK;
		}
		if ((rv = send_next(s, cur, 0)) != PROTO_OK)
			return rv;
		*idle = p->nevents == 0;
		if (*idle && outbox_schema_stale(s->ob)) {
			/* Read nothing: the schema changed under the read. */
			if (!s->schema_hold)
				log_info("AGENT-SCHEMA-CHANGED",
				    "the schema of \"%s\" changed; checking "
				    "the capture triggers",
				    s->conf->database);
			s->schema_hold = true;
			*idle = false;
		}
		/* Nothing was sent (nothing pending, or a stale read). */
		if (!s->hc.inflight)
			return PROTO_OK;
	}
	ahead = read_ahead(s, cur, nxt);
	if ((rv = hubclient_finish(&s->hc, &resp)) != PROTO_OK)
		return rv;
	/* The hub committed; the POS file does not know yet. */
	if (resp->type == PROTO_ACK)
		fault_hit(FAULT_AGENT_AFTER_ACK);
	if (resp->type != PROTO_ACK)
		rv = hubclient_error(&s->hc, resp, no_retry);
	else if ((rv = ack_check(s, p, &resp->u.ack)) == PROTO_OK
	    && (resp->u.ack.watermark < p->events[p->nevents - 1].seq
	        || retry_wanted(s) || s->schema_hold
	        || (rv = send_ahead(s, nxt, ahead, resp->u.ack.watermark))
	            == PROTO_OK))
		rv = ack_apply(s, p, &resp->u.ack, false);
	if (rv == PROTO_OK && s->hc.inflight)
		s->cur = !s->cur;
	proto_msg_free(resp);
	return rv;
}

/* The hub's reachability changed: the meta rows follow (live.h). */
static void
sync_live(sender *s)
{
	char err[400];

	if (live_sync(
	        outbox_db(s->ob), s->conf->busy_timeout_ms, err, sizeof err)
	    != PROTO_OK)
		log_debug("AGENT-HUB-STATE", "%s", err);
}

/* A failed refit is tried again after this long. */
#define REFIT_RETRY_MS 1000

/*
 * refit follows a schema change (schemawatch.h): reinstalls triggers,
 * then reopens the outbox, whose table layouts and statements date from
 * before, and sweeps the tables marked for it. Only with no request in
 * flight: a batch borrows the outbox's table names. A failure is logged
 * and tried again after REFIT_RETRY_MS.
 */
static void
refit(sender *s)
{
	outbox *nob = NULL;
	char err[1024];
	proto_err rv;

	s->schema_hold = false;
	if ((rv = schemawatch_refit(s->sw, outbox_db(s->ob), err, sizeof err))
	        == PROTO_OK
	    && (rv = outbox_open(s->conf, &nob, err, sizeof err))
	        == PROTO_OK) {
		outbox_close(s->ob);
		s->ob = nob;
		rv = schemawatch_sweep(
		    s->sw, outbox_db(s->ob), NULL, err, sizeof err);
	}
	if (rv != PROTO_OK) {
		log_error("AGENT-SCHEMA-CHECK",
		    "could not follow the schema of \"%s\": %s",
		    s->conf->database, err);
		s->schema_hold = true;
		s->next_refit_ms = plat_mono_ms() + REFIT_RETRY_MS;
	}
}

/*
 * schema_check notices a schema change (one header read) and refits once
 * no request is in flight; until then push sends nothing new.
 */
static void
schema_check(sender *s)
{
	if (!s->schema_hold && schemawatch_changed(s->sw, outbox_db(s->ob))) {
		log_info("AGENT-SCHEMA-CHANGED",
		    "the schema of \"%s\" changed; checking the capture "
		    "triggers",
		    s->conf->database);
		s->schema_hold = true;
	}
	if (s->schema_hold && !s->hc.inflight
	    && plat_mono_ms() >= s->next_refit_ms)
		refit(s);
}

/* Sleeps ms in steps of poll_ms, following the schema meanwhile. */
static void
nap(sender *s, int64_t ms)
{
	int64_t end = plat_mono_ms() + ms, left;

	while (!plat_stop_requested() && (left = end - plat_mono_ms()) > 0) {
		plat_sleep_ms(
		    left < s->conf->poll_ms ? left : s->conf->poll_ms);
		schema_check(s);
	}
}

/* Ends the session and sleeps before the next attempt. */
static void
backoff(sender *s, proto_err rv, bool no_retry)
{
	int64_t ms;
	bool loud = hubclient_backoff(&s->hc, s->failures, no_retry, &ms);

	if (rv == PROTO_EDB)
		log_error("AGENT-DB-ERROR", "%s", s->hc.why);
	else if (loud)
		log_msg(no_retry ? LOG_LVL_ERROR : LOG_LVL_WARN,
		    "AGENT-HUB-ERROR", "%s", s->hc.why);
	else
		log_debug("AGENT-HUB-ERROR", "%s", s->hc.why);
	if (s->failures == 0)
		log_info("AGENT-BACKOFF", "retrying in %" PRId64 " ms", ms);
	else
		log_debug("AGENT-BACKOFF",
		    "retrying in %" PRId64 " ms (attempt %u)", ms,
		    s->failures + 1);
	s->failures++;
	s->session = false;
	hubclient_abandon(&s->hc);
	live_error(s->hc.why);
	sync_live(s);
	nap(s, ms);
}

/*
 * Nothing pending: wake when another connection commits, or when the hub
 * is due a heartbeat or has rejects for us to retry or discard (a nudge).
 * The HELLO reports the queue, so the hub sees an idle branch as alive
 * and empty, not as silent; its WELCOME lists the rejects.
 */
static void
idle_wait(sender *s)
{
	int64_t due = s->last_hello_ms + s->conf->heartbeat_ms;

	while (!plat_stop_requested()) {
		plat_sleep_ms(s->conf->poll_ms);
		if (outbox_changed(s->ob))
			return;
		if (plat_mono_ms() >= due || nudged(s)) {
			s->session = false;
			return;
		}
	}
}

/*
 * watch says when the queue stalls (events pending, no ACK for
 * stall_warning_ms) and when it is over a warning threshold. At most once
 * per WATCH_MS: two primary-key lookups.
 */
static void
watch(sender *s)
{
	const agent_config *conf = s->conf;
	int64_t mono = plat_mono_ms(), now = plat_wall_ms(), age = -1, since;
	outbox_counts c;
	char err[400];
	int warn;

	if (mono < s->next_watch_ms)
		return;
	s->next_watch_ms = mono + WATCH_MS;
	if (outbox_stats(s->ob, false, &c, err, sizeof err) != PROTO_OK) {
		log_debug("AGENT-STATS", "%s", err);
		return;
	}
	if (c.oldest_ts > 0)
		age = now / 1000 - c.oldest_ts < 0 ? 0
		                                   : now / 1000 - c.oldest_ts;
	since = outbox_stall_since(c.pending, now, s->last_ack_ms,
	    c.oldest_ts * 1000, s->start_ms, conf->stall_warning_ms);
	if (since > 0 && s->stall_since_ms == 0) {
		s->stall_since_ms = since;
		log_warn("AGENT-STALLED",
		    "%" PRId64 " events pending and no ACK for %" PRId64
		    " s%s%s",
		    c.pending, (now - since) / 1000,
		    s->hc.why[0] ? "; last error: " : "", s->hc.why);
	}
	warn = outbox_warn_decide(
	    c.pending, age, conf->outbox_warn_events, conf->outbox_warn_age_s);
	if (warn != 0 && mono >= s->next_warn_ms) {
		s->next_warn_ms = mono + OUTBOX_WARN_EVERY_MS;
		log_warn("AGENT-OUTBOX-LARGE",
		    "%" PRId64 " events pending (warning at %" PRId64
		    "), oldest %s%" PRId64 " s old (warning at %" PRId64
		    " s); nothing is dropped",
		    c.pending, conf->outbox_warn_events,
		    age < 0 ? "of unknown age, " : "", age < 0 ? 0 : age,
		    conf->outbox_warn_age_s);
	}
}

/* Nothing is pending, or the agent stops: acked entries can go. */
static void
compact(sender *s)
{
	char err[400];

	if (outbox_compact(s->ob, 1, err, sizeof err) != PROTO_OK)
		log_warn("AGENT-COMPACT", "%s", err);
}

static void
run_loop(sender *s)
{
	bool was_idle = true;

	while (!plat_stop_requested()) {
		bool idle = false, no_retry = false;
		proto_err rv = PROTO_OK;

		(void) plat_reload_take(); /* nothing to reload yet */
		watch(s);
		schema_check(s);
		if (!s->session)
			rv = hello(s, &no_retry);
		if (rv == PROTO_OK && !plat_stop_requested())
			rv = push(s, &idle, &no_retry);
		if (plat_stop_requested())
			break;
		if (rv != PROTO_OK) {
			backoff(s, rv, no_retry);
			continue;
		}
		if (s->failures > 0)
			log_notice("AGENT-HUB-OK",
			    "hub answered after %u failed attempts",
			    s->failures);
		s->failures = 0;
		sync_live(s);
		if (idle && !was_idle) {
			/* Just drained: tell the hub the queue is empty. */
			s->session = false;
			was_idle = true;
			continue;
		}
		was_idle = idle;
		if (idle) {
			compact(s);
			idle_wait(s);
		}
	}
}

static proto_err
open_socket(sender *s, char *err, size_t errlen)
{
	const agent_config *c = s->conf;
	hubclient_opts o = {.live = true, .stop = stop_on_signal};
	proto_err rv;

	if ((rv = hubclient_open(&s->hc, c, &o, err, errlen)) != PROTO_OK)
		return rv;
	if (c->nudge == NULL || c->nudge[0] == '\0')
		return PROTO_OK;
	if ((rv = nudgesub_open(c, "r", NULL, NULL, &s->sub, err, errlen))
	    != PROTO_OK)
		return rv;
	s->has_sub = true;
	return PROTO_OK;
}

proto_err
sender_run(const agent_config *conf, char *err, size_t errlen)
{
	sender s = {.conf = conf};
	proto_err rv;

	live_start();
	s.max_events = (size_t) conf->batch_max_events;
	s.max_bytes = (size_t) conf->batch_max_bytes;
	if ((rv = outbox_open(conf, &s.ob, err, errlen)) != PROTO_OK
	    || (rv = open_socket(&s, err, errlen)) != PROTO_OK)
		goto done;
	if ((s.b[0].arena = proto_arena_new()) == NULL
	    || (s.b[1].arena = proto_arena_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		rv = PROTO_ENOMEM;
		goto done;
	}
	/* Whatever changed while the agent was stopped, first. */
	s.sw = schemawatch_new(conf);
	refit(&s);
	{
		outbox_counts c;
		s.start_ms = plat_wall_ms();
		if (outbox_stats(s.ob, false, &c, err, errlen) == PROTO_OK)
			s.last_ack_ms = c.last_ack * 1000;
	}
	log_info("AGENT-START",
	    "branchsync-agent %s started: branch \"%s\", database \"%s\", "
	    "log \"%s\", hub %s",
	    AGENT_VERSION, conf->branch, conf->database, outbox_log_id(s.ob),
	    conf->hub);
	plat_notify("READY=1");
	run_loop(&s);
	hubclient_abandon(&s.hc);
	compact(&s);
	plat_notify("STOPPING=1");
	log_info("AGENT-STOP", "stopping");
done:
	hubclient_close(&s.hc);
	if (s.has_sub)
		nng_close(s.sub);
	proto_arena_free(s.b[0].arena);
	proto_arena_free(s.b[1].arena);
	outbox_close(s.ob);
	schemawatch_free(s.sw);
	live_stop();
	return rv;
}
