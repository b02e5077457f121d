/*
 * metrics.h: the hub process's own counters, for /metrics.
 *
 * Per-branch figures live in PostgreSQL (see overview.h); these are the
 * process-wide ones, kept in memory and reset by a restart, as Prometheus
 * expects of counters. All functions are thread-safe.
 */
#ifndef HUB_METRICS_H
#define HUB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"

/* Upper bounds of the batch apply histogram, seconds. */
#define METRICS_APPLY_BUCKETS                                                 \
	{                                                                     \
		0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10       \
	}

void metrics_init(void);
void metrics_fini(void);

/* A PUSH was applied (committed) in seconds. */
void metrics_observe_apply(double seconds);
/* A PUSH could not be applied (answered with an ERROR after auth). */
void metrics_apply_error(void);
/* A PostgreSQL statement or connection failed. */
void metrics_pg_error(void);
/* An authentication failed. */
void metrics_auth_failure(void);
/* A connection was closed or refused: its address failed too often. */
void metrics_auth_blocked(void);
/* A version 1 request (the key in clear) came. */
void metrics_plain_request(void);
/* A CHANGES page carried n changes. */
void metrics_changes_sent(int64_t n);
/* A pipe on the request socket came (+1) or went (-1). */
void metrics_agents_delta(int d);

/*
 * metrics_render appends the process metrics in the Prometheus text format
 * (version 0.0.4) to out.
 */
void metrics_render(strbuf *out);

#endif /* HUB_METRICS_H */
