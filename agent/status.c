/*
 * status.c: collect the agent's status once, render it as text, JSON and
 * Prometheus text. See status.h for the figures and their meaning.
 */
#include "status.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "db.h"
#include "log.h"
#include "sweep.h"
#include "util.h"

/* The log's counts in one scan, for acked_seq ?1. */
static const char counts_sql[]
    = "SELECT coalesce(max(seq), 0), "
      "coalesce(sum(seq > ?1 AND err IS NULL), 0), "
      "coalesce(sum(err IS NOT NULL), 0), "
      "coalesce(sum(retry = 1 AND err IS NULL), 0), "
      "(SELECT coalesce(ts, 0) FROM _branchsync_log WHERE seq > ?1 AND err "
      "IS NULL ORDER BY seq LIMIT 1) FROM _branchsync_log";

/* One meta row into st. */
static void
meta_row(agent_status *st, const char *name, sqlite3_stmt *q)
{
	const char *text = (const char *) sqlite3_column_text(q, 1);

	if (!strcmp(name, "acked_seq"))
		st->c.acked_seq = sqlite3_column_int64(q, 1);
	else if (!strcmp(name, "acked_tag"))
		st->c.acked_tag = sqlite3_column_int64(q, 1);
	else if (!strcmp(name, "last_ack"))
		st->c.last_ack = sqlite3_column_int64(q, 1);
	else if (!strcmp(name, "hub_state_since"))
		st->hub_since = sqlite3_column_int64(q, 1);
	else if (text == NULL)
		return;
	else if (!strcmp(name, "log_id"))
		snprintf(st->log_id, sizeof st->log_id, "%s", text);
	else if (!strcmp(name, "hub_state"))
		st->hub = !strcmp(text, "up") ? LIVE_HUB_UP
		    : !strcmp(text, "down")   ? LIVE_HUB_DOWN
		                              : LIVE_HUB_UNKNOWN;
	else if (!strcmp(name, "hub_last_error"))
		snprintf(st->last_error, sizeof st->last_error, "%s", text);
}

static proto_err
read_meta(sqlite3 *db, agent_status *st, char *err, size_t errlen)
{
	sqlite3_stmt *q;
	proto_err rv;
	int rc;

	if ((rv = db_prepare(db,
	         "SELECT name, value FROM _branchsync_meta WHERE name IN "
	         "('acked_seq', 'acked_tag', 'last_ack', 'log_id', "
	         "'hub_state', 'hub_state_since', 'hub_last_error')",
	         &q, err, errlen))
	    != PROTO_OK)
		return rv;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		meta_row(st, (const char *) sqlite3_column_text(q, 0), q);
	if (rc != SQLITE_DONE)
		rv = db_fail(
		    db, "could not read _branchsync_meta", err, errlen);
	sqlite3_finalize(q);
	if (rv == PROTO_OK && st->hub == LIVE_HUB_UNKNOWN)
		st->hub_since = 0;
	return rv;
}

static proto_err
read_counts(sqlite3 *db, agent_status *st, char *err, size_t errlen)
{
	sqlite3_stmt *q;
	proto_err rv;

	if ((rv = db_prepare(db, counts_sql, &q, err, errlen)) != PROTO_OK)
		return rv;
	sqlite3_bind_int64(q, 1, st->c.acked_seq);
	if (sqlite3_step(q) == SQLITE_ROW) {
		st->c.high_seq = sqlite3_column_int64(q, 0);
		st->c.pending = sqlite3_column_int64(q, 1);
		st->c.rejected = sqlite3_column_int64(q, 2);
		st->c.retry = sqlite3_column_int64(q, 3);
		st->c.oldest_ts = sqlite3_column_int64(q, 4);
	} else
		rv = db_fail(
		    db, "could not count _branchsync_log", err, errlen);
	sqlite3_finalize(q);
	return rv;
}

