/*
 * server.c: nng rep0 socket, worker threads, request dispatch.
 *
 * The workers share nothing but the socket, the config and the catalog
 * (both read-only), so no locks are needed here: each has its own
 * PostgreSQL connection and apply context.
 */
#include "server.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "db.h"
#include "log.h"
#include "nudge.h"
#include "proto/msg.h"
#include "pull.h"
#include "util.h"

/* Receive timeout: how quickly a worker notices sig_term. */
#define RECV_TIMEOUT_MS 500
/* Send timeout: rep0 sends do not wait for the peer, but bound it. */
#define SEND_TIMEOUT_MS 5000
/* Longest log_id accepted (the agent uses 32 hex digits). */
#define LOG_ID_MAX 64

typedef struct {
	const hub_config *conf; /* borrowed */
	nng_socket sock;        /* shared rep0 socket */
	pthread_t thread;       /* the worker thread */
	bool started;           /* thread was created */
	int id;                 /* worker number, for logs */
	nng_ctx ctx;            /* this worker's rep0 context */
	nng_aio *aio;           /* this worker's aio */
	PGconn *conn;           /* this worker's PostgreSQL connection */
	apply_ctx *apply;       /* apply state tied to conn */
	pull_ctx *pull;         /* PULL page state */
	proto_limits lim;       /* decoder limits from the config */
	proto_buf out;          /* encoded reply */
	char err[1024];         /* reason of the current failure */
} worker;

/* set_error turns the current request's failure into an ERROR reply. */
static void
set_error(proto_msg *reply, proto_err code, const char *message)
{
	memset(reply, 0, sizeof *reply);
	reply->type = PROTO_ERROR;
	reply->u.error.code = code;
	reply->u.error.message = message;
	/* A database or resource problem may clear up; the rest will not. */
	reply->u.error.retry = code == PROTO_EDB || code == PROTO_ENOMEM
	    || code == PROTO_ETIMEDOUT || code == PROTO_EIO;
}

/* check_hdr authenticates a request's header; branch_id on success. */
static proto_err
check_hdr(worker *w, const proto_agent_hdr *h, int *branch_id)
{
	const char *branch = h->branch ? h->branch : "";
	proto_err rv;

	if (h->log_id == NULL || h->log_id[0] == '\0'
	    || strlen(h->log_id) > LOG_ID_MAX) {
		snprintf(w->err, sizeof w->err, "invalid log_id");
		return PROTO_EPROTO;
	}
	rv = db_auth(w->conn, branch, h->key ? h->key : "", branch_id, w->err,
	    sizeof w->err);
	if (rv == PROTO_EAUTH)
		log_warn("HUB-AUTH-FAIL",
		    "branch \"%s\": authentication "
		    "failed",
		    branch);
	else if (rv != PROTO_OK)
		log_error("HUB-DB-FAIL",
		    "branch \"%s\": could not "
		    "authenticate: %s",
		    branch, w->err);
	return rv;
}

static void
handle_hello(worker *w, const proto_hello *h, proto_msg *reply)
{
	int branch_id;
	proto_err rv;

	if ((rv = check_hdr(w, &h->hdr, &branch_id)) != PROTO_OK) {
		set_error(reply, rv, w->err);
		return;
	}
	reply->type = PROTO_WELCOME;
	rv = apply_hello(
	    w->apply, branch_id, h, &reply->u.welcome, w->err, sizeof w->err);
	if (rv != PROTO_OK) {
		log_error("HUB-DB-FAIL",
		    "branch \"%s\": could not answer "
		    "hello: %s",
		    h->hdr.branch, w->err);
		set_error(reply, rv, w->err);
		return;
	}
	log_debug("HUB-HELLO", "branch \"%s\" log %s: watermark %" PRId64,
	    h->hdr.branch, h->hdr.log_id, reply->u.welcome.watermark);
}

