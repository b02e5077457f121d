/* live.c: see live.h. */
#include "live.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "db.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static live_state st;      /* guarded by mu */
static uint64_t changes;   /* hub transitions so far, guarded by mu */
static uint64_t persisted; /* changes when the meta rows were written */

void
live_start(void)
{
	pthread_mutex_lock(&mu);
	memset(&st, 0, sizeof st);
	st.running = true;
	changes = persisted = 0;
	pthread_mutex_unlock(&mu);
}

void
live_stop(void)
{
	pthread_mutex_lock(&mu);
	st.running = false;
	pthread_mutex_unlock(&mu);
}

/* Moves hub to h at now_ms; the caller holds mu. */
static void
set_hub(live_hub h, int64_t now_ms)
{
	if (st.hub == h)
		return;
	st.hub = h;
	st.since_ms = now_ms;
	changes++;
}

void
live_answer(int64_t now_ms)
{
	pthread_mutex_lock(&mu);
	st.contact_ms = now_ms;
	set_hub(LIVE_HUB_UP, now_ms);
	pthread_mutex_unlock(&mu);
}

void
live_unreachable(int64_t now_ms, const char *why)
{
	pthread_mutex_lock(&mu);
	snprintf(st.error, sizeof st.error, "%s", why);
	set_hub(LIVE_HUB_DOWN, now_ms);
	pthread_mutex_unlock(&mu);
}

void
live_error(const char *why)
{
	pthread_mutex_lock(&mu);
	snprintf(st.error, sizeof st.error, "%s", why);
	pthread_mutex_unlock(&mu);
}

void
live_bytes_per_event(int64_t n)
{
	pthread_mutex_lock(&mu);
	st.bytes_per_event = n;
	pthread_mutex_unlock(&mu);
}

void
live_get(live_state *out)
{
	pthread_mutex_lock(&mu);
	*out = st;
	pthread_mutex_unlock(&mu);
}

const char *
live_name(live_hub h)
{
	return h == LIVE_HUB_UP  ? "up"
	    : h == LIVE_HUB_DOWN ? "down"
	                         : "unknown";
}

proto_err
live_sync(sqlite3 *db, int64_t busy_ms, char *err, size_t errlen)
{
	sqlite3_stmt *ins = NULL;
	live_state snap;
	uint64_t gen;
	bool same;
	proto_err rv;
	int rc;

	pthread_mutex_lock(&mu);
	snap = st;
	gen = changes;
	same = gen == persisted;
	pthread_mutex_unlock(&mu);
	/* The common case, once per request: nothing changed. */
	if (same || snap.hub == LIVE_HUB_UNKNOWN
	    || !sqlite3_get_autocommit(db))
		return PROTO_OK;
	/* One statement: its own short write transaction. */
	if ((rv = db_prepare(db,
	         "INSERT OR REPLACE INTO _branchsync_meta(name, value) VALUES "
	         "('hub_state', ?1), ('hub_state_since', ?2), "
	         "('hub_last_error', ?3)",
	         &ins, err, errlen))
	    != PROTO_OK)
		return rv;
	sqlite3_bind_text(ins, 1, live_name(snap.hub), -1, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 2, snap.since_ms / 1000);
	sqlite3_bind_text(ins, 3, snap.error, -1, SQLITE_STATIC);
	/* Behind a POS transaction: the next sync writes it. */
	if ((rc = db_step_nowait(db, ins, busy_ms)) == SQLITE_BUSY) {
		sqlite3_finalize(ins);
		return PROTO_OK;
	}
	if (rc != SQLITE_DONE)
		rv = db_fail(db,
		    "could not record the hub state in "
		    "_branchsync_meta",
		    err, errlen);
	sqlite3_finalize(ins);
	if (rv == PROTO_OK) {
		pthread_mutex_lock(&mu);
		persisted = gen;
		pthread_mutex_unlock(&mu);
	}
	return rv;
}