/* Up tables that cannot be captured now, and tables needing a check. */
static proto_err
read_tables(sqlite3 *db, const agent_config *conf, agent_status *st, char *err,
    size_t errlen)
{
	char why[256], **names;
	size_t n;
	proto_err rv;

	for (size_t i = 0; i < conf->ntables; i++) {
		capture_table t;
		int k = st->nunfit;
		if (conf->tables[i].down)
			continue;
		rv = capture_describe(
		    db, &conf->tables[i], &t, why, sizeof why);
		if (rv == PROTO_OK) {
			capture_table_fini(&t);
			continue;
		}
		if (rv != PROTO_EINVAL) {
			snprintf(err, errlen, "%s", why);
			return rv;
		}
		if (st->nunfit++ >= STATUS_MAX_TABLES)
			continue;
		snprintf(st->unfit[k], sizeof st->unfit[k], "%s",
		    conf->tables[i].name);
		snprintf(st->unfit_why[k], sizeof st->unfit_why[k], "%s", why);
	}
	if ((rv = sweep_marks(db, "unchecked", &names, &n, err, errlen))
	    != PROTO_OK)
		return rv;
	st->nunchecked = (int) n;
	for (size_t i = 0; i < n && i < STATUS_MAX_TABLES; i++)
		snprintf(
		    st->unchecked[i], sizeof st->unchecked[i], "%s", names[i]);
	sweep_marks_free(names, n);
	return PROTO_OK;
}

/* What the counts mean: age, stall, outbox warning (as the sender). */
static void
derive(const agent_config *conf, agent_status *st)
{
	const outbox_counts *c = &st->c;

	st->age_s = -1;
	if (c->pending > 0 && c->oldest_ts > 0)
		st->age_s
		    = st->now > c->oldest_ts ? st->now - c->oldest_ts : 0;
	st->stall = outbox_stall_since(c->pending, st->now * 1000,
	                c->last_ack * 1000, c->oldest_ts * 1000, 0,
	                conf->stall_warning_ms)
	    / 1000;
	st->warn = outbox_warn_decide(c->pending, st->age_s,
	    conf->outbox_warn_events, conf->outbox_warn_age_s);
}

/* The running sender knows better than the meta rows. */
static void
overlay(agent_status *st, const live_state *live)
{
	st->hub = live->hub;
	st->hub_since
	    = live->hub != LIVE_HUB_UNKNOWN ? live->since_ms / 1000 : 0;
	st->hub_contact = live->contact_ms / 1000;
	snprintf(st->last_error, sizeof st->last_error, "%s", live->error);
}

proto_err
status_collect(sqlite3 *db, const agent_config *conf, const live_state *live,
    agent_status *st, char *err, size_t errlen)
{
	int64_t per_event = STATUS_EVENT_BYTES;
	proto_err rv;

	memset(st, 0, sizeof *st);
	st->now = (int64_t) time(NULL);
	/* One read transaction: counts and meta rows agree. */
	if ((rv = db_exec(db, "BEGIN", err, errlen)) != PROTO_OK)
		return rv;
	if ((rv = inbox_state_read(db, &st->d, err, errlen)) == PROTO_OK
	    && (rv = read_meta(db, st, err, errlen)) == PROTO_OK)
		rv = read_counts(db, st, err, errlen);
	if (rv == PROTO_OK)
		rv = read_tables(db, conf, st, err, errlen);
	if (rv == PROTO_OK)
		rv = db_exec(db, "COMMIT", err, errlen);
	db_rollback(db);
	if (rv != PROTO_OK)
		return rv;
	if (live != NULL && live->running) {
		overlay(st, live);
		if (live->bytes_per_event > 0)
			per_event = live->bytes_per_event;
	}
	st->c.queue_bytes = st->c.pending * per_event;
	derive(conf, st);
	return PROTO_OK;
}

/* ---------------------------------------------------------------- JSON */

static void
set_int(json_t *o, const char *k, int64_t v)
{
	json_object_set_new(o, k, json_integer((json_int_t) v));
}

/* v, or null when v <= 0 (never, unknown). */
static void
set_time(json_t *o, const char *k, int64_t v)
{
	json_object_set_new(
	    o, k, v > 0 ? json_integer((json_int_t) v) : json_null());
}

/* A JSON string of s; bytes of invalid UTF-8 (a path, a message) become
 * '?' rather than losing the key. */
static json_t *
str(const char *s)
{
	json_t *v = json_string(s);
	char *t;

	if (v != NULL)
		return v;
	t = xstrdup(s);
	for (char *p = t; *p != '\0'; p++)
		if ((unsigned char) *p >= 0x80)
			*p = '?';
	v = json_string(t);
	free(t);
	return v;
}

