/*
 * admin.h: the operator's commands on branches, rejects and conflicts.
 *
 *   branch list        every branch with its key's age and overlap
 *
 *   rejects list       open and retry rejects (all with --all)
 *   rejects retry      state -> 'retry': the agent learns it in WELCOME
 *                      and sends the event again; the hub applies it once
 *   rejects discard    state -> 'discarded' with resolved_at, resolved_by:
 *                      the agent drops the entry
 *   conflicts list     unresolved conflicts (all with --all)
 *   conflicts resolve  keep_server | keep_local | merge, applied to the
 *                      target table in the transaction that records the
 *                      resolution, resolved_at and resolved_by
 *
 * Each function runs in its own transaction. PROTO_EINVAL with a reason
 * in err for an operator's mistake (unknown id or branch, already
 * resolved), PROTO_EDB for a database error.
 */
#ifndef HUB_ADMIN_H
#define HUB_ADMIN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "catalog.h"
#include "proto/err.h"

/*
 * admin_branch_list prints one line per branch: code, enabled, created,
 * when its key last changed and until when its previous key is valid.
 */
proto_err admin_branch_list(PGconn *conn, FILE *out, char *err, size_t errlen);

/*
 * admin_till_list prints one line per till of branch (NULL: of every
 * branch): branch, till, id (the value of an integer till_column),
 * enabled, created, key changed, previous key valid until.
 */
proto_err admin_till_list(
    PGconn *conn, const char *branch, FILE *out, char *err, size_t errlen);

/*
 * admin_rejects_list prints one line per reject of branch (NULL: every
 * branch), open and retry ones only unless all, newest first (lists.h).
 */
proto_err admin_rejects_list(PGconn *conn, const char *branch, bool all,
    FILE *out, char *err, size_t errlen);

/*
 * admin_rejects_set marks rejects for retry (discard false) or discards
 * them, resolved_by = by. Either the nids ids (all must exist and be open
 * or retry, else nothing changes) or every open (and, to discard, retry)
 * reject of branch. *count receives the rejects changed.
 */
proto_err admin_rejects_set(PGconn *conn, bool discard, char *const *ids,
    int nids, const char *branch, const char *by, int64_t *count, char *err,
    size_t errlen);

/*
 * admin_conflicts_list prints one line per conflict of branch (NULL:
 * every branch), unresolved ones only unless all, newest first
 * (lists.h).
 */
proto_err admin_conflicts_list(PGconn *conn, const char *branch, bool all,
    FILE *out, char *err, size_t errlen);

/*
 * admin_conflict_resolve resolves conflict id with how ("keep_server",
 * "keep_local" or "merge"), recorded as done by by. keep_local and merge
 * write the target table of cat named by the conflict's table.
 */
proto_err admin_conflict_resolve(PGconn *conn, const catalog *cat,
    const char *id, const char *how, const char *by, char *err, size_t errlen);

#endif /* HUB_ADMIN_H */
