/*
 * hubclient.c: sign and send a request, receive, check and decode its
 * answer, word every failure for the log, and compute the backoff between
 * attempts.
 *
 * A request is waited on with aiowait (see aiowait.h), cancelled only
 * when the owner's stop callback says so.
 */
#include "hubclient.h"

#include <inttypes.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <string.h>

#include "live.h"
#include "platform.h"
#include "tls.h"
#include "util.h"

/* Bound of each step of a connection probe (tls_probe). */
#define PROBE_MS 1000

/* Waits for the aio, cancelling it once the owner asks to stop. */
static void
wait_aio(hubclient *hc)
{
	aiowait_wait(&hc->w, hc->o.stop, hc->o.stop_arg);
}

/*
 * Maps an nng send or receive failure; hc->why gets the reason. Other
 * than a cancel (a stop), it means that no hub is reachable (live.h).
 */
static proto_err
nng_fail(hubclient *hc, int rv, const char *what)
{
	if (rv == NNG_ETIMEDOUT) {
		/* A send waits for a connection: none came up. */
		hc->no_hub = !strcmp(what, "send");
		snprintf(hc->why, sizeof hc->why,
		    "could not %s %s: no hub answered within %" PRId64 " ms",
		    what, proto_type_name(hc->req_type),
		    hc->conf->request_timeout_ms);
		if (hc->o.live)
			live_unreachable(plat_wall_ms(), hc->why);
		return PROTO_ETIMEDOUT;
	}
	snprintf(hc->why, sizeof hc->why, "could not %s %s: %s", what,
	    proto_type_name(hc->req_type), nng_strerror(rv));
	if (hc->o.live && rv != NNG_ECANCELED)
		live_unreachable(plat_wall_ms(), hc->why);
	return rv == NNG_ECANCELED ? PROTO_ECLOSED : PROTO_EIO;
}

/* Starts one aio operation (send or receive) with the request timeout. */
static void
aio_begin(hubclient *hc, void (*op)(nng_socket, nng_aio *))
{
	nng_aio_set_timeout(
	    hc->w.aio, (nng_duration) hc->conf->request_timeout_ms);
	op(hc->sock, hc->w.aio);
}

/*
 * seal writes into hc->buf the head of the version 2 request of hc->body
 * (the body follows it on the wire): the next counter, every nonce held,
 * and its MAC (kept in hc->req_mac to check the answer).
 */
static proto_err
seal(hubclient *hc)
{
	proto_env env;
	char why[256] = "its branch or till code is too long";
	proto_err pe;

	memset(&env, 0, sizeof env);
	env.version = PROTO_VERSION;
	env.type = hc->req_type;
	snprintf(
	    env.auth.branch, sizeof env.auth.branch, "%s", hc->conf->branch);
	snprintf(env.auth.till, sizeof env.auth.till, "%s",
	    hc->conf->till != NULL ? hc->conf->till : "");
	env.auth.ctr = ++hc->ctr;
	env.auth.nnonces = hc->nnonces;
	memcpy(env.auth.nonces, hc->nonces, sizeof env.auth.nonces);
	env.auth.has_mac = true;
	env.body = hc->body.data;
	env.body_len = hc->body.len;
	proto_buf_reset(&hc->buf);
	if ((pe = proto_req_mac(hc->secret, &env, hc->digest, env.auth.mac))
	        != PROTO_OK
	    || (pe = proto_env_encode_head(&env, &hc->buf, why, sizeof why))
	        != PROTO_OK) {
		snprintf(hc->why, sizeof hc->why, "could not sign %s: %s",
		    proto_type_name(hc->req_type), why);
		return pe;
	}
	memcpy(hc->req_mac, env.auth.mac, sizeof hc->req_mac);
	return PROTO_OK;
}

