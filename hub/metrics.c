/*
 * metrics.c: the hub process's counters (see metrics.h).
 *
 * One mutex guards them all: every update is a few additions, far cheaper
 * than the PostgreSQL round trip that comes with it, and a scrape then
 * sees one consistent snapshot (a histogram's buckets, _sum and _count
 * agree with each other).
 */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static const double apply_bounds[] = METRICS_APPLY_BUCKETS;
#define NBOUNDS ARRAY_LEN(apply_bounds)

typedef struct {
	uint64_t apply_n[NBOUNDS + 1]; /* per bucket, not cumulative; the
	                                  last one is above every bound */
	double apply_sum;              /* seconds observed */
	uint64_t apply_count;          /* observations */
	uint64_t apply_errors;         /* PUSHes answered with an ERROR */
	uint64_t pg_errors;            /* PostgreSQL failures */
	uint64_t auth_failures;        /* failed authentications */
	uint64_t auth_blocked;         /* connections shut out (guard.h) */
	uint64_t plain_requests;       /* version 1 requests */
	uint64_t changes_sent;         /* changes in CHANGES pages */
	int64_t agents;                /* pipes on the request socket */
} counters;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* guards m */
static counters m;

void
metrics_init(void)
{
	pthread_mutex_lock(&mu);
	memset(&m, 0, sizeof m);
	pthread_mutex_unlock(&mu);
}

void
metrics_fini(void)
{
	/* Nothing allocated: the counters are static. */
}

void
metrics_observe_apply(double seconds)
{
	size_t i = 0;

	if (!(seconds >= 0)) /* negative or NaN: a clock oddity */
		seconds = 0;
	while (i < NBOUNDS && seconds > apply_bounds[i])
		i++;
	pthread_mutex_lock(&mu);
	m.apply_n[i]++;
	m.apply_sum += seconds;
	m.apply_count++;
	pthread_mutex_unlock(&mu);
}

/* add adds n to a counter under the lock. */
static void
add(uint64_t *c, uint64_t n)
{
	pthread_mutex_lock(&mu);
	*c += n;
	pthread_mutex_unlock(&mu);
}

void
metrics_apply_error(void)
{
	add(&m.apply_errors, 1);
}

void
metrics_pg_error(void)
{
	add(&m.pg_errors, 1);
}

void
metrics_auth_failure(void)
{
	add(&m.auth_failures, 1);
}

void
metrics_auth_blocked(void)
{
	add(&m.auth_blocked, 1);
}

void
metrics_plain_request(void)
{
	add(&m.plain_requests, 1);
}

void
metrics_changes_sent(int64_t n)
{
	if (n > 0)
		add(&m.changes_sent, (uint64_t) n);
}

void
metrics_agents_delta(int d)
{
	pthread_mutex_lock(&mu);
	m.agents += d;
	if (m.agents < 0) /* a removal whose addition we missed */
		m.agents = 0;
	pthread_mutex_unlock(&mu);
}

/* counter renders one unlabelled counter with its HELP and TYPE. */
static void
counter(strbuf *out, const char *name, const char *help, uint64_t v)
{
	prom_head(out, name, "counter", help);
	prom_sample_i(out, name, NULL, NULL, (int64_t) v);
}

void
metrics_render(strbuf *out)
{
	static const char *const h = "branchsync_hub_batch_apply_seconds";
	char name[64], le[32];
	uint64_t cum = 0;
	counters s;

	/* Copy under the lock, format without it. */
	pthread_mutex_lock(&mu);
	s = m;
	pthread_mutex_unlock(&mu);

	prom_head(out, h, "histogram",
	    "Time to apply and commit one PUSH, seconds.");
	snprintf(name, sizeof name, "%s_bucket", h);
	for (size_t i = 0; i <= NBOUNDS; i++) {
		cum += s.apply_n[i];
		if (i < NBOUNDS)
			snprintf(le, sizeof le, "%g", apply_bounds[i]);
		else
			snprintf(le, sizeof le, "+Inf");
		prom_sample_i(out, name, "le", le, (int64_t) cum);
	}
	snprintf(name, sizeof name, "%s_sum", h);
	prom_sample(out, name, NULL, NULL, s.apply_sum);
	snprintf(name, sizeof name, "%s_count", h);
	prom_sample_i(out, name, NULL, NULL, (int64_t) s.apply_count);

	counter(out, "branchsync_hub_apply_errors_total",
	    "PUSH requests answered with an error after authentication.",
	    s.apply_errors);
	counter(out, "branchsync_hub_postgres_errors_total",
	    "PostgreSQL statements or connections that failed.", s.pg_errors);
	counter(out, "branchsync_hub_auth_failures_total",
	    "Requests whose branch code or key was refused.", s.auth_failures);
	counter(out, "branchsync_hub_auth_blocked_total",
	    "Connections closed or refused because their address failed "
	    "auth_fail_max authentications.",
	    s.auth_blocked);
	counter(out, "branchsync_hub_plain_requests_total",
	    "Protocol version 1 requests, whose key travels in clear "
	    "(refused unless accept_plain_keys).",
	    s.plain_requests);
	counter(out, "branchsync_hub_changes_sent_total",
	    "Changes sent to branches in CHANGES pages.", s.changes_sent);
	prom_head(out, "branchsync_hub_connected_agents", "gauge",
	    "Connections (nng pipes) on the agents' listener.");
	prom_sample_i(
	    out, "branchsync_hub_connected_agents", NULL, NULL, s.agents);
	prom_head(out, "branchsync_hub_info", "gauge",
	    "Always 1; the label says this hub's version.");
	prom_sample_i(out, "branchsync_hub_info", "version", BS_VERSION, 1);
}
