/*
 * hubclient.c: send a request, receive and decode its answer, word every
 * failure for the log, and compute the backoff between attempts.
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

proto_err
hubclient_start(hubclient *hc, const proto_msg *req)
{
	nng_msg *m = NULL;
	char why[256];
	proto_err pe;
	int rv;

	hc->req_type = req->type;
	hc->no_hub = false;
	proto_buf_reset(&hc->buf);
	if ((pe = proto_msg_encode(req, &hc->buf, why, sizeof why))
	    != PROTO_OK) {
		snprintf(hc->why, sizeof hc->why, "could not encode %s: %s",
		    proto_type_name(req->type), why);
		return pe;
	}
	if (nng_msg_alloc(&m, hc->buf.len) != 0) {
		snprintf(hc->why, sizeof hc->why, "out of memory");
		return PROTO_ENOMEM;
	}
	memcpy(nng_msg_body(m), hc->buf.data, hc->buf.len);
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
hubclient_finish(hubclient *hc, proto_msg **resp)
{
	nng_msg *m;
	char why[256];
	proto_err pe;
	int rv;

	*resp = NULL;
	if (NEVER(!hc->inflight)) {
		/* nothing would ever complete the wait */
		snprintf(hc->why, sizeof hc->why, "no request in flight");
		return PROTO_EINVAL;
	}
	wait_aio(hc);
	hc->inflight = false;
	if ((rv = nng_aio_result(hc->w.aio)) != 0)
		return nng_fail(hc, rv, "get an answer to");
	if (hc->o.live)
		live_answer(plat_wall_ms());
	m = nng_aio_get_msg(hc->w.aio);
	nng_aio_set_msg(hc->w.aio, NULL);
	pe = proto_msg_decode(
	    nng_msg_body(m), nng_msg_len(m), &hc->lim, resp, why, sizeof why);
	nng_msg_free(m);
	if (pe != PROTO_OK)
		snprintf(hc->why, sizeof hc->why,
		    "malformed answer from hub: %s", why);
	return pe;
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
}
