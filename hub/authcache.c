/*
 * authcache.c: the credentials of every branch and till in memory (see
 * authcache.h).
 *
 * The table is an array sorted by (branch code, till code) and searched
 * with bsearch under a read lock; a reload builds a new array without the
 * lock and swaps it in. The thread waits with poll() on its connection's
 * socket and on a pipe that authcache_sync and authcache_stop write to.
 */
#include "authcache.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "platform.h"
#include "util.h"

/* How long one poll() waits: how quickly the thread notices a stop. */
#define POLL_MS 500
/* Seconds between reconnection attempts. */
#define RETRY_S 2
/* The longest authcache_sync waits. */
#define SYNC_MS 200
/* After a failed load, the next attempt comes this much later. */
#define LOAD_RETRY_MS 5000

/* One credential and its name. */
typedef struct {
	char branch[PROTO_CODE_MAX + 1]; /* branch code */
	char till[PROTO_CODE_MAX + 1];   /* till code, "" for the branch's */
	authcache_entry e;               /* what a request needs */
	int64_t old_until_ms;            /* monotonic: old_secret valid
	                                    before this */
} cred;

struct authcache {
	char *conninfo;          /* libpq conninfo (owned) */
	pthread_t thread;        /* the LISTEN thread */
	bool started;            /* thread was created */
	atomic_bool stop;        /* set by authcache_stop */
	PGconn *conn;            /* the thread's connection, NULL while down */
	int wake[2];             /* pipe: read end polled, write end poked */
	pthread_rwlock_t lock;   /* guards creds and ncreds */
	cred *creds;             /* sorted by (branch, till) */
	size_t ncreds;           /* entries in creds */
	pthread_mutex_t sync_mu; /* guards the two counters below */
	pthread_cond_t sync_cv;  /* signalled when done grows */
	uint64_t asked;          /* authcache_sync calls so far */
	uint64_t done;           /* asked as of the last pass of the thread */
	int64_t loaded_ms;       /* monotonic time of the last load */
};

static int
cred_cmp(const void *a, const void *b)
{
	const cred *x = a, *y = b;
	int c = strcmp(x->branch, y->branch);

	return c != 0 ? c : strcmp(x->till, y->till);
}

/* hex_secret decodes 64 hex digits into s; false for anything else. */
static bool
hex_secret(const char *h, uint8_t s[PROTO_SECRET_BYTES])
{
	if (strlen(h) != 2 * PROTO_SECRET_BYTES)
		return false;
	for (size_t i = 0; i < PROTO_SECRET_BYTES; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return false;
		s[i] = (uint8_t) v;
	}
	return true;
}

/*
 * Every credential: the branches' own keys (till "") and the tills'. The
 * previous key comes with the milliseconds it has left, by PostgreSQL's
 * clock.
 */
static const char *const load_sql
    = "SELECT b.code, '', b.id, 0, b.enabled, b.enabled,"
      " encode(b.key_hash, 'hex'), coalesce(encode(b.old_key_hash, 'hex'),"
      " ''), coalesce((extract(epoch FROM b.old_key_until - now()) * 1000)"
      "::bigint, 0) FROM branchsync.branch b"
      " UNION ALL SELECT b.code, t.code, b.id, t.id, b.enabled AND"
      " t.enabled, b.enabled, encode(t.key_hash, 'hex'),"
      " coalesce(encode(t.old_key_hash, 'hex'), ''),"
      " coalesce((extract(epoch FROM t.old_key_until - now()) * 1000)"
      "::bigint, 0) FROM branchsync.till t"
      " JOIN branchsync.branch b ON b.id = t.branch_id";

/* row_cred fills *c from row i of res; false for a code we cannot hold. */
static bool
row_cred(const PGresult *res, int i, int64_t now, cred *c)
{
	const char *branch = PQgetvalue(res, i, 0),
	           *till = PQgetvalue(res, i, 1);
	int64_t left = strtoll(PQgetvalue(res, i, 8), NULL, 10);

	if (strlen(branch) > PROTO_CODE_MAX || strlen(till) > PROTO_CODE_MAX)
		return false;
	memset(c, 0, sizeof *c);
	snprintf(c->branch, sizeof c->branch, "%s", branch);
	snprintf(c->till, sizeof c->till, "%s", till);
	c->e.branch_id = atoi(PQgetvalue(res, i, 2));
	c->e.till_id = atoi(PQgetvalue(res, i, 3));
	c->e.enabled = PQgetvalue(res, i, 4)[0] == 't';
	c->e.branch_enabled = PQgetvalue(res, i, 5)[0] == 't';
	c->e.has_secret = hex_secret(PQgetvalue(res, i, 6), c->e.secret);
	c->e.has_old
	    = left > 0 && hex_secret(PQgetvalue(res, i, 7), c->e.old_secret);
	c->old_until_ms = c->e.has_old ? now + left : 0;
	return true;
}

