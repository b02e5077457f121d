/*
 * http.h: the agent's local status listener (nng's HTTP server) on
 * 127.0.0.1:http_port, never on another address:
 *
 *   GET /status    the JSON object of "status --json" (status.h)
 *   GET /metrics   Prometheus text, version 0.0.4 (status.h)
 *
 * Any other path is 404, any other method 405. A request reads the POS
 * file through the listener's own read-only SQLite connection (busy
 * timeout busy_timeout_ms), one request at a time, and the sender's live
 * state (live.h). A failed read answers 500 with the reason as text.
 */
#ifndef AGENT_HTTP_H
#define AGENT_HTTP_H

#include <stddef.h>

#include "config.h"
#include "proto/err.h"

typedef struct agent_http agent_http;

/*
 * agent_http_start opens the read-only connection and starts listening.
 * *out is NULL (and PROTO_OK) when conf->http_port is 0. Errors: PROTO_EDB
 * (the POS file cannot be opened) or PROTO_EIO (cannot listen, e.g. the
 * port is in use), with a message in err. conf must outlive the listener;
 * on PROTO_OK stop it with agent_http_stop.
 */
proto_err agent_http_start(
    const agent_config *conf, agent_http **out, char *err, size_t errlen);

/*
 * agent_http_stop stops listening, waits for requests in progress and
 * frees; agent_http_stop(NULL) does nothing.
 */
void agent_http_stop(agent_http *h);

#endif /* AGENT_HTTP_H */
