/*
 * server.c: nng rep0 socket, worker threads, request dispatch.
 *
 * The workers share the socket, the config and the catalog (both
 * read-only), the key cache, and one small table (server_int.h) of the
 * connections (nng pipes) and of whether each branch was last seen
 * behind. That table is guarded by one mutex, held only for a lookup and
 * a log line; nng's pipe callbacks use it too. Everything else a worker
 * touches is its own: PostgreSQL connection, apply context.
 *
 * A request is authenticated (serverauth.c) from its envelope before its
 * body is decoded, and without a query; a connection gets its nonce here
 * when it comes, or is closed at once if its address is shut out for
 * failing too often (guard.h). A version 1 request, whose key travels in
 * clear, is refused unless accept_plain_keys.
 *
 * With tls_client_ca, the CN of every TLS connection's client certificate
 * is read when the pipe comes (serverauth.c checks it). nng reports the CN
 * only from version 1.6 (NNG_OPT_TLS_PEER_CN); with an older libnng the
 * hub says so at start and only requires the CA.
 */
#include "server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fault.h"
#include "housekeep.h"
#include "log.h"
#include "metrics.h"
#include "nudge.h"
#include "platform.h"
#include "request.h"
#include "server_int.h"
#include "tls.h"
#include "util.h"

/* A peer can send any number of bad requests: their lines are limited. */
static log_limit bad_request_log = LOG_LIMIT_DEFAULT;

#ifndef NNG_OPT_TLS_PEER_CN
#define NNG_OPT_TLS_PEER_CN "tls-peer-cn" /* nng 1.6 and later */
#endif

/* Receive timeout: how quickly a worker notices a stop request. */
#define RECV_TIMEOUT_MS 500
/* Send timeout: rep0 sends do not wait for the peer, but bound it. */
#define SEND_TIMEOUT_MS 5000
/* format_addr writes a peer address as text ("10.0.0.7:51234"). */
static void
format_addr(const nng_sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	switch (sa->s_family) {
	case NNG_AF_INET:
		if (inet_ntop(AF_INET, &sa->s_in.sa_addr, ip, sizeof ip)
		    == NULL)
			break;
		snprintf(buf, len, "%s:%u", ip, ntohs(sa->s_in.sa_port));
		return;
	case NNG_AF_INET6:
		if (inet_ntop(AF_INET6, sa->s_in6.sa_addr, ip, sizeof ip)
		    == NULL)
			break;
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sa->s_in6.sa_port));
		return;
	case NNG_AF_IPC:
		snprintf(buf, len, "ipc://%.*s", (int) (len - 7),
		    sa->s_ipc.sa_path);
		return;
	case NNG_AF_INPROC:
		snprintf(buf, len, "inproc://%.*s", (int) (len - 10),
		    sa->s_inproc.sa_name);
		return;
	case NNG_AF_ABSTRACT:
		snprintf(buf, len, "abstract socket");
		return;
	default:
		break;
	}
	snprintf(buf, len, "unknown address");
}

conn_info *
conn_find(server_state *st, uint32_t id)
{
	for (size_t i = 0; i < st->nconns; i++)
		if (st->conns[i].id == id)
			return &st->conns[i];
	return NULL;
}

/*
 * peer_cn notes in c whether pipe p is a TLS connection and the CN of its
 * client certificate. A CN that cannot be read stays "", which no branch
 * code equals: the requests on that pipe are refused.
 */
static void
peer_cn(nng_pipe p, conn_info *c)
{
	bool verified;
	char *cn = NULL;

	if (nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &verified) != 0)
		return; /* not TLS: tcp:// beside tls+tcp:// */
	c->tls = true;
	if (nng_pipe_get_string(p, NNG_OPT_TLS_PEER_CN, &cn) == 0) {
		snprintf(c->cn, sizeof c->cn, "%s", cn);
		nng_strfree(cn);
	}
}

/*
 * pipe_add fills the entry of a new pipe: its address, a fresh nonce and,
 * on TLS, its CN. false if the pipe is to be closed: no random bytes, or
 * its address is shut out (guard.h).
 */
