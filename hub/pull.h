/*
 * pull.h: answering a PULL with one page of the change feed (feed.h).
 *
 * The page holds the records of scope 0 (every branch) and of the asking
 * branch with id > cursor, in id order, at most min(max_rows,
 * max_pull_rows) of them and about max_bytes. The jsonb key and row of
 * each record are converted with jansson: integer -> int, real -> float,
 * string -> str, true/false -> bool, null -> nil, object/array -> str of
 * its JSON text; a column missing from the row -> nil. Records of tables
 * no longer configured down are skipped (the cursor still moves past
 * them).
 */
#ifndef HUB_PULL_H
#define HUB_PULL_H

#include <libpq-fe.h>
#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "proto/msg.h"

typedef struct pull_ctx pull_ctx;

/*
 * pull_new returns the state of one worker; conf and cat are borrowed and
 * must outlive it. Aborts on OOM like every xmalloc user.
 */
pull_ctx *pull_new(const hub_config *conf, const catalog *cat);

/* pull_free frees ctx; pull_free(NULL) does nothing. */
void pull_free(pull_ctx *ctx);

/*
 * pull_page reads the page that answers p for branch branch_id into out
 * and records the pull in branch_status, in the row of till till_id (0:
 * the branch's own key); the page is the same for every till of a
 * branch. What out points to is owned by
 * ctx and valid until its next call. Returns PROTO_OK, PROTO_EDB (the
 * connection may be lost), PROTO_EINVAL (a record that is not valid
 * JSON) or PROTO_ENOMEM, with the reason in err.
 */
proto_err pull_page(pull_ctx *ctx, PGconn *conn, int branch_id, int till_id,
    const proto_pull *p, proto_changes *out, char *err, size_t errlen);

#endif /* HUB_PULL_H */