/* load replaces the table with what PostgreSQL holds; false on error. */
static bool
load(authcache *c)
{
	char err[512];
	PGresult *res;
	cred *creds, *old;
	size_t n = 0;
	int64_t now;

	if (db_exec(c->conn, load_sql, 0, NULL, PGRES_TUPLES_OK, &res, NULL,
	        err, sizeof err)
	    != PROTO_OK) {
		log_error("HUB-DB-FAIL", "could not load the keys: %s", err);
		/* Keep what was loaded; try again in LOAD_RETRY_MS. */
		c->loaded_ms
		    = plat_mono_ms() - AUTHCACHE_REFRESH_MS + LOAD_RETRY_MS;
		return false;
	}
	now = plat_mono_ms();
	creds = xcalloc((size_t) PQntuples(res) + 1, sizeof *creds);
	for (int i = 0; i < PQntuples(res); i++)
		n += row_cred(res, i, now, &creds[n]);
	PQclear(res);
	qsort(creds, n, sizeof *creds, cred_cmp);
	pthread_rwlock_wrlock(&c->lock);
	old = c->creds;
	c->creds = creds;
	c->ncreds = n;
	pthread_rwlock_unlock(&c->lock);
	free(old);
	c->loaded_ms = now;
	log_debug("HUB-KEYS", "loaded %zu credentials", n);
	return true;
}

/* connect_listen connects, LISTENs and loads; false on failure. */
static bool
connect_listen(authcache *c, char *err, size_t errlen)
{
	if (db_connect(c->conninfo, &c->conn, err, errlen) == PROTO_OK
	    && db_exec(c->conn, "LISTEN branchsync_keys", 0, NULL,
	           PGRES_COMMAND_OK, NULL, NULL, err, errlen)
	        == PROTO_OK
	    && load(c))
		return true;
	PQfinish(c->conn);
	c->conn = NULL;
	return false;
}

/* drain_wake empties the wake pipe. */
static void
drain_wake(authcache *c)
{
	char buf[64];

	while (read(c->wake[0], buf, sizeof buf) > 0)
		;
}

/* sync_done answers the authcache_sync calls made before asked was read. */
static void
sync_done(authcache *c, uint64_t asked)
{
	pthread_mutex_lock(&c->sync_mu);
	if (asked > c->done)
		c->done = asked;
	pthread_cond_broadcast(&c->sync_cv);
	pthread_mutex_unlock(&c->sync_mu);
}

static uint64_t
sync_asked(authcache *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->sync_mu);
	n = c->asked;
	pthread_mutex_unlock(&c->sync_mu);
	return n;
}

/*
 * pass waits for a notification, a wake or the timeout, then reads what
 * PostgreSQL delivered and reloads if anything changed or the refresh is
 * due. false if the connection died.
 */
static bool
pass(authcache *c)
{
	struct pollfd pfd[2] = {{.fd = PQsocket(c->conn), .events = POLLIN},
	    {.fd = c->wake[0], .events = POLLIN}};
	uint64_t asked;
	bool changed = false;
	PGnotify *nt;

	if (pfd[0].fd < 0)
		return false;
	(void) poll(pfd, 2, POLL_MS);
	drain_wake(c);
	asked = sync_asked(c);
	if (!PQconsumeInput(c->conn))
		return false;
	while ((nt = PQnotifies(c->conn)) != NULL) {
		changed = true;
		PQfreemem(nt);
	}
	if (changed || plat_mono_ms() - c->loaded_ms >= AUTHCACHE_REFRESH_MS) {
		if (changed)
			log_info("HUB-KEYS",
			    "branch or till keys changed: reloading");
		if (!load(c) && db_lost(c->conn))
			return false;
	}
	sync_done(c, asked);
	return PQstatus(c->conn) == CONNECTION_OK;
}

static void *
cache_main(void *arg)
{
	authcache *c = arg;
	char err[512];

	while (!atomic_load(&c->stop)) {
		if (c->conn == NULL) {
			/* Nothing to read meanwhile: syncs return at once. */
			sync_done(c, sync_asked(c));
			if (connect_listen(c, err, sizeof err)) {
				log_info("HUB-DB-UP",
				    "keys: reconnected; %zu credentials "
				    "loaded",
				    authcache_count(c));
				continue;
			}
			log_error("HUB-DB-DOWN",
			    "keys: %s; disconnected; retrying in %d s", err,
			    RETRY_S);
			for (int i = 0;
			     i < RETRY_S * 10 && !atomic_load(&c->stop); i++) {
				sync_done(c, sync_asked(c));
				plat_sleep_ms(100);
			}
			continue;
		}
		if (pass(c))
			continue;
		log_error("HUB-DB-DOWN",
		    "keys: lost the LISTEN connection: %.*s",
		    (int) strcspn(PQerrorMessage(c->conn), "\n"),
		    PQerrorMessage(c->conn));
		PQfinish(c->conn);
		c->conn = NULL;
	}
	sync_done(c, UINT64_MAX);
	return NULL;
}

