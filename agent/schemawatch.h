/*
 * schemawatch.h: follow the POS's schema while the agent runs.
 *
 * A POS upgrade may rebuild a table (create a new one, copy the rows, drop
 * the old one, rename), which drops the capture triggers with the old
 * table. The running agent looks at PRAGMA schema_version every poll_ms
 * (schemawatch_changed, one header read) and on a change refits: every up
 * table is described again; a table that no longer fits (gone, key column
 * gone) is refused loudly (AGENT-TABLE-UNFIT) and its triggers dropped,
 * while the others keep being captured; the triggers of the tables that
 * fit are reinstalled where they differ (AGENT-TRIGGERS-REINSTALLED).
 *
 * A table whose triggers were missing lost the writes made meanwhile. With
 * an is_synced column they are found again: the table is marked "sweep"
 * in _branchsync_meta before the triggers come back, and schemawatch_sweep
 * queues its rows with is_synced 0 or NULL (sweep.h), then clears the
 * mark. Without is_synced nothing tells which rows changed: the table is
 * marked "unchecked" (AGENT-TABLE-UNCHECKED, shown by status) until
 * "init --initial-load" sends all its rows again. The marks outlive a
 * crash, so an interrupted sweep is finished at the next start.
 *
 * Entries set aside while a table did not fit (OUTBOX_UNKNOWN_TABLE) are
 * queued again as new entries once it fits (AGENT-REQUEUED).
 */
#ifndef AGENT_SCHEMAWATCH_H
#define AGENT_SCHEMAWATCH_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "proto/err.h"

typedef struct schemawatch schemawatch;

/* schemawatch_new starts watching for conf (borrowed; must outlive it). */
schemawatch *schemawatch_new(const agent_config *conf);

/* schemawatch_free frees sw; schemawatch_free(NULL) does nothing. */
void schemawatch_free(schemawatch *sw);

/*
 * schemawatch_changed reports whether db's schema_version differs from
 * the one seen at the previous call or refit (true on errors, and before
 * the first refit).
 */
bool schemawatch_changed(schemawatch *sw, sqlite3 *db);

/*
 * schemawatch_refit checks every up table against db's catalog, logs what
 * changed, sets the marks and reinstalls the triggers of the tables that
 * fit (capture_install without the others), as described above. Between
 * batches only: the caller then reopens its outbox, whose table layouts
 * may be out of date. Returns PROTO_OK, or PROTO_EDB / PROTO_EINVAL with
 * a message in err.
 */
proto_err schemawatch_refit(
    schemawatch *sw, sqlite3 *db, char *err, size_t errlen);

/*
 * schemawatch_sweep sweeps every table marked "sweep" that fits (sweep.h,
 * SWEEP_UNSYNCED), logs AGENT-SWEEP with what it queued and clears the
 * mark. *queued (may be NULL) counts the rows queued. PROTO_OK or an
 * error with a message in err (the marks of tables not done stay).
 */
proto_err schemawatch_sweep(
    schemawatch *sw, sqlite3 *db, int64_t *queued, char *err, size_t errlen);

#endif /* AGENT_SCHEMAWATCH_H */