static void
handle_push(worker *w, const proto_push *p, proto_msg *reply)
{
	int branch_id;
	proto_err rv;
	int64_t t0 = now_mono_ms();

	if ((rv = check_hdr(w, &p->hdr, &branch_id)) != PROTO_OK) {
		set_error(reply, rv, w->err);
		return;
	}
	reply->type = PROTO_ACK;
	rv = apply_push(
	    w->apply, branch_id, p, &reply->u.ack, w->err, sizeof w->err);
	if (rv != PROTO_OK) {
		if (rv == PROTO_EPROTO)
			log_warn("HUB-BAD-REQUEST", "branch \"%s\": %s",
			    p->hdr.branch, w->err);
		else
			log_error("HUB-APPLY-FAIL",
			    "branch \"%s\" log %s: "
			    "could not apply batch: %s",
			    p->hdr.branch, p->hdr.log_id, w->err);
		set_error(reply, rv, w->err);
		return;
	}
	log_debug("HUB-PUSH",
	    "branch \"%s\": %u events, %" PRId64 " applied, %" PRId64
	    " duplicates, watermark %" PRId64 " in %" PRId64 " ms",
	    p->hdr.branch, p->nevents, reply->u.ack.applied,
	    reply->u.ack.duplicates, reply->u.ack.watermark,
	    now_mono_ms() - t0);
}

static void
handle_pull(worker *w, const proto_pull *p, proto_msg *reply)
{
	int branch_id;
	proto_err rv;
	int64_t t0 = now_mono_ms();

	if ((rv = check_hdr(w, &p->hdr, &branch_id)) != PROTO_OK) {
		set_error(reply, rv, w->err);
		return;
	}
	reply->type = PROTO_CHANGES;
	rv = pull_page(w->pull, w->conn, branch_id, p, &reply->u.changes,
	    w->err, sizeof w->err);
	if (rv != PROTO_OK) {
		log_error("HUB-PULL-FAIL",
		    "branch \"%s\": could not read changes after %" PRId64
		    ": %s",
		    p->hdr.branch, p->cursor, w->err);
		set_error(reply, rv, w->err);
		return;
	}
	log_debug("HUB-PULL",
	    "branch \"%s\": %u changes after %" PRId64 ", cursor %" PRId64
	    "%s in %" PRId64 " ms",
	    p->hdr.branch, reply->u.changes.nchanges, p->cursor,
	    reply->u.changes.cursor, reply->u.changes.more ? ", more" : "",
	    now_mono_ms() - t0);
}

/* encode_reply turns reply into an nng message, or NULL if impossible. */
static nng_msg *
encode_reply(worker *w, const proto_msg *reply)
{
	char err[256];
	nng_msg *msg;
	proto_msg fallback;

	proto_buf_reset(&w->out);
	if (proto_msg_encode(reply, &w->out, err, sizeof err) != PROTO_OK) {
		log_error("HUB-ENCODE-FAIL", "could not encode %s reply: %s",
		    proto_type_name(reply->type), err);
		set_error(&fallback, PROTO_ENOMEM, "could not encode reply");
		proto_buf_reset(&w->out);
		if (proto_msg_encode(&fallback, &w->out, err, sizeof err)
		    != PROTO_OK)
			return NULL;
	}
	if (nng_msg_alloc(&msg, 0) != 0)
		return NULL;
	if (nng_msg_append(msg, w->out.data, w->out.len) != 0) {
		nng_msg_free(msg);
		return NULL;
	}
	return msg;
}

/* reconnect_once replaces a lost connection with one attempt. */
static bool
reconnect_once(worker *w)
{
	char err[512];
	PGconn *conn;

	if (db_connect(w->conf->postgres, &conn, err, sizeof err) != PROTO_OK)
		return false;
	apply_set_conn(w->apply, conn);
	PQfinish(w->conn);
	w->conn = conn;
	log_info("HUB-DB-UP", "worker %d: reconnected to PostgreSQL", w->id);
	return true;
}

