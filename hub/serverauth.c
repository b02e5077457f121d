/*
 * serverauth.c: the authentication of the hub's requests (server_int.h),
 * before anything of them is decoded beyond the envelope, and without a
 * query: credentials come from the key cache (authcache.h).
 *
 * Version 2 (proto/msg.h, proto/auth.h): the hub gives every connection
 * a random nonce when it comes (server.c); a request must be signed for
 * it (among the nonces it lists), with the credential's secret, over its
 * body's bytes and a counter that grows on that connection. A request
 * replayed on another connection lacks that connection's nonce; one
 * replayed on the same connection repeats a counter. A connection that
 * authenticated serves that credential only. Failures count against the
 * peer's address (guard.h) and are logged at a bounded rate.
 *
 * With tls_client_ca, every TLS connection carries a client certificate
 * signed by that CA; its common name (CN) is read when the pipe comes and
 * must equal the branch code of every request on it, so a branch's
 * certificate is worth nothing for another branch, even with its key.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "platform.h"
#include "request.h"
#include "server_int.h"

/*
 * ratelog_take says whether an event may be logged: at most AUTH_LOG_MAX
 * per AUTH_LOG_WINDOW_MS. *hidden gets the events left out of the window
 * just closed, to be logged as one count. Holding st->mu.
 */
static bool
ratelog_take(ratelog *r, int64_t now, int64_t *hidden)
{
	*hidden = 0;
	if (now - r->window_ms >= AUTH_LOG_WINDOW_MS) {
		*hidden = r->hidden;
		r->window_ms = now;
		r->logged = r->hidden = 0;
	}
	if (r->logged < AUTH_LOG_MAX) {
		r->logged++;
		return true;
	}
	r->hidden++;
	return false;
}

/*
 * auth_failed counts a refused authentication and logs it, naming the
 * branch as sent (made printable) and the peer's address: at most
 * AUTH_LOG_MAX lines per AUTH_LOG_WINDOW_MS, so that a flood of wrong keys
 * cannot flood the log; the failures left out are counted in one line
 * when the next window opens. With counted, the failure also counts
 * against the peer's address (guard.h); the one that shuts the address
 * out, and any while it is shut out, close the connection unanswered.
 */
static void
auth_failed(worker *w, const char *branch, const char *why, bool counted)
{
	server_state *st = w->st;
	char code[VERSION_MAX + 1], peer[PEER_MAX] = "unknown address";
	char host[GUARD_KEY_MAX] = "";
	int64_t now = plat_mono_ms(), hidden = 0;
	conn_info *c;
	bool log, blocked = false, drop = false;

	metrics_auth_failure();
	printable(branch, code, sizeof code);
	pthread_mutex_lock(&st->mu);
	if ((c = conn_find(st, (uint32_t) nng_pipe_id(w->pipe))) != NULL) {
		snprintf(peer, sizeof peer, "%s", c->peer);
		snprintf(host, sizeof host, "%s", c->host);
	}
	log = ratelog_take(&st->auth_log, now, &hidden);
	if (counted) {
		blocked = guard_fail(st->guard, host, now);
		drop = blocked || guard_blocked(st->guard, host, now);
	}
	pthread_mutex_unlock(&st->mu);
	if (hidden > 0)
		log_warn("HUB-AUTH-FAIL",
		    "%" PRId64 " more failed authentications in the last "
		    "window were not logged one by one (at most %d per %d s)",
		    hidden, AUTH_LOG_MAX, AUTH_LOG_WINDOW_MS / 1000);
	if (log)
		log_warn(
		    "HUB-AUTH-FAIL", "branch=%s from %s: %s", code, peer, why);
	if (blocked)
		log_warn("HUB-AUTH-BLOCK",
		    "%s failed to authenticate %" PRId64
		    " times within %" PRId64
		    " s: its connections are closed for %" PRId64 " s",
		    host, w->conf->auth_fail_max, w->conf->auth_fail_window_s,
		    w->conf->auth_fail_window_s);
	if (drop) {
		w->ans.drop = true;
		metrics_auth_blocked();
	}
}

/* refuse makes reply the ERROR of a refused authentication (see
 * auth_failed); returns PROTO_EAUTH. */