static bool
pipe_add(server_state *st, nng_pipe p, conn_info *c)
{
	nng_sockaddr sa;
	bool blocked;

	c->since_ms = plat_mono_ms();
	c->last_ctr = -1;
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0) {
		format_addr(&sa, c->peer, sizeof c->peer);
		guard_key(&sa, c->host);
	} else
		snprintf(c->peer, sizeof c->peer, "unknown address");
	if (plat_rand_bytes(c->nonce, sizeof c->nonce) != PROTO_OK) {
		log_error("HUB-RAND-FAIL",
		    "no random bytes for the nonce of a connection from %s",
		    c->peer);
		return false;
	}
	if (st->check_cn)
		peer_cn(p, c);
	pthread_mutex_lock(&st->mu);
	blocked = guard_blocked(st->guard, c->host, c->since_ms);
	pthread_mutex_unlock(&st->mu);
	if (blocked) {
		metrics_auth_blocked();
		log_debug("HUB-AUTH-BLOCK",
		    "connection from %s closed: its address failed to "
		    "authenticate too often",
		    c->peer);
	}
	return !blocked;
}

/*
 * pipe_cb follows the connections of the request socket: it gives each a
 * nonce, closes those from an address that is shut out, counts them for
 * metrics and logs when one that carried a branch goes away. nng calls it
 * from its own threads.
 */
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	server_state *st = arg;
	uint32_t id = (uint32_t) nng_pipe_id(p);
	conn_info c = {.id = id}, *found;

	if (ev == NNG_PIPE_EV_ADD_PRE) {
		/* Closed here, the pipe never reaches the socket. */
		if (!pipe_add(st, p, &c)) {
			nng_pipe_close(p);
			return;
		}
		pthread_mutex_lock(&st->mu);
		if (st->nconns == st->cconns) {
			st->cconns = st->cconns ? 2 * st->cconns : 16;
			st->conns = xrealloc(
			    st->conns, st->cconns * sizeof *st->conns);
		}
		st->conns[st->nconns++] = c;
		pthread_mutex_unlock(&st->mu);
		metrics_agents_delta(1);
		log_debug("HUB-PIPE-ADD", "connection %" PRIu32 " from %s", id,
		    c.peer);
		return;
	}
	if (ev != NNG_PIPE_EV_REM_POST)
		return;
	pthread_mutex_lock(&st->mu);
	if ((found = conn_find(st, id)) != NULL) {
		c = *found;
		*found = st->conns[--st->nconns];
		/* Under the lock: after this branch's CONNECT line. */
		if (c.who[0] != '\0')
			log_info("HUB-BRANCH-DISCONNECT",
			    "%s from %s disconnected after %" PRId64 " s",
			    c.who, c.peer,
			    (plat_mono_ms() - c.since_ms) / 1000);
	}
	pthread_mutex_unlock(&st->mu);
	if (found == NULL)
		return;
	metrics_agents_delta(-1);
	if (c.who[0] == '\0')
		log_debug("HUB-PIPE-REM",
		    "connection %" PRIu32 " from %s closed", id, c.peer);
}

/* branch_get returns the entry of a till, adding it (*added) if new. */
static branch_info *
branch_get(server_state *st, int branch_id, int till_id, bool *added)
{
	*added = false;
	for (size_t i = 0; i < st->nbranch; i++)
		if (st->branches[i].branch_id == branch_id
		    && st->branches[i].till_id == till_id)
			return &st->branches[i];
	if (st->nbranch == st->cbranch) {
		st->cbranch = st->cbranch ? 2 * st->cbranch : 16;
		st->branches = xrealloc(
		    st->branches, st->cbranch * sizeof *st->branches);
	}
	*added = true;
	st->branches[st->nbranch] = (branch_info) {branch_id, till_id, false};
	return &st->branches[st->nbranch++];
}

void
printable(const char *s, char *out, size_t len)
{
	size_t i = 0;

	for (; s != NULL && s[i] != '\0' && i + 1 < len && i < VERSION_MAX;
	     i++)
		out[i]
		    = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
}

/*
 * note_branch runs on every authenticated request: the first one on a
 * connection logs HUB-BRANCH-CONNECT; with queue (HELLO and PUSH, whose
 * headers carry the agent's backlog; a PULL's does not) a crossing of
 * behind_events or behind_seconds logs HUB-BRANCH-BEHIND or
 * HUB-BRANCH-CAUGHT-UP. Only transitions are logged, never a batch; a
 * branch first seen behind after a start counts as one. Each till of a
 * branch has its own queue, so its own transitions.
 */