/* s, or null when s is "" or NULL. */
static void
set_str(json_t *o, const char *k, const char *s)
{
	json_object_set_new(
	    o, k, s != NULL && s[0] != '\0' ? str(s) : json_null());
}

static void
json_up(json_t *o, const agent_status *st)
{
	const outbox_counts *c = &st->c;

	set_int(o, "acked_seq", c->acked_seq);
	set_int(o, "high_seq", c->high_seq);
	set_int(o, "pending_events", c->pending);
	set_int(o, "queue_bytes", c->queue_bytes);
	set_int(o, "rejected_events", c->rejected);
	set_int(o, "retry_events", c->retry);
	set_time(o, "last_ack", c->last_ack);
	json_object_set_new(o, "oldest_age_s",
	    st->age_s >= 0 ? json_integer(st->age_s) : json_null());
	set_time(o, "stalled_since", st->stall);
	json_object_set_new(o, "outbox_warning", json_boolean(st->warn));
	json_object_set_new(o, "outbox_warning_events",
	    json_boolean(st->warn & OUTBOX_WARN_EVENTS));
	json_object_set_new(
	    o, "outbox_warning_age", json_boolean(st->warn & OUTBOX_WARN_AGE));
}

static void
json_hub(json_t *o, const agent_status *st)
{
	json_object_set_new(o, "hub_reachable",
	    st->hub == LIVE_HUB_UNKNOWN
	        ? json_null()
	        : json_boolean(st->hub == LIVE_HUB_UP));
	set_time(o, "hub_state_since", st->hub_since);
	set_time(o, "hub_last_contact", st->hub_contact);
	set_str(o, "last_error", st->last_error);
}

static void
json_down(json_t *o, const agent_status *st)
{
	set_int(o, "down_cursor", st->d.down_cursor);
	set_time(o, "last_pull", st->d.last_pull);
	set_str(o, "down_last_error", st->d.last_error);
	set_str(o, "reload_table", st->d.reload_table);
	set_int(o, "reload_cursor", st->d.reload_cursor);
}

static void
json_tables(json_t *o, const agent_status *st)
{
	json_t *unfit = json_object(), *unchecked = json_array();

	for (int i = 0; i < st->nunfit && i < STATUS_MAX_TABLES; i++)
		json_object_set_new(
		    unfit, st->unfit[i], str(st->unfit_why[i]));
	for (int i = 0; i < st->nunchecked && i < STATUS_MAX_TABLES; i++)
		json_array_append_new(unchecked, str(st->unchecked[i]));
	json_object_set_new(o, "unfit_tables", unfit);
	json_object_set_new(o, "unchecked_tables", unchecked);
}

json_t *
status_json(const agent_config *conf, const agent_status *st)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	set_str(o, "branch", conf->branch);
	set_str(o, "till", conf->till);
	set_str(o, "database", conf->database);
	json_object_set_new(o, "log_id", str(st->log_id));
	json_object_set_new(o, "version", json_string(AGENT_VERSION));
	json_up(o, st);
	json_hub(o, st);
	json_down(o, st);
	json_tables(o, st);
	return o;
}

char *
status_json_text(const agent_config *conf, const agent_status *st)
{
	json_t *o = status_json(conf, st);
	char *s = o != NULL ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	if (s == NULL) {
		log_error("AGENT-OOM", "out of memory");
		abort();
	}
	return s;
}

/* ---------------------------------------------------------------- text */

/* "label:" padded, then t as a local time or none when t <= 0. */
static void
print_time(FILE *f, const char *label, int64_t t, const char *none)
{
	char buf[64];
	time_t tt = (time_t) t;

	if (t <= 0) {
		cli_printf(f, "%-17s%s\n", label, none);
		return;
	}
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", localtime(&tt));
	cli_printf(f, "%-17s%s\n", label, buf);
}

static void
print_warning(FILE *f, const agent_config *conf, const agent_status *st)
{
	int w = st->warn;

	if (w == 0) {
		cli_printf(f, "outbox_warning:  no\n");
		return;
	}
	cli_printf(f,
	    "outbox_warning:  %s%s%s (thresholds %" PRId64 " events, %" PRId64
	    " s)\n",
	    w & OUTBOX_WARN_EVENTS ? "too many events" : "",
	    w == (OUTBOX_WARN_EVENTS | OUTBOX_WARN_AGE) ? ", " : "",
	    w & OUTBOX_WARN_AGE ? "oldest event too old" : "",
	    conf->outbox_warn_events, conf->outbox_warn_age_s);
}