static proto_err
refuse(worker *w, const char *branch, const char *why, bool counted,
    proto_msg *reply)
{
	if (why != w->err)
		snprintf(w->err, sizeof w->err, "%s", why);
	auth_failed(w, branch, w->err, counted);
	request_error_set(reply, PROTO_EAUTH, w->err);
	return PROTO_EAUTH;
}

/*
 * cn_check refuses a request for branch on a TLS connection whose client
 * certificate names another branch, like a wrong key.
 */
static proto_err
cn_check(worker *w, const char *branch, proto_msg *reply)
{
	server_state *st = w->st;
	char cn[CODE_MAX] = "", why[CODE_MAX + 80];
	conn_info *c;
	bool bad = false;

	if (!st->check_cn)
		return PROTO_OK;
	pthread_mutex_lock(&st->mu);
	c = conn_find(st, (uint32_t) nng_pipe_id(w->pipe));
	if (c != NULL && c->tls && strcmp(c->cn, branch) != 0) {
		bad = true;
		snprintf(cn, sizeof cn, "%s", c->cn);
	}
	pthread_mutex_unlock(&st->mu);
	if (!bad)
		return PROTO_OK;
	snprintf(why, sizeof why,
	    "authentication failed: the client certificate is for \"%s\"", cn);
	return refuse(w, branch, why, true, reply);
}

/* conn_get copies the entry of the current request's pipe into *c. */
static bool
conn_get(worker *w, conn_info *c)
{
	conn_info *found;

	pthread_mutex_lock(&w->st->mu);
	if ((found = conn_find(w->st, (uint32_t) nng_pipe_id(w->pipe))))
		*c = *found;
	pthread_mutex_unlock(&w->st->mu);
	return found != NULL;
}

/* shut_out says whether the connection is from an address shut out and
 * has not authenticated: its requests are dropped with it. */
static bool
shut_out(worker *w, const conn_info *c)
{
	bool blocked;

	if (c->cred[0] != '\0')
		return false;
	pthread_mutex_lock(&w->st->mu);
	blocked = guard_blocked(w->st->guard, c->host, plat_mono_ms());
	pthread_mutex_unlock(&w->st->mu);
	if (blocked) {
		metrics_auth_blocked();
		w->ans.drop = true;
	}
	return blocked;
}

/*
 * conn_admit takes the current request's connection into *c, or says why
 * the request goes no further: the connection is gone (an ERROR in reply)
 * or its address is shut out (dropped). PROTO_OK to go on.
 */
static proto_err
conn_admit(worker *w, conn_info *c, proto_msg *reply)
{
	if (!conn_get(w, c)) {
		request_error_set(reply, PROTO_ECLOSED, "connection closed");
		return PROTO_ECLOSED;
	}
	return shut_out(w, c) ? PROTO_EAUTH : PROTO_OK;
}

/* nonce_listed says whether the request was signed for this connection. */
static bool
nonce_listed(const proto_auth *a, const uint8_t nonce[PROTO_NONCE_BYTES])
{
	bool found = false;

	for (uint32_t i = 0; i < a->nnonces; i++)
		found
		    |= proto_mac_equal(a->nonces[i], nonce, PROTO_NONCE_BYTES);
	return found;
}

/*
 * ask_nonce answers a request not signed for its connection with
 * PROTO_ENONCE and the connection's nonce: normal for the first request
 * on a connection, a failure from the second on (the agent signs with
 * every nonce it was given).
 */
static proto_err
ask_nonce(worker *w, const proto_auth *a, const conn_info *c, proto_msg *reply)
{
	conn_info *live;
	unsigned n = 0;

	pthread_mutex_lock(&w->st->mu);
	if ((live = conn_find(w->st, c->id)) != NULL)
		n = ++live->nonce_errors;
	pthread_mutex_unlock(&w->st->mu);
	if (n > 1) {
		snprintf(w->err, sizeof w->err,
		    "request not signed for this connection (%u times): "
		    "replayed, or the agent lost its nonce",
		    n);
		auth_failed(w, a->branch, w->err, true);
	}
	w->ans.nonce = true;
	memcpy(w->ans.nonce_v, c->nonce, sizeof w->ans.nonce_v);
	request_error_set(reply, PROTO_ENONCE,
	    "sign the request with the nonce of this connection");
	return PROTO_ENONCE;
}