static void
note_branch(worker *w, const proto_agent_hdr *h, int branch_id,
    const char *version, bool queue)
{
	server_state *st = w->st;
	char ver[VERSION_MAX + 1];
	conn_info *c;
	branch_info *b;
	bool behind, added;

	w->authed = branch_id;
	pthread_mutex_lock(&st->mu);
	c = conn_find(st, (uint32_t) nng_pipe_id(w->pipe));
	if (c != NULL && strcmp(c->who, w->who) != 0) {
		snprintf(c->who, sizeof c->who, "%s", w->who);
		printable(version, ver, sizeof ver);
		log_info("HUB-BRANCH-CONNECT", "%s connected from %s%s%s%s",
		    c->who, c->peer, version != NULL ? ", agent " : "",
		    version != NULL ? ver : "",
		    w->old_key ? ", with its previous key (rotate-key "
		                 "overlap): install the new one"
		               : "");
	}
	if (queue) {
		behind = h->queue_events >= st->behind_events
		    || h->oldest_age_s >= st->behind_seconds;
		b = branch_get(st, branch_id, w->till_id, &added);
		if (behind && !b->behind)
			log_warn("HUB-BRANCH-BEHIND",
			    "%s is behind: %" PRId64
			    " events waiting (behind_events %" PRId64
			    "), oldest %" PRId64 " s (behind_seconds %" PRId64
			    ")",
			    w->who, h->queue_events, st->behind_events,
			    h->oldest_age_s, st->behind_seconds);
		else if (!behind && b->behind)
			log_notice("HUB-BRANCH-CAUGHT-UP",
			    "%s caught up: %" PRId64
			    " events waiting, oldest %" PRId64 " s",
			    w->who, h->queue_events, h->oldest_age_s);
		b->behind = behind;
	}
	pthread_mutex_unlock(&st->mu);
}

static void
handle_hello(worker *w, const proto_hello *h, proto_msg *reply)
{
	proto_err rv;

	note_branch(w, &h->hdr, w->branch_id, h->version, true);
	reply->type = PROTO_WELCOME;
	rv = apply_hello(w->apply, w->branch_id, h, &reply->u.welcome, w->err,
	    sizeof w->err);
	if (rv != PROTO_OK) {
		log_error("HUB-DB-FAIL", "%s: could not answer hello: %s",
		    w->who, w->err);
		request_error_set(reply, rv, w->err);
		return;
	}
	log_debug("HUB-HELLO", "%s log=%s: watermark %" PRId64, w->who,
	    h->hdr.log_id, reply->u.welcome.watermark);
}

static void
handle_push(worker *w, const proto_push *p, proto_msg *reply)
{
	proto_err rv;
	int64_t t0 = plat_mono_us();

	note_branch(w, &p->hdr, w->branch_id, NULL, true);
	reply->type = PROTO_ACK;
	rv = apply_push(
	    w->apply, w->branch_id, p, &reply->u.ack, w->err, sizeof w->err);
	if (rv != PROTO_OK) {
		if (rv == PROTO_EPROTO)
			log_limited(&bad_request_log, LOG_LVL_WARN,
			    "HUB-BAD-REQUEST", "%s: %s", w->who, w->err);
		else
			log_error("HUB-APPLY-FAIL",
			    "%s log=%s: could not apply batch: %s", w->who,
			    p->hdr.log_id, w->err);
		request_error_set(reply, rv, w->err);
		return;
	}
	/* Committed; the ACK is not sent yet: the lost-ACK window. */
	fault_hit(FAULT_HUB_AFTER_COMMIT);
	t0 = plat_mono_us() - t0;
	metrics_observe_apply((double) t0 / 1e6);
	log_debug("HUB-PUSH",
	    "%s log=%s: %u events, %" PRId64 " applied, %" PRId64
	    " duplicates, watermark %" PRId64 " in %" PRId64 " ms",
	    w->who, p->hdr.log_id, p->nevents, reply->u.ack.applied,
	    reply->u.ack.duplicates, reply->u.ack.watermark, t0 / 1000);
}