static void
print_up(FILE *f, const agent_config *conf, const agent_status *st)
{
	const outbox_counts *c = &st->c;

	cli_printf(f, "acked_seq:       %" PRId64 "\n", c->acked_seq);
	cli_printf(f, "high_seq:        %" PRId64 "\n", c->high_seq);
	cli_printf(f, "pending_events:  %" PRId64 "\n", c->pending);
	cli_printf(
	    f, "queue_bytes:     %" PRId64 " (estimate)\n", c->queue_bytes);
	cli_printf(f, "rejected_events: %" PRId64 "\n", c->rejected);
	cli_printf(f, "retry_events:    %" PRId64 "\n", c->retry);
	print_time(f, "last_ack:", c->last_ack, "never");
	if (c->pending == 0)
		cli_printf(f, "oldest_pending:  none\n");
	else if (st->age_s < 0)
		cli_printf(f, "oldest_pending:  unknown age\n");
	else
		cli_printf(
		    f, "oldest_pending:  %" PRId64 " s old\n", st->age_s);
	if (st->stall > 0) {
		char buf[64];
		time_t t = (time_t) st->stall;
		strftime(
		    buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", localtime(&t));
		cli_printf(f,
		    "stalled:         since %s (%" PRId64
		    " events pending, no ACK)\n",
		    buf, c->pending);
	} else
		cli_printf(f, "stalled:         no\n");
	print_warning(f, conf, st);
}

static void
print_hub(FILE *f, const agent_status *st)
{
	char buf[64];
	time_t t = (time_t) st->hub_since;

	if (st->hub == LIVE_HUB_UNKNOWN)
		cli_printf(f, "hub:             unknown\n");
	else if (st->hub_since > 0) {
		strftime(
		    buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", localtime(&t));
		cli_printf(f, "hub:             %s since %s\n",
		    st->hub == LIVE_HUB_UP ? "reachable" : "unreachable", buf);
	} else
		cli_printf(f, "hub:             %s\n",
		    st->hub == LIVE_HUB_UP ? "reachable" : "unreachable");
	cli_printf(f, "last_error:      %s\n",
	    st->last_error[0] != '\0' ? st->last_error : "none");
}

static void
print_down(FILE *f, const agent_status *st)
{
	const inbox_state *d = &st->d;

	cli_printf(f, "down_cursor:     %" PRId64 "\n", d->down_cursor);
	print_time(f, "last_pull:", d->last_pull, "never");
	cli_printf(f, "down_error:      %s\n",
	    d->last_error[0] != '\0' ? d->last_error : "none");
	if (d->reload_table[0] != '\0')
		cli_printf(f,
		    "reload:          \"%s\" in progress, cursor %" PRId64
		    "\n",
		    d->reload_table, d->reload_cursor);
	else
		cli_printf(f, "reload:          none\n");
}

static void
print_tables(FILE *f, const agent_status *st)
{
	if (st->nunfit == 0)
		cli_printf(f, "unfit_tables:    none\n");
	for (int i = 0; i < st->nunfit && i < STATUS_MAX_TABLES; i++)
		cli_printf(f, "unfit_tables:    %s (%s)\n", st->unfit[i],
		    st->unfit_why[i]);
	if (st->nunchecked == 0)
		cli_printf(f, "unchecked:       none\n");
	for (int i = 0; i < st->nunchecked && i < STATUS_MAX_TABLES; i++)
		cli_printf(f,
		    "unchecked:       %s (triggers were missing; run "
		    "\"init --initial-load\")\n",
		    st->unchecked[i]);
}

void
status_print(FILE *f, const agent_config *conf, const agent_status *st)
{
	cli_printf(f, "branch:          %s\n", conf->branch);
	if (conf->till != NULL)
		cli_printf(f, "till:            %s\n", conf->till);
	cli_printf(f, "database:        %s\n", conf->database);
	cli_printf(f, "log_id:          %s\n", st->log_id);
	cli_printf(f, "version:         %s\n", AGENT_VERSION);
	print_up(f, conf, st);
	print_hub(f, st);
	print_down(f, st);
	print_tables(f, st);
}

/* ---------------------------------------------------------- Prometheus */

/* A gauge with its HELP and TYPE lines and one sample for the branch. */
static void
gauge(strbuf *b, const char *name, const char *help, const char *branch,
    int64_t v)
{
	prom_head(b, name, "gauge", help);
	prom_sample_i(b, name, "branch", branch, v);
}

/* The same, without a sample when v <= 0 (never, unknown). */
static void
gauge_time(strbuf *b, const char *name, const char *help, const char *branch,
    int64_t v)
{
	prom_head(b, name, "gauge", help);
	if (v > 0)
		prom_sample_i(b, name, "branch", branch, v);
}

/* name="value" with the format's escapes. */
static void
label(strbuf *b, const char *name, const char *value, bool first)
{
	strbuf_printf(b, "%s%s=\"", first ? "" : ",", name);
	for (const char *s = value; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			strbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			strbuf_put(b, "\\n", 2);
		else
			strbuf_put(b, s, 1);
	}
	strbuf_put(b, "\"", 1);
}

static void
info(strbuf *b, const agent_config *conf, const agent_status *st)
{
	static const char name[] = "branchsync_agent_info";

	prom_head(b, name, "gauge",
	    "Always 1; the labels name the branch, till, version and log "
	    "id.");
	strbuf_printf(b, "%s{", name);
	label(b, "branch", conf->branch, true);
	if (conf->till != NULL)
		label(b, "till", conf->till, false);
	label(b, "version", AGENT_VERSION, false);
	label(b, "log_id", st->log_id, false);
	strbuf_printf(b, "} 1\n");
}

void
status_metrics(strbuf *b, const agent_config *conf, const agent_status *st)
{
	const char *br = conf->branch;
	const outbox_counts *c = &st->c;

	gauge(b, "branchsync_agent_queue_events",
	    "Events captured and waiting to be sent to the hub.", br,
	    c->pending);
	gauge(b, "branchsync_agent_queue_bytes",
	    "Estimated bytes of the events waiting to be sent.", br,
	    c->queue_bytes);
	prom_head(b, "branchsync_agent_oldest_pending_seconds", "gauge",
	    "Age of the oldest event waiting to be sent (0 when none).");
	if (c->pending == 0 || st->age_s >= 0)
		prom_sample_i(b, "branchsync_agent_oldest_pending_seconds",
		    "branch", br, c->pending == 0 ? 0 : st->age_s);
	gauge_time(b, "branchsync_agent_last_ack_timestamp_seconds",
	    "When the hub last acknowledged events (Unix time).", br,
	    c->last_ack);
	prom_head(b, "branchsync_agent_hub_up", "gauge",
	    "1 when the last request got an answer from a hub, 0 when it "
	    "failed with a timeout or connection error.");
	if (st->hub != LIVE_HUB_UNKNOWN)
		prom_sample_i(b, "branchsync_agent_hub_up", "branch", br,
		    st->hub == LIVE_HUB_UP);
	gauge(b, "branchsync_agent_rejected_events",
	    "Events the hub rejected, kept in the local log.", br,
	    c->rejected);
	gauge(b, "branchsync_agent_stalled",
	    "1 when events are pending and no ACK came for stall_warning_ms.",
	    br, st->stall > 0);
	gauge(b, "branchsync_agent_outbox_warning",
	    "1 when the queue is over outbox_warn_events or "
	    "outbox_warn_age_s.",
	    br, st->warn != 0);
	gauge(b, "branchsync_agent_unfit_tables",
	    "Up tables that cannot be captured (gone, key column gone).", br,
	    st->nunfit);
	gauge(b, "branchsync_agent_unchecked_tables",
	    "Up tables without is_synced whose capture triggers were "
	    "missing: they need init --initial-load.",
	    br, st->nunchecked);
	gauge(b, "branchsync_agent_down_cursor",
	    "Id of the last master data change applied.", br,
	    st->d.down_cursor);
	gauge_time(b, "branchsync_agent_last_pull_timestamp_seconds",
	    "When master data was last applied (Unix time).", br,
	    st->d.last_pull);
	info(b, conf, st);
}
