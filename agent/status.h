/*
 * status.h: what "branchsync-agent status" and the HTTP listener show.
 *
 * status_collect reads the POS file in one read transaction (any
 * connection: the CLI's, or the listener's read-only one) and, in the
 * running agent, the sender's live state (live.h). The same figures are
 * then rendered three ways: text for a terminal, JSON (status --json and
 * GET /status: one object, keys below) and Prometheus text (GET /metrics).
 *
 *   key                    JSON type        meaning
 *   branch, database       string           from the configuration
 *   log_id                 string           the current log id
 *   version                string           the agent's version
 *   acked_seq, high_seq    number           last acknowledged / last seq
 *   pending_events         number           events waiting to be sent
 *   queue_bytes            number           their size, estimated
 *   rejected_events        number           entries the hub rejected
 *   retry_events           number           rejects marked for retry
 *   last_ack               epoch s | null   last ACK from the hub
 *   oldest_age_s           number | null    age of the oldest pending
 *   stalled_since          epoch s | null   pending and no ACK since
 *   outbox_warning[_events|_age] bool       over a warning threshold
 *   hub_reachable          bool | null      answered / failed / unknown
 *   hub_state_since        epoch s | null   when hub_reachable took it
 *   hub_last_contact       epoch s | null   last answer (running agent)
 *   last_error             string | null    reason of the last failure
 *   down_cursor            number           last master data change
 *   last_pull              epoch s, 0 never last page of master data
 *   reload_table           string | null    a reload in progress
 *   reload_cursor          number           its cursor
 *   unfit_tables           object           up table -> why it cannot
 *                                           be captured (schemawatch.h)
 *   unchecked_tables       array of string  up tables whose capture
 *                                           triggers were missing and
 *                                           that have no is_synced: they
 *                                           need "init --initial-load"
 *
 * Without live state (the CLI) the hub fields come from the meta rows
 * the running agent writes at each change (see live.h), so they describe
 * the last run; hub_last_contact is then null.
 */
#ifndef AGENT_STATUS_H
#define AGENT_STATUS_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "inbox.h"
#include "live.h"
#include "outbox.h"
#include "prom.h"
#include "proto/err.h"

/*
 * Bytes per pending event assumed for queue_bytes until the sender has
 * measured a batch (the outbox's own starting estimate).
 */
#define STATUS_EVENT_BYTES 64

/* Unfit and unchecked tables listed, at most (more are counted). */
#define STATUS_MAX_TABLES 16

typedef struct {
	int64_t now;          /* epoch s of the collection */
	char log_id[33];      /* current log id, "" before init */
	outbox_counts c;      /* exact counts; queue_bytes estimated */
	inbox_state d;        /* downstream meta rows */
	int64_t age_s;        /* oldest pending event's age, -1 unknown */
	int64_t stall;        /* epoch s the stall began, 0 none */
	int warn;             /* OUTBOX_WARN_* bits */
	live_hub hub;         /* hub reachability */
	int64_t hub_since;    /* epoch s hub took its value, 0 unknown */
	int64_t hub_contact;  /* epoch s of the last answer, 0 unknown */
	char last_error[512]; /* last failure, "" none */
	char unfit[STATUS_MAX_TABLES][64];      /* up tables not capturable */
	char unfit_why[STATUS_MAX_TABLES][256]; /* why, per unfit table */
	int nunfit;                             /* how many (all counted) */
	char unchecked[STATUS_MAX_TABLES][64];  /* tables needing a check */
	int nunchecked;                         /* how many (all counted) */
} agent_status;

/*
 * status_collect fills st from db and, when live is not NULL, from the
 * live state (which then replaces the meta rows' hub fields). Reads only.
 * Returns PROTO_OK or PROTO_EDB with a message in err.
 */
proto_err status_collect(sqlite3 *db, const agent_config *conf,
    const live_state *live, agent_status *st, char *err, size_t errlen);

/*
 * status_json returns the JSON object described above (a new reference:
 * json_decref), or NULL when out of memory.
 */
json_t *status_json(const agent_config *conf, const agent_status *st);

/* status_json_text returns that object as one line of text (free). */
char *status_json_text(const agent_config *conf, const agent_status *st);

/* status_print writes the status for a terminal, one "key: value" line
 * per figure. */
void status_print(FILE *f, const agent_config *conf, const agent_status *st);

/*
 * status_metrics appends the agent's metrics in the Prometheus text format
 * (version 0.0.4) to b; every sample carries the label branch="CODE":
 *
 *   branchsync_agent_queue_events                 gauge
 *   branchsync_agent_queue_bytes                  gauge
 *   branchsync_agent_oldest_pending_seconds       gauge (0 when none
 *                                                 pending; omitted when
 *                                                 the age is unknown)
 *   branchsync_agent_last_ack_timestamp_seconds   gauge (omitted: never)
 *   branchsync_agent_hub_up                       gauge 0/1 (omitted:
 *                                                 unknown)
 *   branchsync_agent_rejected_events              gauge
 *   branchsync_agent_stalled                      gauge 0/1
 *   branchsync_agent_outbox_warning               gauge 0/1
 *   branchsync_agent_unfit_tables                 gauge
 *   branchsync_agent_unchecked_tables             gauge
 *   branchsync_agent_down_cursor                  gauge
 *   branchsync_agent_last_pull_timestamp_seconds  gauge (omitted: never)
 *   branchsync_agent_info{branch,version,log_id}  gauge, always 1
 */
void status_metrics(
    strbuf *b, const agent_config *conf, const agent_status *st);

#endif /* AGENT_STATUS_H */
