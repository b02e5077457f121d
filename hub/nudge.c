/*
 * nudge.c: LISTEN branchsync_change, publish nudges on an nng pub0 socket.
 *
 * Topics: "b:CODE\n" (pull: master data for that branch), "*\n" (pull:
 * every branch) and "r:CODE\n" (say HELLO: rejects were retried or
 * discarded at the hub).
 *
 * The thread waits on the connection's socket with poll() and a 500 ms
 * timeout, so it notices a stop request quickly without a second wakeup
 * mechanism. Branch codes are cached: a NOTIFY carries only the branch
 * id, and looking it up per notification would cost a query per change.
 */
#include "nudge.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "proto/auth.h"
#include "platform.h"
#include "tls.h"
#include "util.h"

/* How long one poll() waits: how quickly the thread notices a stop. */
#define NUDGE_POLL_MS 500
/* Seconds between reconnection attempts. */
#define NUDGE_RETRY_S 2
/* Most credentials of one branch nudged (its key and its tills'). */
#define NUDGE_SECRETS 256

/* One cached branch. */
typedef struct {
	int id;     /* branchsync.branch.id */
	char *code; /* its code */
} nudge_branch;

struct nudge {
	const hub_config *conf; /* borrowed */
	nng_socket sock;        /* pub0 socket */
	pthread_t thread;       /* the LISTEN thread */
	atomic_bool stop;       /* set by nudge_stop */
	PGconn *conn;           /* LISTEN connection, NULL while down */
	nudge_branch *branches; /* id -> code cache */
	size_t nbranches;       /* entries in branches */
	authcache *keys;        /* the branches' secrets (borrowed) */
};

/* publish sends one topic; pub0 never blocks, it drops for slow peers. */
static void
publish(nudge *n, const char *topic)
{
	int rv = nng_send(n->sock, (void *) topic, strlen(topic), 0);

	if (rv != 0)
		log_warn("HUB-NUDGE-FAIL", "could not publish nudge: %s",
		    nng_strerror(rv));
	else
		log_debug("HUB-NUDGE", "published \"%.*s\"",
		    (int) strcspn(topic, "\n"), topic);
}

static void
cache_clear(nudge *n)
{
	for (size_t i = 0; i < n->nbranches; i++)
		free(n->branches[i].code);
	free(n->branches);
	n->branches = NULL;
	n->nbranches = 0;
}

/* cache_load replaces the cache with every branch; false on error. */
static bool
cache_load(nudge *n)
{
	char err[512];
	PGresult *res;

	if (db_exec(n->conn, "SELECT id, code FROM branchsync.branch", 0, NULL,
	        PGRES_TUPLES_OK, &res, NULL, err, sizeof err)
	    != PROTO_OK) {
		log_error(
		    "HUB-DB-FAIL", "nudge: could not read branches: %s", err);
		return false;
	}
	cache_clear(n);
	n->nbranches = (size_t) PQntuples(res);
	n->branches = xcalloc(n->nbranches + 1, sizeof *n->branches);
	for (size_t i = 0; i < n->nbranches; i++) {
		n->branches[i].id = atoi(PQgetvalue(res, (int) i, 0));
		n->branches[i].code = xstrdup(PQgetvalue(res, (int) i, 1));
	}
	PQclear(res);
	return true;
}

static const char *
cache_find(const nudge *n, int id)
{
	for (size_t i = 0; i < n->nbranches; i++)
		if (n->branches[i].id == id)
			return n->branches[i].code;
	return NULL;
}

/*
 * on_notify publishes the nudge for one notification payload: a scope
 * (a branch id, or 0 for every branch) for a master-data change, "b:TAG"
 * per credential of the branch, or "*"; "r" and a branch id for rejects
 * to retry or discard, "r:TAG" per credential.
 */
static void
on_notify(nudge *n, const char *payload)
{
	char topic[PROTO_TOPIC_MAX];
	uint8_t secrets[NUDGE_SECRETS][PROTO_SECRET_BYTES];
	size_t nsec;
	bool rejects = payload[0] == 'r';
	int id = atoi(payload + rejects);
	const char *code;

	if (id == 0 && !rejects) {
		publish(n, "*\n");
		return;
	}
	/* A miss means a branch added since the last load: reload once. */
	if ((code = cache_find(n, id)) == NULL && cache_load(n))
		code = cache_find(n, id);
	if (code == NULL) {
		log_debug("HUB-NUDGE", "no branch with id %d", id);
		return;
	}
	/* One topic per credential: a branch's code never goes out. */
	nsec = authcache_branch_secrets(n->keys, code, secrets, NUDGE_SECRETS);
	for (size_t i = 0; i < nsec; i++)
		if (proto_nudge_topic(secrets[i], rejects ? 'r' : 'b', topic)
		    == PROTO_OK)
			publish(n, topic);
}

