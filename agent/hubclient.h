/*
 * hubclient.h: the agent's requests to the hub, for the sender and the
 * downstream thread alike.
 *
 * A hubclient is one nng req0 socket dialing every hub URL in the
 * background, one aio (aiowait.h) and the buffer requests are encoded
 * into. A request is sent and its answer received with the configured
 * request_timeout_ms each, waited on in slices so that a stop is seen
 * quickly; only a stop cancels it. Every failure leaves its reason in
 * why, worded for the log. Between failures the caller sleeps what
 * hubclient_backoff says: an exponential backoff with full jitter.
 *
 * Requests are protocol version 2 (proto/msg.h, proto/auth.h): signed
 * with the secret of the branch's (or till's) key, which never travels,
 * and answers are checked against it. A hub asks a new connection for a
 * nonce of its own (ERROR PROTO_ENONCE carrying it); the hubclient keeps
 * the last PROTO_MAX_NONCES nonces it was given, signs every request for
 * all of them (nng may send a request to any hub the socket is connected
 * to) and sends a request again at once, signed anew, when a hub asks.
 * Only an ERROR may come without a MAC (a hub cannot sign before it knows
 * who asks); it changes nothing but the retry.
 */
#ifndef AGENT_HUBCLIENT_H
#define AGENT_HUBCLIENT_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aiowait.h"
#include "config.h"
#include "proto/auth.h"
#include "proto/err.h"
#include "proto/msg.h"

/* How a hubclient behaves; copied at hubclient_open. */
typedef struct {
	bool live;            /* report reachability and answers (live.h) */
	bool name_in_errors;  /* replies other than the expected one name
	                         the request ("hub error to pull: ...") */
	bool (*stop)(void *); /* true once waits are to be cancelled */
	void *stop_arg;       /* argument of stop */
} hubclient_opts;

typedef struct {
	const agent_config *conf; /* configuration (borrowed) */
	hubclient_opts o;         /* behaviour */
	nng_socket sock;          /* req0 socket dialing all hubs */
	aiowait w;                /* send/receive of the current request */
	proto_buf buf;            /* encoded request */
	proto_buf body;           /* its body, kept for a new signature */
	proto_limits lim;         /* decoder limits for answers */
	bool inflight;            /* a request awaits its answer on aio */
	proto_type req_type;      /* type of the last request */
	bool no_hub;              /* the last send found no connected hub */
	char why[1024];           /* reason of the last failure */

	/* Signing (proto/auth.h); nonces given by hubs, in a ring: */
	uint8_t nonces[PROTO_MAX_NONCES][PROTO_NONCE_BYTES];
	uint8_t secret[PROTO_SECRET_BYTES]; /* SHA-256 of the key */
	uint32_t nnonces;                   /* nonces held */
	uint32_t next_nonce;                /* slot the next one takes */
	int64_t ctr;                        /* counter of the last request */
	uint8_t digest[PROTO_DIGEST_BYTES]; /* SHA-256 of body */
	uint8_t req_mac[PROTO_MAC_BYTES];   /* MAC of the request sent */
	unsigned resends;                   /* PROTO_ENONCE answers to it */
} hubclient;

/*
 * hubclient_open opens the socket and dials conf->hub (agent_config_dial). The
 * receive size limit is max_message_bytes; req0 never resends by itself
 * (the caller resends after backing off). Requests are signed with
 * conf->secret (required). conf must outlive hc. Returns PROTO_OK, or
 * PROTO_EIO or PROTO_EINVAL (bad URL, no secret) with a message in err.
 * hc is closed with hubclient_close whatever this returns.
 */
proto_err hubclient_open(hubclient *hc, const agent_config *conf,
    const hubclient_opts *o, char *err, size_t errlen);

/*
 * hubclient_close frees the aio, closes the socket and frees the buffer;
 * safe on a zeroed hubclient. A request in flight is dropped unread.
 */
void hubclient_close(hubclient *hc);

/*
 * hubclient_start encodes and sends req, then starts receiving its answer
 * without waiting for it: hubclient_finish collects it. In between the
 * caller may work while the hub works on the request. Sending waits for a
 * connected hub, at most request_timeout_ms. Errors: PROTO_ETIMEDOUT (no
 * hub: no_hub is set), PROTO_ECLOSED (stopped), PROTO_EIO, PROTO_ENOMEM
 * or the encoder's error, with why set. req stays the caller's; the nng
 * message made from it belongs to nng once sent and is freed here when
 * the send fails.
 */
proto_err hubclient_start(hubclient *hc, const proto_msg *req);

/*
 * hubclient_finish waits for the answer to the request started, sending
 * it again signed with a new nonce when the hub asks (at most
 * PROTO_MAX_NONCES + 1 times). On PROTO_OK *resp belongs to the caller
 * (proto_msg_free); on an error it is NULL and why is set:
 * PROTO_ETIMEDOUT, PROTO_ECLOSED, PROTO_EIO, the decoder's error for a
 * malformed answer, PROTO_EPROTO for an answer whose MAC does not match
 * (altered on the way) or an answer of protocol version 1 other than an
 * ERROR, PROTO_EAUTH when the hub keeps asking for a nonce.
 */
proto_err hubclient_finish(hubclient *hc, proto_msg **resp);

/* hubclient_request is hubclient_start, then hubclient_finish. */
proto_err hubclient_request(
    hubclient *hc, const proto_msg *req, proto_msg **resp);

/* hubclient_abandon drops the request in flight, if any, unread. */
void hubclient_abandon(hubclient *hc);

/*
 * hubclient_error handles an answer that is not the one expected: an
 * ERROR sets *no_retry when the hub says retrying will not help and
 * returns its code (PROTO_EPROTO if unknown); any other type is
 * PROTO_EPROTO. why is set either way.
 */
proto_err hubclient_error(
    hubclient *hc, const proto_msg *resp, bool *no_retry);

/*
 * hubclient_explain adds to why what a probe of every hub URL found
 * (refused, TLS handshake failed, ...) when the last send found no
 * connected hub and no stop is asked: nng redials in the background
 * without saying why it fails.
 */
void hubclient_explain(hubclient *hc);

/*
 * hubclient_backoff_ms returns the delay before retry number attempt (0
 * for the first): uniform in [0, min(max_ms, min_ms * 2^attempt)], drawn
 * from rnd ("full jitter"), so many branches coming back at once spread
 * out.
 */
int64_t hubclient_backoff_ms(
    int64_t min_ms, int64_t max_ms, unsigned attempt, uint64_t rnd);

/*
 * hubclient_backoff starts the wait after failures consecutive failures
 * (0 for the first): *ms gets the delay, backoff_max_ms when the hub said
 * retrying will not help, else hubclient_backoff_ms over the configured
 * bounds. Returns whether this failure is to be logged loudly (no retry,
 * or every 20th); then why also says what a probe found
 * (hubclient_explain).
 */
bool hubclient_backoff(
    hubclient *hc, unsigned failures, bool no_retry, int64_t *ms);

#endif /* AGENT_HUBCLIENT_H */