static void
handle_pull(worker *w, const proto_pull *p, proto_msg *reply)
{
	proto_err rv;
	int64_t t0 = plat_mono_ms();

	note_branch(w, &p->hdr, w->branch_id, NULL, false);
	reply->type = PROTO_CHANGES;
	rv = pull_page(w->pull, w->conn, w->branch_id, w->till_id, p,
	    &reply->u.changes, w->err, sizeof w->err);
	if (rv != PROTO_OK) {
		log_error("HUB-PULL-FAIL",
		    "%s: could not read changes after %" PRId64 ": %s", w->who,
		    p->cursor, w->err);
		request_error_set(reply, rv, w->err);
		return;
	}
	log_debug("HUB-PULL",
	    "%s: %u changes after %" PRId64 ", cursor %" PRId64
	    "%s in %" PRId64 " ms",
	    w->who, reply->u.changes.nchanges, p->cursor,
	    reply->u.changes.cursor, reply->u.changes.more ? ", more" : "",
	    plat_mono_ms() - t0);
}

/*
 * encode_v2 writes reply as a version 2 answer into w->out: its body, and
 * the auth map w->ans says (a MAC once the request was authenticated, the
 * connection's nonce for PROTO_ENONCE).
 */
static proto_err
encode_v2(worker *w, const proto_msg *reply, char *err, size_t errlen)
{
	uint8_t digest[PROTO_DIGEST_BYTES];
	proto_env env;
	proto_err rv;

	memset(&env, 0, sizeof env);
	proto_buf_reset(&w->body);
	if ((rv = proto_body_encode(reply, &w->body, err, errlen)) != PROTO_OK)
		return rv;
	env.type = reply->type;
	env.body = w->body.data;
	env.body_len = w->body.len;
	if (w->ans.mac
	    && ((rv = proto_digest(env.body, env.body_len, digest)) != PROTO_OK
	        || (rv = proto_rep_mac(w->ans.secret, reply->type,
	                w->ans.req_mac, digest, env.auth.mac))
	            != PROTO_OK)) {
		snprintf(err, errlen, "could not compute the answer's MAC");
		return rv;
	}
	env.auth.has_mac = w->ans.mac;
	env.auth.has_nonce = w->ans.nonce;
	memcpy(env.auth.nonce, w->ans.nonce_v, sizeof env.auth.nonce);
	return proto_env_encode(&env, &w->out, err, errlen);
}

/* encode_any writes reply into w->out in the request's version. */
static proto_err
encode_any(worker *w, const proto_msg *reply, char *err, size_t errlen)
{
	proto_buf_reset(&w->out);
	if (w->ans.version == PROTO_VERSION_PLAIN)
		return proto_msg_encode(reply, &w->out, err, errlen);
	return encode_v2(w, reply, err, errlen);
}