/* connect_listen connects and LISTENs, retrying; false when stopping. */
static bool
connect_listen(nudge *n)
{
	char err[512];

	while (!atomic_load(&n->stop)) {
		if (db_connect(n->conf->postgres, &n->conn, err, sizeof err)
		        == PROTO_OK
		    && db_exec(n->conn, "LISTEN branchsync_change", 0, NULL,
		           PGRES_COMMAND_OK, NULL, NULL, err, sizeof err)
		        == PROTO_OK)
			return true;
		PQfinish(n->conn);
		n->conn = NULL;
		log_error("HUB-DB-DOWN",
		    "nudge: %s; disconnected; retrying in %d s", err,
		    NUDGE_RETRY_S);
		for (int i = 0;
		     i < NUDGE_RETRY_S * 10 && !atomic_load(&n->stop); i++)
			plat_sleep_ms(100);
	}
	return false;
}

/* wait_notifies waits up to NUDGE_POLL_MS; false if the connection died. */
static bool
wait_notifies(nudge *n)
{
	struct pollfd pfd = {.fd = PQsocket(n->conn), .events = POLLIN};
	PGnotify *nt;

	if (pfd.fd < 0)
		return false;
	if (poll(&pfd, 1, NUDGE_POLL_MS) <= 0)
		return true; /* timeout, or EINTR: look at stop and wait again
		              */
	if (!PQconsumeInput(n->conn))
		return false;
	while ((nt = PQnotifies(n->conn)) != NULL) {
		on_notify(n, nt->extra);
		PQfreemem(nt);
	}
	return PQstatus(n->conn) == CONNECTION_OK;
}

static void *
nudge_main(void *arg)
{
	nudge *n = arg;

	while (connect_listen(n)) {
		/* Whatever was notified while we were away is lost. */
		publish(n, "*\n");
		while (!atomic_load(&n->stop) && wait_notifies(n))
			;
		if (atomic_load(&n->stop))
			break;
		log_error("HUB-DB-DOWN",
		    "nudge: lost the LISTEN connection: %.*s",
		    (int) strcspn(PQerrorMessage(n->conn), "\n"),
		    PQerrorMessage(n->conn));
		PQfinish(n->conn);
		n->conn = NULL;
	}
	return NULL;
}

/* open_pub opens the pub0 socket and listens on every publish URL. */
static proto_err
open_pub(nudge *n, nng_tls_config *tls, char *err, size_t errlen)
{
	int rv;

	if ((rv = nng_pub0_open(&n->sock)) != 0) {
		snprintf(err, errlen, "could not open publish socket: %s",
		    nng_strerror(rv));
		return PROTO_EIO;
	}
	for (size_t i = 0; i < n->conf->npub; i++) {
		if (tls_listen(n->sock, n->conf->pub_urls[i], tls, err, errlen)
		    != PROTO_OK) {
			nng_close(n->sock);
			return PROTO_EIO;
		}
	}
	return PROTO_OK;
}

proto_err
nudge_start(const hub_config *conf, nng_tls_config *tls, authcache *keys,
    nudge **out, char *err, size_t errlen)
{
	nudge *n;
	proto_err rv;

	*out = NULL;
	if (conf->npub == 0)
		return PROTO_OK;
	n = xcalloc(1, sizeof *n);
	n->keys = keys;
	n->conf = conf;
	atomic_init(&n->stop, false);
	if ((rv = open_pub(n, tls, err, errlen)) != PROTO_OK) {
		free(n);
		return rv;
	}
	if (pthread_create(&n->thread, NULL, nudge_main, n) != 0) {
		snprintf(err, errlen, "could not start the nudge thread");
		nng_close(n->sock);
		free(n);
		return PROTO_EIO;
	}
	log_info("HUB-NUDGE-START", "publishing nudges on %s", conf->publish);
	*out = n;
	return PROTO_OK;
}

void
nudge_stop(nudge *n)
{
	if (n == NULL)
		return;
	atomic_store(&n->stop, true);
	pthread_join(n->thread, NULL);
	PQfinish(n->conn);
	cache_clear(n);
	nng_close(n->sock);
	free(n);
}
