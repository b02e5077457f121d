/*
 * sampler.c: the backlog sampler's thread (see sampler.h). It sleeps on a
 * monotonic deadline rather than for a fixed time, so samples do not
 * drift by the time each one takes, and a stop wakes it at once.
 */
#include "sampler.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "db.h"
#include "platform.h"
#include "util.h"

/* Seconds between prunes of backlog samples older than a day. */
#define PRUNE_EVERY_S 60

struct hub_sampler {
	int64_t interval_s;      /* sample_interval_s */
	sampler_db_fn with_conn; /* runs a statement on the owner's conn */
	void *owner;             /* with_conn's first argument */
	pthread_t thread;        /* the sampler thread */
	pthread_mutex_t mu;      /* guards stopping */
	pthread_cond_t cv;       /* stopping set (monotonic clock) */
	bool stopping;           /* sampler_stop was called */
	int64_t pruned_ms;       /* last prune, monotonic */
};

/* sample_cb records every enabled branch's queue and prunes old samples. */
static proto_err
sample_cb(PGconn *conn, void *arg, char *err, size_t errlen)
{
	hub_sampler *s = arg;
	int64_t now = plat_mono_ms();
	proto_err rv;

	rv = db_exec(conn,
	    "INSERT INTO branchsync.backlog_sample(branch_id, ts,"
	    " queue_events) SELECT b.id, date_trunc('second', now()),"
	    " sum(s.queue_events) FROM branchsync.branch b"
	    " JOIN branchsync.branch_status s ON s.branch_id = b.id"
	    " WHERE b.enabled AND s.queue_events IS NOT NULL"
	    " GROUP BY b.id ON CONFLICT DO NOTHING",
	    0, NULL, PGRES_COMMAND_OK, NULL, NULL, err, errlen);
	if (rv == PROTO_OK && now - s->pruned_ms >= PRUNE_EVERY_S * 1000) {
		rv = db_exec(conn,
		    "DELETE FROM branchsync.backlog_sample"
		    " WHERE ts < now() - interval '1 day'",
		    0, NULL, PGRES_COMMAND_OK, NULL, NULL, err, errlen);
		if (rv == PROTO_OK)
			s->pruned_ms = now;
	}
	return rv;
}

/* sampler_main samples every interval_s until stopping is set. */
static void *
sampler_main(void *arg)
{
	hub_sampler *s = arg;
	int64_t step = s->interval_s * 1000;
	struct timespec due;
	char err[1024];

	clock_gettime(CLOCK_MONOTONIC, &due);
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		pthread_mutex_unlock(&s->mu);
		(void) s->with_conn(s->owner, "record the backlog", sample_cb,
		    s, err, sizeof err);
		due.tv_sec += step / 1000;
		due.tv_nsec += (step % 1000) * 1000000;
		if (due.tv_nsec >= 1000000000) {
			due.tv_sec++;
			due.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&s->mu);
		while (!s->stopping
		    && pthread_cond_timedwait(&s->cv, &s->mu, &due) == 0)
			;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* sampler_fini frees s, whose thread is not running. */
static void
sampler_fini(hub_sampler *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

proto_err
sampler_start(int64_t interval_s, sampler_db_fn with_conn, void *owner,
    hub_sampler **out, char *err, size_t errlen)
{
	hub_sampler *s = xcalloc(1, sizeof *s);
	pthread_condattr_t ca;

	*out = NULL;
	s->interval_s = interval_s;
	s->with_conn = with_conn;
	s->owner = owner;
	s->pruned_ms = INT64_MIN / 2;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
		snprintf(err, errlen, "could not start the sampler thread");
		sampler_fini(s);
		return PROTO_EIO;
	}
	*out = s;
	return PROTO_OK;
}

void
sampler_stop(hub_sampler *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	sampler_fini(s);
}