/*
 * dispatch answers a decoded request. A connection found dead (e.g. after
 * a PostgreSQL restart: every idle connection is) is replaced and the
 * request retried once, so the agent sees no error for it. The retry is
 * safe even if a COMMIT got through before the connection died: the
 * watermark turns the replayed events into duplicates.
 */
static void
dispatch(worker *w, const proto_msg *m, proto_msg *reply)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		memset(reply, 0, sizeof *reply);
		if (m->type == PROTO_HELLO)
			handle_hello(w, &m->u.hello, reply);
		else if (m->type == PROTO_PUSH)
			handle_push(w, &m->u.push, reply);
		else if (m->type == PROTO_PULL)
			handle_pull(w, &m->u.pull, reply);
		else {
			snprintf(w->err, sizeof w->err,
			    "unexpected message "
			    "type \"%s\"",
			    proto_type_name(m->type));
			log_warn("HUB-BAD-REQUEST", "%s", w->err);
			set_error(reply, PROTO_EPROTO, w->err);
		}
		if (reply->type != PROTO_ERROR
		    || reply->u.error.code != PROTO_EDB || !db_lost(w->conn)
		    || attempt > 0 || !reconnect_once(w))
			return;
	}
}

/* handle decodes one request and returns the reply to send (or NULL). */
static nng_msg *
handle(worker *w, nng_msg *req)
{
	proto_msg *m = NULL, reply;
	nng_msg *out;
	proto_err rv;

	memset(&reply, 0, sizeof reply);
	rv = proto_msg_decode(nng_msg_body(req), nng_msg_len(req), &w->lim, &m,
	    w->err, sizeof w->err);
	if (rv != PROTO_OK) {
		log_warn(
		    "HUB-BAD-REQUEST", "could not decode request: %s", w->err);
		set_error(&reply, rv, w->err);
	} else
		dispatch(w, m, &reply);
	/* The reply may point into m (log_id) and w: encode before freeing. */
	out = encode_reply(w, &reply);
	proto_msg_free(m);
	return out;
}

/* reconnect replaces a lost PostgreSQL connection; false on sig_term. */
static bool
reconnect(worker *w)
{
	apply_set_conn(w->apply, NULL);
	PQfinish(w->conn);
	w->conn = NULL;
	if (db_connect_retry(w->conf->postgres, &w->conn) != PROTO_OK)
		return false;
	apply_set_conn(w->apply, w->conn);
	log_info("HUB-DB-UP", "worker %d: connected to PostgreSQL", w->id);
	return true;
}

/* serve_one waits for one request and answers it. False: stop. */
static bool
serve_one(worker *w)
{
	nng_msg *req, *rep;
	int rv;

	nng_aio_set_timeout(w->aio, RECV_TIMEOUT_MS);
	nng_ctx_recv(w->ctx, w->aio);
	nng_aio_wait(w->aio);
	rv = nng_aio_result(w->aio);
	if (rv == NNG_ETIMEDOUT)
		return true;
	if (rv != 0) {
		if (rv != NNG_ECLOSED)
			log_error("HUB-RECV-FAIL",
			    "worker %d: receive "
			    "failed: %s",
			    w->id, nng_strerror(rv));
		return rv != NNG_ECLOSED;
	}
	req = nng_aio_get_msg(w->aio);
	rep = handle(w, req);
	nng_msg_free(req);
	if (rep != NULL) {
		nng_aio_set_msg(w->aio, rep);
		nng_aio_set_timeout(w->aio, SEND_TIMEOUT_MS);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		if (nng_aio_result(w->aio) != 0)
			nng_msg_free(rep); /* not sent: still ours */
	}
	if (db_lost(w->conn))
		return reconnect(w);
	return true;
}

static void *
worker_main(void *arg)
{
	worker *w = arg;

	if (db_connect_retry(w->conf->postgres, &w->conn) != PROTO_OK)
		return NULL;
	apply_set_conn(w->apply, w->conn);
	while (!sig_term && serve_one(w))
		;
	return NULL;
}