/* encode_reply turns reply into an nng message, or NULL if impossible. */
static nng_msg *
encode_reply(worker *w, const proto_msg *reply)
{
	char err[256];
	nng_msg *msg;
	proto_msg fallback;

	if (encode_any(w, reply, err, sizeof err) != PROTO_OK) {
		log_error("HUB-ENCODE-FAIL", "could not encode %s reply: %s",
		    proto_type_name(reply->type), err);
		request_error_set(
		    &fallback, PROTO_ENOMEM, "could not encode reply");
		if (encode_any(w, &fallback, err, sizeof err) != PROTO_OK)
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

/*
 * request_failed counts a failed PUSH and records the failure of a PUSH
 * or PULL in the branch's status row, for operators: best effort, outside
 * the failed transaction (already rolled back), and left alone by later
 * successes so the last error and its time stay visible.
 */
static void
request_failed(worker *w, proto_type type, const char *why)
{
	char id[16], till[16], text[1100], err[256];
	const char *params[3] = {id, text, till};

	if (type == PROTO_PUSH)
		metrics_apply_error();
	if (db_lost(w->conn))
		return;
	snprintf(id, sizeof id, "%d", w->authed);
	snprintf(till, sizeof till, "%d", w->till_id);
	snprintf(text, sizeof text, "%s: %s",
	    type == PROTO_PUSH ? "could not apply batch"
	                       : "could not read changes",
	    why != NULL ? why : "");
	/*
	 * An upsert, not a bare UPDATE: a branch whose very first PUSH fails
	 * has no status row yet (the failed transaction took it along), and
	 * its error is the one operators most need to see.
	 */
	if (db_exec(w->conn,
	        "INSERT INTO branchsync.branch_status(branch_id, till_id,"
	        " last_error, last_error_at) VALUES ($1, $3, $2, now())"
	        " ON CONFLICT (branch_id, till_id) DO UPDATE SET"
	        " last_error = EXCLUDED.last_error,"
	        " last_error_at = EXCLUDED.last_error_at",
	        3, params, PGRES_COMMAND_OK, NULL, NULL, err, sizeof err)
	    != PROTO_OK)
		log_debug(
		    "HUB-DB-FAIL", "could not record the error: %s", err);
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
 * dispatch answers an authenticated request (HELLO, PUSH or PULL). A
 * connection found dead (e.g. after a PostgreSQL restart: every idle
 * connection is) is replaced and the
 * request retried once, so the agent sees no error for it. The retry is
 * safe even if a COMMIT got through before the connection died: the
 * watermark turns the replayed events into duplicates.
 */
static void
dispatch(worker *w, const proto_msg *m, proto_msg *reply)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		memset(reply, 0, sizeof *reply);
		w->authed = -1;
		if (m->type == PROTO_HELLO)
			handle_hello(w, &m->u.hello, reply);
		else if (m->type == PROTO_PUSH)
			handle_push(w, &m->u.push, reply);
		else
			handle_pull(w, &m->u.pull, reply);
		if (reply->type == PROTO_ERROR
		    && reply->u.error.code == PROTO_EDB)
			metrics_pg_error();
		if (reply->type != PROTO_ERROR
		    || reply->u.error.code != PROTO_EDB || !db_lost(w->conn)
		    || attempt > 0 || !reconnect_once(w))
			break;
	}
	if (reply->type == PROTO_ERROR && w->authed >= 0
	    && (m->type == PROTO_PUSH || m->type == PROTO_PULL))
		request_failed(w, m->type, reply->u.error.message);
}

/*
 * handle_plain answers a version 1 request: refused unless
 * accept_plain_keys, then decoded whole (its key is in the body) and
 * authenticated by that key.
 */
static void
handle_plain(
    worker *w, const void *data, size_t len, proto_msg **m, proto_msg *reply)
{
	w->ans.version = PROTO_VERSION_PLAIN;
	metrics_plain_request();
	if (!w->conf->accept_plain_keys) {
		serverauth_plain_noted(w, false);
		request_error_set(reply, PROTO_EVERSION, PLAIN_REFUSED);
		return;
	}
	if (request_decode(data, len, &w->lim, m, reply, w->err, sizeof w->err)
	        == PROTO_OK
	    && serverauth_plain(w, request_hdr(*m), reply) == PROTO_OK)
		dispatch(w, *m, reply);
}

/*
 * handle_v2 answers a version 2 request: authenticated from its envelope
 * before its body is decoded.
 */
static void
handle_v2(worker *w, const proto_env *env, proto_msg **m, proto_msg *reply)
{
	if (serverauth_request(w, env, reply) != PROTO_OK)
		return;
	if (request_body(env, &w->lim, m, reply, w->err, sizeof w->err)
	    != PROTO_OK) {
		log_limited(&bad_request_log, LOG_LVL_WARN, "HUB-BAD-REQUEST",
		    "%s: %s", w->who, w->err);
		return;
	}
	dispatch(w, *m, reply);
}

/*
 * handle answers one request: the reply to send, or NULL for none (the
 * connection is closed then when w->ans.drop).
 */
static nng_msg *
handle(worker *w, nng_msg *req)
{
	const void *data = nng_msg_body(req);
	size_t len = nng_msg_len(req);
	proto_msg *m = NULL, reply;
	nng_msg *out = NULL;
	proto_env env;

	memset(&reply, 0, sizeof reply);
	memset(&w->ans, 0, sizeof w->ans);
	w->ans.version = PROTO_VERSION;
	w->pipe = nng_msg_get_pipe(req);
	if (request_open(
	        data, len, &w->lim, &env, &reply, w->err, sizeof w->err)
	    == PROTO_OK) {
		if (env.version == PROTO_VERSION_PLAIN)
			handle_plain(w, data, len, &m, &reply);
		else
			handle_v2(w, &env, &m, &reply);
	}
	/* The reply may point into m (log_id) and w: encode before freeing. */
	if (!w->ans.drop)
		out = encode_reply(w, &reply);
	else
		nng_pipe_close(w->pipe);
	proto_msg_free(m);
	explicit_bzero(w->ans.secret, sizeof w->ans.secret);
	return out;
}

/* reconnect replaces a lost PostgreSQL connection; false once a stop is
 * requested. */
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
	while (!plat_stop_requested() && serve_one(w))
		;
	return NULL;
}