/* send_sealed seals the request, sends it and starts receiving. */
static proto_err
send_sealed(hubclient *hc)
{
	nng_msg *m = NULL;
	proto_err pe;
	int rv;

	if ((pe = seal(hc)) != PROTO_OK)
		return pe;
	if (nng_msg_alloc(&m, hc->buf.len + hc->body.len) != 0) {
		snprintf(hc->why, sizeof hc->why, "out of memory");
		return PROTO_ENOMEM;
	}
	/* One copy of the body, into the message: no request buffer. */
	memcpy(nng_msg_body(m), hc->buf.data, hc->buf.len);
	if (hc->body.len > 0)
		memcpy((uint8_t *) nng_msg_body(m) + hc->buf.len,
		    hc->body.data, hc->body.len);
	/* Sending waits for a connected hub: bounded, and interruptible. */
	nng_aio_set_msg(hc->w.aio, m);
	aio_begin(hc, nng_send_aio);
	wait_aio(hc);
	if ((rv = nng_aio_result(hc->w.aio)) != 0) {
		/* On failure the message is still ours. */
		nng_msg_free(nng_aio_get_msg(hc->w.aio));
		nng_aio_set_msg(hc->w.aio, NULL);
		return nng_fail(hc, rv, "send");
	}
	aio_begin(hc, nng_recv_aio);
	hc->inflight = true;
	return PROTO_OK;
}

proto_err
hubclient_start(hubclient *hc, const proto_msg *req)
{
	char why[256];
	proto_err pe;

	hc->req_type = req->type;
	hc->no_hub = false;
	hc->resends = 0;
	proto_buf_reset(&hc->body);
	if ((pe = proto_body_encode(req, &hc->body, why, sizeof why))
	    != PROTO_OK) {
		snprintf(hc->why, sizeof hc->why, "could not encode %s: %s",
		    proto_type_name(req->type), why);
		return pe;
	}
	if (proto_digest(hc->body.data, hc->body.len, hc->digest)
	    != PROTO_OK) {
		snprintf(hc->why, sizeof hc->why, "could not hash %s",
		    proto_type_name(req->type));
		return PROTO_EIO;
	}
	return send_sealed(hc);
}

/* learn keeps a nonce a hub gave, in place of the oldest if all slots are
 * taken; one held already stays where it is. */
static void
learn(hubclient *hc, const uint8_t nonce[PROTO_NONCE_BYTES])
{
	for (uint32_t i = 0; i < hc->nnonces; i++)
		if (!memcmp(hc->nonces[i], nonce, PROTO_NONCE_BYTES))
			return;
	memcpy(hc->nonces[hc->next_nonce], nonce, PROTO_NONCE_BYTES);
	hc->next_nonce = (hc->next_nonce + 1) % PROTO_MAX_NONCES;
	if (hc->nnonces < PROTO_MAX_NONCES)
		hc->nnonces++;
}

/*
 * read_plain takes a version 1 answer: only an ERROR, from a hub that
 * does not speak version 2 ("unsupported protocol version 2").
 */
static proto_err
read_plain(hubclient *hc, const uint8_t *p, size_t n, proto_msg **resp)
{
	char why[256];
	proto_err pe;

	pe = proto_msg_decode(p, n, &hc->lim, resp, why, sizeof why);
	if (pe != PROTO_OK) {
		snprintf(hc->why, sizeof hc->why,
		    "malformed answer from hub: %s", why);
		return pe;
	}
	if ((*resp)->type == PROTO_ERROR)
		return PROTO_OK;
	snprintf(hc->why, sizeof hc->why,
	    "hub answered %s in protocol version 1, which is refused: only "
	    "an error may come unsigned",
	    proto_type_name((*resp)->type));
	proto_msg_free(*resp);
	*resp = NULL;
	return PROTO_EPROTO;
}

/* answer_signed checks the MAC of a version 2 answer: it answers the
 * request sent and was made with the same secret. */
