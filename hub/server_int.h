/*
 * server_int.h: what server.c (the socket, the workers, the dispatch of
 * requests) and serverauth.c (the authentication of requests) share. NOT
 * for use outside those two files.
 *
 * The workers share the socket, the config and the catalog (both
 * read-only), the key cache (authcache.h, its own lock), and one small
 * table guarded by server_state.mu: which connection (nng pipe) is which
 * (its address, its nonce, the last counter accepted on it, the
 * credential it authenticated with) and whether each branch was last seen
 * behind. nng's pipe callbacks use it too.
 */
#ifndef HUB_SERVER_INT_H
#define HUB_SERVER_INT_H

#include <libpq-fe.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "apply.h"
#include "authcache.h"
#include "config.h"
#include "guard.h"
#include "proto/auth.h"
#include "proto/msg.h"
#include "pull.h"

/* Room for a peer address ("[v6]:port", an ipc path), for logs. */
#define PEER_MAX 128
/* Room for a branch code (db.c accepts 1 to 64 characters). */
#define CODE_MAX 65
/* Room for "BRANCH" or "BRANCH" till "TILL", quotes included, for logs. */
#define WHO_MAX (2 * CODE_MAX + 16)
/* At most this many HUB-AUTH-FAIL lines per window; then a count. */
#define AUTH_LOG_MAX       10
#define AUTH_LOG_WINDOW_MS 60000
/* Most characters of an agent's version string logged. */
#define VERSION_MAX 64
/* Room for a credential, "BRANCH/TILL", as a connection remembers it. */
#define CRED_MAX (2 * CODE_MAX + 2)

/* What a version 1 request is told when accept_plain_keys is off. */
#define PLAIN_REFUSED                                                         \
	"protocol version 1 sends the branch key in clear, and this hub "     \
	"does not accept it (accept_plain_keys = false): upgrade the agent"

/* A log line limited to AUTH_LOG_MAX per AUTH_LOG_WINDOW_MS. */
typedef struct {
	int64_t window_ms; /* start of the window */
	int64_t logged;    /* lines logged in it */
	int64_t hidden;    /* events not logged in it */
} ratelog;

/* A connection (nng pipe) on the request socket. */
typedef struct {
	uint32_t id;         /* nng_pipe_id */
	int64_t since_ms;    /* monotonic clock when it came */
	char peer[PEER_MAX]; /* remote address, formatted */
	char who[WHO_MAX];   /* branch (and till) authenticated on it,
	                        quoted; "" none yet */
	bool tls;            /* verified TLS pipe whose CN must match */
	char cn[CODE_MAX];   /* its client certificate's CN ("" unknown) */

	/* Authentication (serverauth.c): its address as guard.h counts
	 * it, the nonce issued to it, the credential it authenticated with
	 * ("BRANCH/TILL", "" none yet: it serves that one only). */
	char host[GUARD_KEY_MAX];
	uint8_t nonce[PROTO_NONCE_BYTES];
	char cred[CRED_MAX];
	int64_t last_ctr;      /* highest counter accepted on it, -1 none */
	unsigned nonce_errors; /* PROTO_ENONCE answers sent on it */
	bool plain;            /* a version 1 request came on it */
} conn_info;

/* What the last report of a branch said about its backlog. */
typedef struct {
	int branch_id; /* branchsync.branch.id */
	int till_id;   /* branchsync.till.id, 0: the branch's own key */
	bool behind;   /* over behind_events or behind_seconds */
} branch_info;

/*
 * The state shared by the workers and the pipe callbacks. conns has one
 * entry per live pipe (added at NNG_PIPE_EV_ADD_PRE, before any message
 * can arrive on it, removed at NNG_PIPE_EV_REM_POST, which nng raises for
 * every pipe that saw ADD_PRE); branches one per branch that
 * authenticated since the start. Both are searched linearly: a lookup
 * costs far less than the PostgreSQL round trip of the same request.
 */
typedef struct {
	pthread_mutex_t mu;      /* guards everything below */
	conn_info *conns;        /* live pipes */
	size_t nconns, cconns;   /* used, allocated */
	branch_info *branches;   /* branches seen */
	size_t nbranch, cbranch; /* used, allocated */
	int64_t behind_events;   /* from the config */
	int64_t behind_seconds;  /* from the config */
	bool check_cn;           /* tls_client_ca set, nng reports the CN */
	ratelog auth_log;        /* HUB-AUTH-FAIL lines */
	ratelog plain_log;       /* HUB-PLAIN-KEY lines of refusals */
	guard *guard;            /* failures per address */
	authcache *keys;         /* the credentials (own lock) */
} server_state;

/*
 * How to answer the current request: in its version; once it is
 * authenticated, with a MAC made with the secret that checked its MAC
 * (secret) over its MAC (req_mac); with the connection's nonce (nonce_v)
 * for PROTO_ENONCE; or not at all (drop: the connection is closed).
 */
typedef struct {
	uint8_t secret[PROTO_SECRET_BYTES];
	uint8_t req_mac[PROTO_MAC_BYTES];
	uint8_t nonce_v[PROTO_NONCE_BYTES];
	int version; /* PROTO_VERSION or PROTO_VERSION_PLAIN */
	bool mac;    /* MAC the answer */
	bool nonce;  /* send nonce_v */
	bool drop;   /* no answer: close the connection */
} answer;

typedef struct {
	const hub_config *conf; /* borrowed */
	server_state *st;       /* shared, see above */
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
	proto_buf body;         /* its body (version 2) */
	nng_pipe pipe;          /* the current request's connection */
	answer ans;             /* how to answer it */
	authcache_entry cred;   /* its credential once found */
	int branch_id;          /* its branch once authenticated */
	int authed;             /* branch_id while dispatched, or -1 */
	int till_id;            /* its till once authenticated, 0 none */
	bool old_key;           /* it used the branch's previous key */
	char who[WHO_MAX]; /* "branch=CODE [till=TILL]" for logs (log_who) */
	char err[1024];    /* reason of the current failure */
} worker;

/* conn_find returns the entry of pipe id, or NULL. Holding st->mu. */
conn_info *conn_find(server_state *st, uint32_t id);

/* printable copies at most VERSION_MAX bytes of s, '?' for controls. */
void printable(const char *s, char *out, size_t len);

/*
 * serverauth_request authenticates the version 2 request env before its
 * body is decoded, without a query: the connection's nonce among the
 * request's, the credential from the cache and the MAC over the body's
 * bytes, the client certificate, the counter. PROTO_OK with the identity
 * in w (branch_id, till_id, old_key, who; apply told of the till) and
 * w->ans set to MAC the answer; otherwise reply is the ERROR to send
 * (PROTO_ENONCE with w->ans.nonce, PROTO_EAUTH, ...) or w->ans.drop says
 * to close the connection unanswered.
 */
proto_err serverauth_request(
    worker *w, const proto_env *env, proto_msg *reply);

/*
 * serverauth_plain authenticates a version 1 request (accept_plain_keys)
 * by the key in its header h, against the cached credential. Results as
 * serverauth_request; answers are not MACed.
 */
proto_err serverauth_plain(
    worker *w, const proto_agent_hdr *h, proto_msg *reply);

/*
 * serverauth_plain_noted logs HUB-PLAIN-KEY for the first version 1
 * request on a connection: refused (rate limited) or accepted.
 */
void serverauth_plain_noted(worker *w, bool accepted);

#endif /* HUB_SERVER_INT_H */