/* worker_init prepares worker i (context, aio, apply state). */
static proto_err
worker_init(worker *w, int i, const hub_config *conf, const catalog *cat,
    nng_socket sock, server_state *st, char *err, size_t errlen)
{
	int rv;

	w->conf = conf;
	w->st = st;
	w->sock = sock;
	w->id = i;
	hub_config_limits(conf, &w->lim);
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
	proto_buf_fini(&w->body);
}

/*
 * loopback_url says whether a tcp:// URL listens on a loopback address
 * only (127.x.x.x, [::1], localhost), which other hosts cannot reach.
 */
static bool
loopback_url(const char *url)
{
	const char *host = strstr(url, "://"), *end;
	size_t n;

	if (host == NULL)
		return false;
	host += 3;
	if ((end = strrchr(host, ':')) == NULL)
		end = host + strlen(host);
	if (host[0] == '[' && end > host && end[-1] == ']') {
		host++;
		end--;
	}
	n = (size_t) (end - host);
	return (n == 9 && !strncmp(host, "localhost", 9))
	    || (n == 3 && !strncmp(host, "::1", 3))
	    || (n > 4 && !strncmp(host, "127.", 4));
}

/*
 * warn_plain logs HUB-PLAIN-LISTEN for a tcp:// listener that other hosts
 * can reach: no request there can be forged or replayed, and no key
 * crosses it, but sales and master data do, readable by anyone on the
 * path.
 */
static void
warn_plain(const char *url)
{
	if ((strncmp(url, "tcp://", 6) != 0 && strncmp(url, "tcp4://", 7) != 0
	        && strncmp(url, "tcp6://", 7) != 0)
	    || loopback_url(url))
		return;
	log_warn("HUB-PLAIN-LISTEN",
	    "listening on \"%s\" without TLS at an address other hosts can "
	    "reach: requests are authenticated without sending keys, but "
	    "sales and master data cross the network unencrypted; use "
	    "tls+tcp:// (docs/security.md)",
	    url);
}

/* open_socket makes the rep0 socket and listens on every URL. */
static proto_err
open_socket(const hub_config *conf, server_state *st, nng_tls_config *tls,
    nng_socket *sock, char *err, size_t errlen)
{
	int rv;

	if ((rv = nng_rep0_open(sock)) != 0) {
		snprintf(err, errlen, "could not open socket: %s",
		    nng_strerror(rv));
		return PROTO_EIO;
	}
	/* Before listening, so that no connection goes unseen. */
	if ((rv = nng_pipe_notify(*sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, st))
	        != 0
	    || (rv = nng_pipe_notify(*sock, NNG_PIPE_EV_REM_POST, pipe_cb, st))
	        != 0) {
		snprintf(err, errlen, "could not watch connections: %s",
		    nng_strerror(rv));
		nng_close(*sock);
		return PROTO_EIO;
	}
	/* Bound what one peer can make us buffer before decoding. */
	nng_socket_set_size(
	    *sock, NNG_OPT_RECVMAXSZ, (size_t) conf->max_message_bytes);
	for (size_t i = 0; i < conf->nurls; i++) {
		warn_plain(conf->urls[i]);
		if (tls_listen(*sock, conf->urls[i], tls, err, errlen)
		    != PROTO_OK) {
			nng_close(*sock);
			return PROTO_EIO;
		}
	}
	return PROTO_OK;
}

/* peer_cn_supported: the linked nng reports a peer's CN (1.6 and later). */
static bool
peer_cn_supported(void)
{
	int major = 0, minor = 0;

	if (sscanf(nng_version(), "%d.%d", &major, &minor) != 2)
		return false;
	return major > 1 || (major == 1 && minor >= 6);
}

/*
 * tls_start builds the TLS configuration of the listeners when a listen
 * or publish URL uses TLS (*tls stays NULL otherwise) and decides whether
 * client certificates map to branches.
 */