/* worker_init prepares worker i (context, aio, apply state). */
static proto_err
worker_init(worker *w, int i, const hub_config *conf, const catalog *cat,
    nng_socket sock, char *err, size_t errlen)
{
	int rv;

	w->conf = conf;
	w->sock = sock;
	w->id = i;
	proto_limits_default(&w->lim);
	w->lim.max_msg_bytes = (size_t) conf->max_message_bytes;
	w->lim.max_events = (uint32_t) conf->max_batch_events;
	w->apply = apply_new(conf, cat);
	w->pull = pull_new(conf, cat);
	if ((rv = nng_ctx_open(&w->ctx, sock)) != 0
	    || (rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0) {
		snprintf(err, errlen, "could not start worker %d: %s", i,
		    nng_strerror(rv));
		return PROTO_EIO;
	}
	return PROTO_OK;
}

static void
worker_fini(worker *w)
{
	if (w->started)
		pthread_join(w->thread, NULL);
	if (w->aio != NULL)
		nng_aio_free(w->aio);
	nng_ctx_close(w->ctx);
	apply_free(w->apply);
	pull_free(w->pull);
	PQfinish(w->conn);
	proto_buf_fini(&w->out);
}

/* open_socket makes the rep0 socket and listens on every URL. */
static proto_err
open_socket(const hub_config *conf, nng_socket *sock, char *err, size_t errlen)
{
	int rv;

	if ((rv = nng_rep0_open(sock)) != 0) {
		snprintf(err, errlen, "could not open socket: %s",
		    nng_strerror(rv));
		return PROTO_EIO;
	}
	/* Bound what one peer can make us buffer before decoding. */
	nng_socket_set_size(
	    *sock, NNG_OPT_RECVMAXSZ, (size_t) conf->max_message_bytes);
	for (size_t i = 0; i < conf->nurls; i++) {
		if ((rv = nng_listen(*sock, conf->urls[i], NULL, 0)) != 0) {
			snprintf(err, errlen, "could not listen on \"%s\": %s",
			    conf->urls[i], nng_strerror(rv));
			nng_close(*sock);
			return PROTO_EIO;
		}
	}
	return PROTO_OK;
}

proto_err
server_run(
    const hub_config *conf, const catalog *cat, char *err, size_t errlen)
{
	size_t n = (size_t) conf->workers;
	worker *ws = xcalloc(n, sizeof *ws);
	nng_socket sock;
	nudge *nd = NULL;
	proto_err rv;

	if ((rv = open_socket(conf, &sock, err, errlen)) != PROTO_OK) {
		free(ws);
		return rv;
	}
	if ((rv = nudge_start(conf, &nd, err, errlen)) != PROTO_OK) {
		nng_close(sock);
		free(ws);
		return rv;
	}
	for (size_t i = 0; i < n && rv == PROTO_OK; i++) {
		rv = worker_init(
		    &ws[i], (int) i, conf, cat, sock, err, errlen);
		if (rv != PROTO_OK)
			break;
		if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i])
		    != 0) {
			snprintf(err, errlen, "could not start worker thread");
			rv = PROTO_EIO;
			break;
		}
		ws[i].started = true;
	}
	if (rv == PROTO_OK) {
		log_info("HUB-START", "listening on %s with %zu workers",
		    conf->listen, n);
		sd_notify_msg("READY=1");
		while (!sig_term)
			sleep_ms(1000);
		sd_notify_msg("STOPPING=1");
		log_info("HUB-STOP", "stopping: finishing requests in flight");
	} else
		sig_term = 1; /* make started workers leave their loop */
	for (size_t i = 0; i < n; i++)
		worker_fini(&ws[i]);
	nudge_stop(nd);
	nng_close(sock);
	free(ws);
	return rv;
}