static proto_err
answer_signed(hubclient *hc, const proto_env *env)
{
	uint8_t digest[PROTO_DIGEST_BYTES], mac[PROTO_MAC_BYTES];

	if (proto_digest(env->body, env->body_len, digest) == PROTO_OK
	    && proto_rep_mac(hc->secret, env->type, hc->req_mac, digest, mac)
	        == PROTO_OK
	    && proto_mac_equal(mac, env->auth.mac, sizeof mac))
		return PROTO_OK;
	snprintf(hc->why, sizeof hc->why,
	    "the hub's %s to %s failed authentication (its MAC does not "
	    "match: altered on the way?)",
	    proto_type_name(env->type), proto_type_name(hc->req_type));
	return PROTO_EPROTO;
}

/*
 * read_answer decodes and checks the answer at p: *renonce when it is the
 * hub asking for a signature with its nonce (learnt), *resp otherwise.
 */
static proto_err
read_answer(
    hubclient *hc, const uint8_t *p, size_t n, proto_msg **resp, bool *renonce)
{
	char why[256];
	proto_env env;
	proto_err pe;

	*renonce = false;
	pe = proto_env_decode(p, n, &hc->lim, &env, why, sizeof why);
	if (pe == PROTO_OK && env.version == PROTO_VERSION_PLAIN)
		return read_plain(hc, p, n, resp);
	if (pe == PROTO_OK && proto_request_type(env.type)) {
		snprintf(why, sizeof why, "a %s is not an answer",
		    proto_type_name(env.type));
		pe = PROTO_EPROTO;
	}
	if (pe != PROTO_OK) {
		snprintf(hc->why, sizeof hc->why,
		    "malformed answer from hub: %s", why);
		return pe;
	}
	if (env.auth.has_mac && (pe = answer_signed(hc, &env)) != PROTO_OK)
		return pe;
	if ((pe = proto_body_decode(&env, &hc->lim, resp, why, sizeof why))
	    != PROTO_OK) {
		snprintf(hc->why, sizeof hc->why,
		    "malformed answer from hub: %s", why);
		return pe;
	}
	/* Unsigned, so only an ERROR (the decoder saw to it): a nonce to
	 * learn, or a refusal that changes nothing but the retry. */
	if (!env.auth.has_mac && env.auth.has_nonce
	    && (*resp)->u.error.code == PROTO_ENONCE) {
		learn(hc, env.auth.nonce);
		*renonce = true;
		proto_msg_free(*resp);
		*resp = NULL;
	}
	return PROTO_OK;
}

proto_err
hubclient_finish(hubclient *hc, proto_msg **resp)
{
	bool renonce;
	nng_msg *m;
	proto_err pe;
	int rv;

	*resp = NULL;
	if (NEVER(!hc->inflight)) {
		/* nothing would ever complete the wait */
		snprintf(hc->why, sizeof hc->why, "no request in flight");
		return PROTO_EINVAL;
	}
	for (;;) {
		wait_aio(hc);
		hc->inflight = false;
		if ((rv = nng_aio_result(hc->w.aio)) != 0)
			return nng_fail(hc, rv, "get an answer to");
		if (hc->o.live)
			live_answer(plat_wall_ms());
		m = nng_aio_get_msg(hc->w.aio);
		nng_aio_set_msg(hc->w.aio, NULL);
		pe = read_answer(
		    hc, nng_msg_body(m), nng_msg_len(m), resp, &renonce);
		nng_msg_free(m);
		if (pe != PROTO_OK || !renonce)
			return pe;
		if (++hc->resends > PROTO_MAX_NONCES) {
			snprintf(hc->why, sizeof hc->why,
			    "the hub asked for a new nonce %u times in a row "
			    "for one %s",
			    hc->resends, proto_type_name(hc->req_type));
			return PROTO_EAUTH;
		}
		if ((pe = send_sealed(hc)) != PROTO_OK)
			return pe;
	}
}

proto_err
hubclient_request(hubclient *hc, const proto_msg *req, proto_msg **resp)
{
	proto_err rv;

	*resp = NULL;
	if ((rv = hubclient_start(hc, req)) != PROTO_OK)
		return rv;
	return hubclient_finish(hc, resp);
}