static proto_err
tls_start(const hub_config *conf, server_state *st, nng_tls_config **tls,
    char *err, size_t errlen)
{
	tls_opts o = {conf->tls_client_ca, "tls_client_ca", conf->tls_cert,
	    conf->tls_key, NULL, "HUB-KEY-PERMS"};
	proto_err rv;

	*tls = NULL;
	if (!tls_any_url(conf->urls, conf->nurls)
	    && !tls_any_url(conf->pub_urls, conf->npub))
		return PROTO_OK;
	if ((rv = tls_server_new(&o, tls, err, errlen)) != PROTO_OK)
		return rv;
	st->check_cn = conf->tls_client_ca != NULL && peer_cn_supported();
	if (conf->tls_client_ca == NULL)
		log_info(
		    "HUB-TLS", "TLS with certificate \"%s\"", conf->tls_cert);
	else if (st->check_cn)
		log_info("HUB-TLS",
		    "TLS with certificate \"%s\"; client certificates "
		    "signed by \"%s\" required, their CN must be the branch "
		    "code",
		    conf->tls_cert, conf->tls_client_ca);
	else
		log_warn("HUB-TLS-NO-CN",
		    "TLS with certificate \"%s\"; client certificates "
		    "signed by \"%s\" required, but nng %s cannot report "
		    "their CN (needs 1.6): a branch is identified by its key "
		    "only",
		    conf->tls_cert, conf->tls_client_ca, nng_version());
	return PROTO_OK;
}

/* state_fini frees the shared state, once the socket is closed. */
static void
state_fini(server_state *st)
{
	pthread_mutex_destroy(&st->mu);
	free(st->conns);
	free(st->branches);
	guard_free(st->guard);
	authcache_stop(st->keys);
}

proto_err
server_run(
    const hub_config *conf, const catalog *cat, char *err, size_t errlen)
{
	size_t n = (size_t) conf->workers;
	worker *ws = xcalloc(n, sizeof *ws);
	server_state st = {.behind_events = conf->behind_events,
	    .behind_seconds = conf->behind_seconds};
	nng_socket sock = NNG_SOCKET_INITIALIZER;
	nng_tls_config *tls = NULL;
	nudge *nd = NULL;
	proto_err rv;

	pthread_mutex_init(&st.mu, NULL);
	st.guard
	    = guard_new(conf->auth_fail_max, conf->auth_fail_window_s * 1000);
	/* The keys first: no request is served before they are known. A
	 * stop while PostgreSQL is awaited is a clean one. */
	if ((rv = authcache_start(conf->postgres, &st.keys, err, errlen))
	    == PROTO_ECLOSED) {
		rv = PROTO_OK;
		goto done;
	}
	if (rv != PROTO_OK
	    || (rv = tls_start(conf, &st, &tls, err, errlen)) != PROTO_OK
	    || (rv = open_socket(conf, &st, tls, &sock, err, errlen))
	        != PROTO_OK
	    || (rv = nudge_start(conf, tls, st.keys, &nd, err, errlen))
	        != PROTO_OK)
		goto done;
	for (size_t i = 0; i < n; i++) {
		if ((rv = worker_init(
		         &ws[i], (int) i, conf, cat, sock, &st, err, errlen))
		    != PROTO_OK)
			goto done;
		if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i])
		    != 0) {
			snprintf(err, errlen, "could not start worker thread");
			rv = PROTO_EIO;
			goto done;
		}
		ws[i].started = true;
	}
	log_info(
	    "HUB-START", "listening on %s with %zu workers", conf->listen, n);
	plat_notify("READY=1");
	while (!plat_stop_requested()) {
		plat_sleep_ms(1000);
		housekeep_tick(conf);
	}
	plat_notify("STOPPING=1");
	log_info("HUB-STOP", "stopping: finishing requests in flight");
done:
	if (rv != PROTO_OK)
		plat_stop_request(); /* make started workers leave their loop
		                      */
	if (tls != NULL)
		nng_tls_config_free(tls); /* the listeners hold their own */
	for (size_t i = 0; i < n; i++)
		worker_fini(&ws[i]);
	nudge_stop(nd);
	/* Closing runs the pipe callbacks of the connections still open. */
	if (nng_socket_id(sock) > 0)
		nng_close(sock);
	state_fini(&st);
	free(ws);
	return rv;
}