static void
cache_free(authcache *c)
{
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	PQfinish(c->conn);
	pthread_rwlock_destroy(&c->lock);
	pthread_mutex_destroy(&c->sync_mu);
	pthread_cond_destroy(&c->sync_cv);
	free(c->creds);
	free(c->conninfo);
	free(c);
}

proto_err
authcache_start(
    const char *conninfo, authcache **out, char *err, size_t errlen)
{
	authcache *c = xcalloc(1, sizeof *c);
	proto_err rv;

	*out = NULL;
	err[0] = '\0';
	c->conninfo = xstrdup(conninfo);
	c->wake[0] = c->wake[1] = -1;
	atomic_init(&c->stop, false);
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->sync_mu, NULL);
	pthread_cond_init(&c->sync_cv, NULL);
	if (pipe(c->wake) != 0 || fcntl(c->wake[0], F_SETFL, O_NONBLOCK) != 0
	    || fcntl(c->wake[1], F_SETFL, O_NONBLOCK) != 0) {
		snprintf(err, errlen, "could not make the keys' wake pipe");
		rv = PROTO_EIO;
		goto fail;
	}
	if ((rv = db_connect_retry(c->conninfo, &c->conn)) != PROTO_OK)
		goto fail;
	if (db_exec(c->conn, "LISTEN branchsync_keys", 0, NULL,
	        PGRES_COMMAND_OK, NULL, NULL, err, errlen)
	        != PROTO_OK
	    || !load(c)) {
		if (err[0] == '\0')
			snprintf(err, errlen, "could not load the keys");
		rv = PROTO_EDB;
		goto fail;
	}
	if (pthread_create(&c->thread, NULL, cache_main, c) != 0) {
		snprintf(err, errlen, "could not start the keys thread");
		rv = PROTO_EIO;
		goto fail;
	}
	c->started = true;
	log_info("HUB-KEYS", "%zu credentials loaded", c->ncreds);
	*out = c;
	return PROTO_OK;
fail:
	cache_free(c);
	return rv;
}

void
authcache_stop(authcache *c)
{
	if (c == NULL)
		return;
	atomic_store(&c->stop, true);
	if (write(c->wake[1], "s", 1) < 0) {
		/* full or closed: the thread wakes within POLL_MS anyway */
	}
	if (c->started)
		pthread_join(c->thread, NULL);
	cache_free(c);
}

bool
authcache_find(
    authcache *c, const char *branch, const char *till, authcache_entry *out)
{
	cred key;
	const cred *found;
	bool ok = false;

	if (strlen(branch) > PROTO_CODE_MAX
	    || (till != NULL && strlen(till) > PROTO_CODE_MAX))
		return false;
	snprintf(key.branch, sizeof key.branch, "%s", branch);
	snprintf(key.till, sizeof key.till, "%s", till != NULL ? till : "");
	pthread_rwlock_rdlock(&c->lock);
	found = bsearch(&key, c->creds, c->ncreds, sizeof *c->creds, cred_cmp);
	if (found != NULL) {
		*out = found->e;
		out->has_old
		    = found->e.has_old && plat_mono_ms() < found->old_until_ms;
		ok = true;
	}
	pthread_rwlock_unlock(&c->lock);
	return ok;
}

size_t
authcache_branch_secrets(authcache *c, const char *branch,
    uint8_t (*out)[PROTO_SECRET_BYTES], size_t max)
{
	int64_t now = plat_mono_ms();
	size_t n = 0;

	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < c->ncreds && n < max; i++) {
		const cred *k = &c->creds[i];
		if (strcmp(k->branch, branch) != 0 || !k->e.enabled)
			continue;
		if (k->e.has_secret)
			memcpy(out[n++], k->e.secret, PROTO_SECRET_BYTES);
		if (k->e.has_old && now < k->old_until_ms && n < max)
			memcpy(out[n++], k->e.old_secret, PROTO_SECRET_BYTES);
	}
	pthread_rwlock_unlock(&c->lock);
	return n;
}

void
authcache_sync(authcache *c)
{
	struct timespec until;
	uint64_t mine;

	pthread_mutex_lock(&c->sync_mu);
	mine = ++c->asked;
	pthread_mutex_unlock(&c->sync_mu);
	if (write(c->wake[1], "w", 1) < 0) {
		/* full: a wake is pending already */
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += SYNC_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&c->sync_mu);
	while (c->done < mine
	    && pthread_cond_timedwait(&c->sync_cv, &c->sync_mu, &until) == 0)
		;
	pthread_mutex_unlock(&c->sync_mu);
}

size_t
authcache_count(authcache *c)
{
	size_t n;

	pthread_rwlock_rdlock(&c->lock);
	n = c->ncreds;
	pthread_rwlock_unlock(&c->lock);
	return n;
}