/*
 * mac_matches checks the request's MAC against the credential's secret,
 * then its previous one during a rotation's overlap; on a match the
 * secret is kept to MAC the answer.
 */
static bool
mac_matches(
    worker *w, const proto_env *env, const uint8_t digest[PROTO_DIGEST_BYTES])
{
	const authcache_entry *e = &w->cred;
	uint8_t mac[PROTO_MAC_BYTES];

	w->old_key = false;
	if (e->has_secret
	    && proto_req_mac(e->secret, env, digest, mac) == PROTO_OK
	    && proto_mac_equal(mac, env->auth.mac, sizeof mac)) {
		memcpy(w->ans.secret, e->secret, sizeof w->ans.secret);
		return true;
	}
	if (e->has_old
	    && proto_req_mac(e->old_secret, env, digest, mac) == PROTO_OK
	    && proto_mac_equal(mac, env->auth.mac, sizeof mac)) {
		memcpy(w->ans.secret, e->old_secret, sizeof w->ans.secret);
		w->old_key = true;
		return true;
	}
	return false;
}

/*
 * credential finds the request's credential in the cache and checks the
 * MAC; on a miss it waits for the cache to catch up with what PostgreSQL
 * notified (authcache_sync: a key added or rotated a moment ago) and
 * tries once more.
 */
static bool
credential(
    worker *w, const proto_env *env, const uint8_t digest[PROTO_DIGEST_BYTES])
{
	const proto_auth *a = &env->auth;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (attempt > 0)
			authcache_sync(w->st->keys);
		if (authcache_find(w->st->keys, a->branch, a->till, &w->cred)
		    && mac_matches(w, env, digest))
			return true;
	}
	return false;
}

/* disabled refuses the right credential of a disabled branch or till,
 * saying so (only a holder of the key learns it); not held against the
 * address. */
static proto_err
disabled(worker *w, const char *branch, const char *till, proto_msg *reply)
{
	if (till == NULL || !w->cred.branch_enabled)
		snprintf(w->err, sizeof w->err, "branch \"%s\" is disabled",
		    branch);
	else
		snprintf(w->err, sizeof w->err,
		    "till \"%s\" of branch \"%s\" is disabled", till, branch);
	return refuse(w, branch, w->err, false, reply);
}

/*
 * bind_conn accepts the request's counter on its connection (above the
 * last one accepted there) and binds the connection to the credential on
 * its first authenticated request; false with the reason in w->err for a
 * replayed counter or another credential.
 */
static bool
bind_conn(worker *w, const char *cred, int64_t ctr)
{
	conn_info *c;
	bool ok = false;

	pthread_mutex_lock(&w->st->mu);
	if ((c = conn_find(w->st, (uint32_t) nng_pipe_id(w->pipe))) == NULL)
		snprintf(w->err, sizeof w->err, "connection closed");
	else if (ctr <= c->last_ctr)
		snprintf(w->err, sizeof w->err,
		    "authentication failed: request counter %" PRId64
		    " not above %" PRId64 " (a replayed request)",
		    ctr, c->last_ctr);
	else if (c->cred[0] != '\0' && strcmp(c->cred, cred) != 0)
		snprintf(w->err, sizeof w->err,
		    "authentication failed: this connection serves another "
		    "credential");
	else {
		c->last_ctr = ctr;
		snprintf(c->cred, sizeof c->cred, "%s", cred);
		ok = true;
	}
	pthread_mutex_unlock(&w->st->mu);
	return ok;
}

/* identify takes the identity of an authenticated request from its
 * credential: apply and pull are told of the till. */
static void
identify(worker *w, const char *branch, const char *till)
{
	w->branch_id = w->cred.branch_id;
	w->till_id = w->cred.till_id;
	log_who(w->who, sizeof w->who, branch, till);
	apply_set_till(w->apply, w->till_id, till);
}

