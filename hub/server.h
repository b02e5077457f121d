/*
 * server.h: the hub's request loop.
 *
 * One nng rep0 socket listens on every configured URL. N worker threads
 * each own an nng context, an aio and a PostgreSQL connection, so N
 * requests (from different branches) are applied in parallel while each
 * reply still goes back to the right requester. A worker receives with a
 * 500 ms timeout so it notices a stop request, finishes the request in flight,
 * replies and exits.
 *
 *   HELLO -> authenticate -> WELCOME(watermark, tag)
 *   PUSH  -> authenticate -> apply -> ACK
 *   PULL  -> authenticate -> one page of the change feed -> CHANGES
 *   other -> ERROR(PROTO_EPROTO)
 *
 * With "publish" set, a nudge thread (nudge.h) runs beside the workers.
 *
 * Every failure is answered with an ERROR; nothing a peer sends can stop
 * a worker.
 */
#ifndef HUB_SERVER_H
#define HUB_SERVER_H

#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "proto/err.h"

/*
 * server_run listens, starts the workers, tells systemd READY=1 and
 * serves until a stop is requested (plat_stop_requested); then it waits for
 * the workers, closes the socket and tells systemd STOPPING=1. conf and cat
 * are borrowed. Returns PROTO_OK after a clean stop, or PROTO_EIO (could not
 * open the socket or listen on a URL) with the reason in err.
 */
proto_err server_run(
    const hub_config *conf, const catalog *cat, char *err, size_t errlen);

#endif /* HUB_SERVER_H */
