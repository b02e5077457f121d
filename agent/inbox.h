/*
 * inbox.h: apply pages of master data (CHANGES) to the POS file.
 *
 * A page is applied in one BEGIN IMMEDIATE transaction together with the
 * new cursor, so a page is applied exactly once and readers see either the
 * old or the new page, never half of it. The guard row in
 * _branchsync_guard is present for the whole transaction, so capture
 * triggers (if a down table also has them) log nothing: master data never
 * goes back up.
 *
 * An upsert writes only the received columns that the POS table has (plus
 * is_synced = 1 when the table has that column), so POS-only columns such
 * as products.stock keep their local values. Received columns the POS
 * table lacks are ignored and logged once per (table, column); changes of
 * tables not configured as down are skipped and logged once per table.
 *
 * Meta rows (in _branchsync_meta): down_cursor (last change applied),
 * last_pull (epoch seconds of the last applied page), and, while a
 * "branchsync-agent reload TABLE" runs, reload_table and reload_cursor.
 */
#ifndef AGENT_INBOX_H
#define AGENT_INBOX_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proto/err.h"
#include "proto/msg.h"

typedef struct inbox inbox;

/* The downstream state kept in _branchsync_meta, plus what a PULL needs. */
typedef struct {
	int64_t down_cursor;    /* last change id applied */
	int64_t last_pull;      /* epoch seconds of the last page; 0 never */
	char reload_table[256]; /* table being reloaded; "" if none */
	int64_t reload_cursor;  /* cursor of that reload */
	char log_id[33];        /* the log's id, for the request header */
	int64_t queue_events;   /* pending upstream events (estimate) */
	char last_error[512];   /* why pulls fail, "" if the last one worked */
} inbox_state;

/*
 * inbox_open checks that every down table of conf exists in db with a key
 * (conf "key" or the declared PRIMARY KEY) and returns an inbox on db.
 * Borrows db and conf, which must outlive it. Errors: PROTO_EINVAL (table
 * missing, no key) or PROTO_EDB with a message in err; on PROTO_OK free
 * *out with inbox_close.
 */
proto_err inbox_open(sqlite3 *db, const agent_config *conf, inbox **out,
    char *err, size_t errlen);

/* inbox_close frees the inbox (not the db); inbox_close(NULL) is a no-op. */
void inbox_close(inbox *ib);

/*
 * inbox_apply applies page in one write transaction with the guard row
 * set. With reload NULL the page's cursor becomes down_cursor; otherwise
 * the page belongs to a reload of table reload: its cursor becomes
 * reload_cursor and, when page->more is false, the reload meta rows are
 * deleted (both only while reload_table still names reload). last_pull is
 * set to now. Errors: PROTO_EDB (a statement failed: a constraint, a busy
 * file) or PROTO_EINVAL (the page's key of a table differs from the local
 * key), with a message in err; then nothing of the page was written.
 */
proto_err inbox_apply(inbox *ib, const proto_changes *page, const char *reload,
    char *err, size_t errlen);

/*
 * inbox_state_read fills st from _branchsync_meta and the log in one read.
 * Missing rows read as 0 / "". Returns PROTO_OK or PROTO_EDB.
 */
proto_err inbox_state_read(
    sqlite3 *db, inbox_state *st, char *err, size_t errlen);

/*
 * inbox_note_error records in _branchsync_meta (down_last_error) why the
 * pulls fail, or "" once one works again, for "status" to show. Its own
 * short write; call it when the reason changes, not per attempt.
 */
proto_err inbox_note_error(
    sqlite3 *db, const char *why, char *err, size_t errlen);

/*
 * inbox_reload_request stores reload_table = table and reload_cursor = 0
 * (replacing a reload in progress), in one write transaction. The running
 * agent picks it up. Returns PROTO_OK or PROTO_EDB.
 */
proto_err inbox_reload_request(
    sqlite3 *db, const char *table, char *err, size_t errlen);

#endif /* AGENT_INBOX_H */