proto_err
serverauth_request(worker *w, const proto_env *env, proto_msg *reply)
{
	const proto_auth *a = &env->auth;
	const char *till = a->till[0] != '\0' ? a->till : NULL;
	uint8_t digest[PROTO_DIGEST_BYTES];
	char cred[CRED_MAX];
	conn_info c;
	proto_err rv;

	if ((rv = conn_admit(w, &c, reply)) != PROTO_OK)
		return rv;
	if (!nonce_listed(a, c.nonce))
		return ask_nonce(w, a, &c, reply);
	log_who(w->who, sizeof w->who, a->branch, till);
	if (proto_digest(env->body, env->body_len, digest) != PROTO_OK) {
		request_error_set(reply, PROTO_EIO, "could not hash the body");
		return PROTO_EIO;
	}
	if (!credential(w, env, digest))
		return refuse(
		    w, a->branch, "authentication failed", true, reply);
	/* The sender holds the key: answers carry a MAC from here on. */
	w->ans.mac = true;
	memcpy(w->ans.req_mac, a->mac, sizeof w->ans.req_mac);
	if ((rv = cn_check(w, a->branch, reply)) != PROTO_OK)
		return rv;
	if (!w->cred.enabled)
		return disabled(w, a->branch, till, reply);
	snprintf(cred, sizeof cred, "%s/%s", a->branch, a->till);
	if (!bind_conn(w, cred, a->ctr))
		return refuse(w, a->branch, w->err, true, reply);
	identify(w, a->branch, till);
	return PROTO_OK;
}

/* plain_key_matches compares the key of a version 1 request with the
 * credential's secrets, both, in constant time. */
static bool
plain_key_matches(worker *w, const char *key)
{
	const authcache_entry *e = &w->cred;
	uint8_t s[PROTO_SECRET_BYTES];
	bool cur, old;

	if (proto_key_secret(key, s) != PROTO_OK)
		return false;
	cur = e->has_secret && proto_mac_equal(s, e->secret, sizeof s);
	old = e->has_old && proto_mac_equal(s, e->old_secret, sizeof s);
	w->old_key = !cur && old;
	return cur || old;
}

void
serverauth_plain_noted(worker *w, bool accepted)
{
	server_state *st = w->st;
	char peer[PEER_MAX] = "unknown address";
	int64_t hidden = 0;
	conn_info *c;
	bool first = false, log;

	pthread_mutex_lock(&st->mu);
	if ((c = conn_find(st, (uint32_t) nng_pipe_id(w->pipe))) != NULL) {
		first = !c->plain;
		c->plain = true;
		snprintf(peer, sizeof peer, "%s", c->peer);
	}
	log = first
	    && (accepted
	        || ratelog_take(&st->plain_log, plat_mono_ms(), &hidden));
	pthread_mutex_unlock(&st->mu);
	if (hidden > 0)
		log_warn("HUB-PLAIN-KEY",
		    "%" PRId64 " more connections sent protocol version 1 in "
		    "the last window",
		    hidden);
	if (log && accepted)
		log_warn("HUB-PLAIN-KEY",
		    "%s from %s uses protocol version 1: its key travels in "
		    "clear (accept_plain_keys = true); upgrade the agent",
		    w->who, peer);
	else if (log)
		log_warn("HUB-PLAIN-KEY",
		    "refused protocol version 1 from %s: its requests carry "
		    "the branch key in clear (accept_plain_keys = false)",
		    peer);
}

/* Nothing protects a version 1 request from a replay: that is what
 * version 2 is for. */
proto_err
serverauth_plain(worker *w, const proto_agent_hdr *h, proto_msg *reply)
{
	const char *branch = h->branch != NULL ? h->branch : "";
	bool found = false;
	conn_info c;
	proto_err rv;

	if ((rv = conn_admit(w, &c, reply)) != PROTO_OK)
		return rv;
	log_who(w->who, sizeof w->who, branch, h->till);
	for (int attempt = 0; attempt < 2 && !found; attempt++) {
		if (attempt > 0)
			authcache_sync(w->st->keys);
		found = authcache_find(w->st->keys, branch, h->till, &w->cred)
		    && plain_key_matches(w, h->key != NULL ? h->key : "");
	}
	if (!found)
		return refuse(w, branch, "authentication failed", true, reply);
	if ((rv = cn_check(w, branch, reply)) != PROTO_OK)
		return rv;
	if (!w->cred.enabled)
		return disabled(w, branch, h->till, reply);
	identify(w, branch, h->till);
	serverauth_plain_noted(w, true);
	return PROTO_OK;
}