void
hubclient_abandon(hubclient *hc)
{
	if (!hc->inflight)
		return;
	nng_aio_cancel(hc->w.aio);
	wait_aio(hc);
	if (nng_aio_result(hc->w.aio) == 0)
		nng_msg_free(nng_aio_get_msg(hc->w.aio));
	nng_aio_set_msg(hc->w.aio, NULL);
	hc->inflight = false;
}

proto_err
hubclient_error(hubclient *hc, const proto_msg *resp, bool *no_retry)
{
	const proto_error *e = &resp->u.error;
	const char *to = hc->o.name_in_errors ? " to " : "";
	const char *req
	    = hc->o.name_in_errors ? proto_type_name(hc->req_type) : "";

	if (resp->type != PROTO_ERROR) {
		snprintf(hc->why, sizeof hc->why, "unexpected %s from hub%s%s",
		    proto_type_name(resp->type), to, req);
		return PROTO_EPROTO;
	}
	*no_retry = !e->retry;
	snprintf(hc->why, sizeof hc->why, "hub error%s%s: %s (%s)", to, req,
	    e->message != NULL ? e->message : "",
	    proto_strerror((int) e->code));
	if (e->code > PROTO_OK && e->code < PROTO_ERR_COUNT)
		return (proto_err) e->code;
	return PROTO_EPROTO;
}

void
hubclient_explain(hubclient *hc)
{
	char found[900];
	size_t n = strlen(hc->why);
	tls_opts o;

	if (!hc->no_hub || (hc->o.stop != NULL && hc->o.stop(hc->o.stop_arg)))
		return;
	agent_config_tls_opts(hc->conf, &o);
	if (tls_probe_all(hc->conf->hub, &o, NNG_REQ0_SELF, PROBE_MS, found,
	        sizeof found))
		snprintf(hc->why + n, sizeof hc->why - n, "; %s", found);
}

int64_t
hubclient_backoff_ms(
    int64_t min_ms, int64_t max_ms, unsigned attempt, uint64_t rnd)
{
	int64_t cap = min_ms;

	for (unsigned i = 0; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	return (int64_t) (rnd % (uint64_t) (cap + 1));
}

bool
hubclient_backoff(hubclient *hc, unsigned failures, bool no_retry, int64_t *ms)
{
	const agent_config *c = hc->conf;
	bool loud = no_retry || failures % 20 == 0;

	*ms = no_retry ? c->backoff_max_ms
	               : hubclient_backoff_ms(c->backoff_min_ms,
	                   c->backoff_max_ms, failures, plat_rand_u64());
	if (loud)
		hubclient_explain(hc);
	return loud;
}

proto_err
hubclient_open(hubclient *hc, const agent_config *conf,
    const hubclient_opts *o, char *err, size_t errlen)
{
	int rv;

	hc->conf = conf;
	hc->o = *o;
	proto_buf_init(&hc->buf);
	proto_buf_init(&hc->body);
	if (conf->secret == NULL
	    || proto_key_secret(conf->secret, hc->secret) != PROTO_OK) {
		snprintf(err, errlen, "no branch key to sign requests with");
		return PROTO_EINVAL;
	}
	if ((rv = nng_req0_open(&hc->sock)) != 0
	    || (rv = aiowait_init(&hc->w)) != 0) {
		snprintf(err, errlen, "could not open socket: %s",
		    nng_strerror(rv));
		return PROTO_EIO;
	}
	/* Answers are small, but an ACK may list many rejects. */
	agent_config_limits(conf, &hc->lim);
	nng_socket_set_size(
	    hc->sock, NNG_OPT_RECVMAXSZ, (size_t) conf->max_message_bytes);
	/* We resend ourselves, after backing off. */
	nng_socket_set_ms(
	    hc->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	return agent_config_dial(
	    hc->sock, conf, conf->hub, "hub", err, errlen);
}

void
hubclient_close(hubclient *hc)
{
	aiowait_fini(&hc->w);
	if (nng_socket_id(hc->sock) > 0)
		nng_close(hc->sock);
	proto_buf_fini(&hc->buf);
	proto_buf_fini(&hc->body);
	memset(hc->secret, 0, sizeof hc->secret);
}
