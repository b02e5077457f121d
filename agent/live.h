/*
 * live.h: what the running agent knows about the hub, for status.
 *
 * The sender reports each request's outcome here; the HTTP listener reads
 * it from its own threads. One process-wide state behind a mutex:
 *
 *   hub       unknown until the first request ends; up when any answer
 *             came back (an ERROR reply too), down when a request failed
 *             with a timeout or a connection error
 *   since     when hub last changed (epoch ms)
 *   contact   the last answer from any hub (epoch ms)
 *   error     the reason of the last failed request, of any kind
 *
 * The POS file keeps a copy for the offline "status" command, written
 * only when hub changes (never per batch), in one short transaction:
 *
 *   _branchsync_meta name   value
 *   hub_state               'up' or 'down'
 *   hub_state_since         epoch s of the change
 *   hub_last_error          the error at that time ('' if none)
 *
 * All functions are thread-safe.
 */
#ifndef AGENT_LIVE_H
#define AGENT_LIVE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

typedef enum {
	LIVE_HUB_UNKNOWN, /* no request has ended yet */
	LIVE_HUB_UP,      /* the last request got an answer */
	LIVE_HUB_DOWN,    /* the last request timed out or lost its link */
} live_hub;

/* A copy of the state. */
typedef struct {
	bool running;            /* a sender reports here (live_start) */
	live_hub hub;            /* reachability */
	int64_t since_ms;        /* epoch ms hub took its value, 0 unknown */
	int64_t contact_ms;      /* epoch ms of the last answer, 0 never */
	int64_t bytes_per_event; /* the sender's estimate, 0 unknown */
	char error[512];         /* last failure, "" none */
} live_state;

/* live_start resets the state and marks a sender as running. */
void live_start(void);
/* live_stop marks the sender as stopped (the state is kept). */
void live_stop(void);

/* live_answer: an answer came from a hub at now_ms (wall clock). */
void live_answer(int64_t now_ms);
/*
 * live_unreachable: a request failed at now_ms with a timeout or a
 * connection error; why is the reason (copied).
 */
void live_unreachable(int64_t now_ms, const char *why);
/* live_error records why the last request failed (any kind). */
void live_error(const char *why);
/* live_bytes_per_event records the sender's queue size estimate. */
void live_bytes_per_event(int64_t n);

/* live_get copies the state into *out. */
void live_get(live_state *out);

/*
 * live_sync writes the meta rows above into db when hub changed since
 * the last successful write; otherwise it does nothing (no statement).
 * Skipped when db is inside a transaction. It never waits for the write
 * lock (a POS transaction holding it would hold up the sender): while
 * another connection holds it, or on a failure (PROTO_EDB), the next call
 * tries again. busy_ms is the connection's busy timeout, kept.
 */
proto_err live_sync(sqlite3 *db, int64_t busy_ms, char *err, size_t errlen);

/* live_name returns "up", "down" or "unknown". */
const char *live_name(live_hub h);

#endif /* AGENT_LIVE_H */
