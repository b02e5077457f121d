/*
 * http.h: the hub's operator listener (nng's HTTP server), on its own
 * address ("http_listen"), apart from the agents' port:
 *
 *   GET /               the web page (self-contained, no external URL)
 *   GET /metrics        Prometheus text: per branch, from PostgreSQL,
 *                       and this process's counters (metrics.h)
 *   GET /api/status     JSON: thresholds and every branch (overview.h)
 *   GET /api/history    JSON: backlog per branch over the last hour
 *   GET /api/rejects    JSON: open rejects, ?branch=CODE optional
 *   GET /api/conflicts  JSON: open conflicts, ?branch=CODE optional
 *
 * It has its own PostgreSQL connection, which it shares with the backlog
 * sampler it starts and stops (sampler.h).
 */
#ifndef HUB_HTTP_H
#define HUB_HTTP_H

#include <stddef.h>

#include "config.h"
#include "proto/err.h"

typedef struct hub_http hub_http;

/*
 * hub_http_start starts the listener; *out is NULL (and PROTO_OK) when
 * http_listen is empty. PROTO_EIO with a reason when it cannot listen.
 */
proto_err hub_http_start(
    const hub_config *conf, hub_http **out, char *err, size_t errlen);
/* hub_http_stop stops and frees; NULL does nothing. */
void hub_http_stop(hub_http *h);

#endif /* HUB_HTTP_H */
