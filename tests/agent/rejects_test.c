/*
 * rejects_test.c: rejects, retries, stall and outbox warnings of the agent
 * (agent/rejects.c, agent/outbox.c, agent/capture.c) against real SQLite
 * files.
 *
 * Each case gets a fresh POS file with capture installed, makes POS writes,
 * lets a first batch be rejected in part, then retries or discards the
 * rejects the way "branchsync-agent rejects" and a WELCOME do. The stall
 * and outbox warning decisions are tested as pure functions. Cases are
 * named after the failure they exercise.
 */
#include <time.h>

#include "outbox_fixture.h"
#include "rejects.h"

static bool
read_batch(bool retry)
{
	proto_err rv;

	proto_arena_reset(arena);
	memset(&push, 0, sizeof push);
	rv = retry
	    ? rejects_read(ob, 100, 1 << 20, arena, &push, err, sizeof err)
	    : outbox_read(ob, 0, 100, 1 << 20, arena, &push, err, sizeof err);
	if (rv != PROTO_OK) {
		fprintf(stderr, "read: %s\n", err);
		return false;
	}
	return true;
}

/*
 * Three sales, ids 1..3 at seqs 1..3; the hub rejects the ones in bad
 * (seq numbers, 0-terminated) and acks up to seq 3: seq 3 is the marker.
 */
static bool
rejected_sales(const int64_t *bad)
{
	proto_outcome outs[3];
	size_t n = 0;

	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (2, 1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (3, 1);"));
	CHECK(read_batch(false));
	CHECK(push.nevents == 3 && push.events[2].seq == 3);
	for (; bad[n] != 0; n++)
		outs[n] = (proto_outcome) {bad[n], PROTO_OUT_REJECTED, "bad"};
	CHECK(ack_compact(3, &push, outs, n));
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE err = 'bad'")
	    == (int64_t) n);
	return true;
}

static bool
test_ts_not_written(void)
{
	int64_t now = (int64_t) time(NULL);
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "UPDATE transactions SET id = 2 WHERE id = 1;"
	           "DELETE FROM transactions;"
	           "INSERT INTO payments VALUES (1, 1, 'cash', 5, 0)"));
	/* insert, delete of the old key + update, delete, insert */
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 5);
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE ts IS NULL")
	    == 0);
	CHECK(qint("SELECT min(ts) FROM _branchsync_log") >= now - 1);
	CHECK(qint("SELECT max(ts) FROM _branchsync_log") <= now + 2);
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE retry IS NOT "
	           "NULL")
	    == 0);
	return true;
}

static bool
test_old_log_not_upgraded(void)
{
	capture_result res;
	/* A log as the first release created it, with one old entry. */
	CHECK(exec("CREATE TABLE _branchsync_log(seq INTEGER PRIMARY KEY, "
	           "tbl TEXT NOT NULL, op INTEGER NOT NULL, k NOT NULL, "
	           "tag INTEGER NOT NULL, err TEXT);"
	           "INSERT INTO _branchsync_log VALUES (1, 'transactions', 1, "
	           "7, 42, NULL)"));
	CHECK_OK(capture_install(db, &conf, false, &res, err, sizeof err));
	CHECK_OK(capture_install(db, &conf, false, &res, err, sizeof err));
	CHECK(res.created == 0 && res.dropped == 0);
	CHECK_STR(query("SELECT group_concat(name) FROM "
	                "pragma_table_info('_branchsync_log')"),
	    "seq,tbl,op,k,tag,err,retry,ts,r");
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (7, 1)"));
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE ts IS NULL")
	    == 1);
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE ts > 0") == 1);
	/* The old entry has no ts: pending, of unknown age. */
	CHECK_OK(outbox_open(&conf, &ob, err, sizeof err));
	outbox_counts c;
	CHECK_OK(outbox_stats(ob, true, &c, err, sizeof err));
	CHECK(c.pending == 2 && c.oldest_ts == 0 && c.last_ack == 0);
	return true;
}

static bool
test_old_log_runs(void)
{
	capture_result res;
	CHECK_OK(capture_install(db, &conf, false, &res, err, sizeof err));
	/* An older agent's log: run must ask for init, not fail on SQL. */
	CHECK(exec("ALTER TABLE _branchsync_log DROP COLUMN ts"));
	CHECK(outbox_open(&conf, &ob, err, sizeof err) == PROTO_EINVAL);
	CHECK(strstr(err, "init") != NULL);
	return true;
}

static bool
test_list_wrong(void)
{
	static const int64_t bad[] = {1, 3, 0};
	rejects_entry *r;
	size_t n;
	CHECK(rejected_sales(bad));
	CHECK(exec("INSERT INTO payments VALUES (4, 2, 'card', 5, 0);"
	           "UPDATE _branchsync_log SET err = 'x' WHERE seq = 4"));
	CHECK_OK(rejects_list(ob, &r, &n, err, sizeof err));
	bool ok = n == 3 && r[0].seq == 1
	    && !strcmp(r[0].table, "transactions") && r[0].op == 1
	    && !strcmp(r[0].key, "[1]") && !strcmp(r[0].reason, "bad")
	    && !r[0].retry && r[0].ts > 0 && r[1].seq == 3
	    && !strcmp(r[2].key, "[4,2]") && !strcmp(r[2].table, "payments");
	rejects_list_free(r, n);
	CHECK(ok);
	return true;
}

static bool
test_retry_marker_lost(void)
{
	static const int64_t bad[] = {1, 3, 0};
	int64_t changed, one = 1, three = 3, nine = 9;
	CHECK(rejected_sales(bad));
	/* An unknown seq: an error, and nothing changes. */
	int64_t both[] = {1, 9};
	CHECK(rejects_retry(
	          outbox_db(ob), both, 2, true, &changed, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK(strstr(err, "9") != NULL && changed == 0);
	CHECK(
	    qint("SELECT count(*) FROM _branchsync_log WHERE retry = 1") == 0);
	/* Not strict (a WELCOME's list): unknown seqs are skipped. */
	CHECK_OK(rejects_retry(
	    outbox_db(ob), &nine, 1, false, &changed, err, sizeof err));
	CHECK(changed == 0);
	CHECK_OK(rejects_retry(
	    outbox_db(ob), &one, 1, true, &changed, err, sizeof err));
	CHECK(changed == 1);
	CHECK_OK(rejects_retry(
	    outbox_db(ob), &three, 1, true, &changed, err, sizeof err));
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE retry = 1 AND "
	           "err IS NULL")
	    == 2);
	/* Retry entries are not normal pending events. */
	CHECK(read_batch(false));
	CHECK(push.nevents == 0);
	bool yes;
	CHECK_OK(rejects_waiting(ob, &yes, err, sizeof err));
	CHECK(yes);
	CHECK(read_batch(true));
	CHECK(push.nevents == 2 && push.events[0].seq == 1
	    && push.events[1].seq == 3);
	/* Applied now: deleted and synced; the marker only loses retry. */
	CHECK_OK(rejects_ack(ob, &push, 0, NULL, 0, err, sizeof err));
	CHECK_STR(query("SELECT group_concat(seq || ':' || quote(err) || ':' "
	                "|| quote(retry)) FROM _branchsync_log"),
	    "3:NULL:NULL");
	CHECK(qint("SELECT count(*) FROM transactions WHERE is_synced = 1")
	    == 3);
	CHECK(qint("SELECT value FROM _branchsync_meta WHERE name = "
	           "'acked_seq'")
	    == 3);
	CHECK(qint("SELECT value FROM _branchsync_meta WHERE name = "
	           "'last_ack'")
	    >= (int64_t) time(NULL) - 2);
	CHECK_OK(rejects_waiting(ob, &yes, err, sizeof err));
	CHECK(!yes);
	CHECK(read_batch(true));
	CHECK(push.nevents == 0);
	/* The next POS write still gets a new seq. */
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (4, 1)"));
	CHECK(qint("SELECT max(seq) FROM _branchsync_log") == 4);
	return true;
}

static bool
test_retry_rejected_again_lost(void)
{
	static const int64_t bad[] = {1, 2, 0};
	proto_outcome again = {2, PROTO_OUT_REJECTED, "still bad"};
	int64_t changed;
	CHECK(rejected_sales(bad));
	CHECK_OK(rejects_retry(
	    outbox_db(ob), NULL, 0, true, &changed, err, sizeof err));
	CHECK(changed == 2);
	/* A row changed since the reject: the retry sends the new value. */
	CHECK(exec("UPDATE transactions SET total_cost = 5 WHERE id = 1"));
	CHECK(read_batch(true));
	CHECK(push.nevents == 2 && push.events[0].vals[2].u.i == 5);
	CHECK_OK(rejects_ack(ob, &push, 0, &again, 1, err, sizeof err));
	CHECK_STR(query("SELECT group_concat(seq || ':' || quote(err) || ':' "
	                "|| quote(retry)) FROM _branchsync_log"),
	    "2:'still bad':NULL,3:NULL:NULL,4:NULL:NULL");
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 1") == 1);
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 2") == 0);
	/* The update's own entry (seq 4) is still pending normally. */
	CHECK(read_batch(false));
	CHECK(push.nevents == 1 && push.events[0].seq == 4);
	return true;
}

static bool
test_retry_duplicate_kept(void)
{
	static const int64_t bad[] = {1, 2, 0};
	int64_t changed;
	CHECK(rejected_sales(bad));
	CHECK_OK(rejects_retry(
	    outbox_db(ob), NULL, 0, true, &changed, err, sizeof err));
	CHECK(read_batch(true));
	CHECK(push.nevents == 2);
	/* The hub had resolved or discarded both: duplicates, no marking. */
	CHECK_OK(rejects_ack(ob, &push, 2, NULL, 0, err, sizeof err));
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 1);
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 1") == 0);
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 2") == 0);
	return true;
}

static bool
test_retry_moves_watermark(void)
{
	static const int64_t bad[] = {2, 0};
	int64_t changed;
	CHECK(rejected_sales(bad));
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (4, 1)"));
	CHECK_OK(rejects_retry(
	    outbox_db(ob), NULL, 0, true, &changed, err, sizeof err));
	CHECK(read_batch(true));
	CHECK(push.nevents == 1 && push.events[0].seq == 2);
	CHECK_OK(rejects_ack(ob, &push, 0, NULL, 0, err, sizeof err));
	outbox_counts c;
	CHECK_OK(outbox_stats(ob, true, &c, err, sizeof err));
	CHECK(c.acked_seq == 3 && c.pending == 1 && c.rejected == 0);
	CHECK(read_batch(false));
	CHECK(push.nevents == 1 && push.events[0].seq == 4);
	/* A normal ack's cleanup keeps an entry that waits for retry. */
	CHECK(exec("UPDATE _branchsync_log SET retry = 1 WHERE seq = 3"));
	CHECK_OK(outbox_ack(ob, 4, &push, 0, NULL, 0, err, sizeof err));
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE seq = 3") == 1);
	return true;
}

static bool
test_discard_marker_lost(void)
{
	static const int64_t bad[] = {1, 3, 0};
	int64_t changed, one = 1, three = 3;
	CHECK(rejected_sales(bad));
	CHECK_OK(rejects_discard(
	    outbox_db(ob), &one, 1, true, &changed, err, sizeof err));
	CHECK(changed == 1);
	CHECK_OK(rejects_discard(
	    outbox_db(ob), &three, 1, true, &changed, err, sizeof err));
	CHECK(changed == 1);
	CHECK_STR(query("SELECT group_concat(seq || ':' || quote(err)) FROM "
	                "_branchsync_log"),
	    "3:NULL");
	/* Discarding again: no longer a reject. */
	CHECK(rejects_discard(
	          outbox_db(ob), &three, 1, true, &changed, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK(qint("SELECT count(*) FROM transactions WHERE is_synced = 0")
	    == 2);
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (4, 1)"));
	CHECK(qint("SELECT max(seq) FROM _branchsync_log") == 4);
	return true;
}

static bool
test_discard_all_lost(void)
{
	static const int64_t bad[] = {1, 2, 3, 0};
	int64_t changed, two = 2;
	CHECK(rejected_sales(bad));
	/* One in retry state is discarded as well. */
	CHECK_OK(rejects_retry(
	    outbox_db(ob), &two, 1, true, &changed, err, sizeof err));
	CHECK_OK(rejects_discard(
	    outbox_db(ob), NULL, 0, true, &changed, err, sizeof err));
	CHECK(changed == 3);
	CHECK_STR(query("SELECT group_concat(seq || ':' || quote(err) || ':' "
	                "|| quote(retry)) FROM _branchsync_log"),
	    "3:NULL:NULL");
	return true;
}

static bool
test_unsent_entry_retried_twice(void)
{
	int64_t changed;
	CHECK(open_ob());
	/* Set aside above acked_seq (unknown table): never acknowledged. */
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "UPDATE _branchsync_log SET err = 'x' WHERE seq = 1"));
	CHECK_OK(rejects_retry(
	    outbox_db(ob), NULL, 0, true, &changed, err, sizeof err));
	CHECK(changed == 1);
	/* Pending again, not a retry: sent once, with the normal batch. */
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE retry IS NULL "
	           "AND err IS NULL")
	    == 1);
	CHECK(read_batch(true));
	CHECK(push.nevents == 0);
	CHECK(read_batch(false));
	CHECK(push.nevents == 1);
	return true;
}

static bool
test_welcome_lists_ignored(void)
{
	static const int64_t bad[] = {1, 2, 0};
	int64_t retry[] = {1, 3, 7}, discard[] = {2, 5}, nr, nd;
	proto_welcome w = {0};
	CHECK(rejected_sales(bad));
	w.nretry = 3;
	w.retry = retry;
	w.ndiscard = 2;
	w.discard = discard;
	/* Seq 3 is no reject, 5 and 7 do not exist: skipped. */
	CHECK_OK(rejects_welcome(ob, &w, &nr, &nd, err, sizeof err));
	CHECK(nr == 1 && nd == 1);
	CHECK_STR(query("SELECT group_concat(seq || ':' || quote(err) || ':' "
	                "|| quote(retry)) FROM _branchsync_log"),
	    "1:NULL:1,3:NULL:NULL");
	/* The same WELCOME again (a heartbeat): nothing changes. */
	CHECK_OK(rejects_welcome(ob, &w, &nr, &nd, err, sizeof err));
	CHECK(nr == 0 && nd == 0);
	return true;
}

static bool
test_stall_decided_wrong(void)
{
	const int64_t m = 300000;
	/* Nothing pending: never stalled. */
	CHECK(outbox_stall_since(0, 10 * m, 1, 1, 1, m) == 0);
	/* Pending, last ack long ago, oldest event long ago. */
	CHECK(outbox_stall_since(5, 10 * m, 2 * m, m, 0, m) == 2 * m);
	/* Just under the limit. */
	CHECK(outbox_stall_since(5, 3 * m - 1, 2 * m, m, 0, m) == 0);
	CHECK(outbox_stall_since(5, 3 * m, 2 * m, m, 0, m) == 2 * m);
	/* Idle for long, then a write: counts from the write. */
	CHECK(outbox_stall_since(5, 10 * m, m, 10 * m - 1000, 0, m) == 0);
	/* Acks keep flowing under a backlog: not stalled. */
	CHECK(outbox_stall_since(5, 10 * m, 10 * m - 5, m, 0, m) == 0);
	/* The agent started recently. */
	CHECK(outbox_stall_since(5, 10 * m, m, m, 9 * m + 1, m) == 0);
	CHECK(outbox_stall_since(5, 10 * m, m, m, 9 * m, m) == 9 * m);
	/* Nothing known at all: no claim. */
	CHECK(outbox_stall_since(5, 10 * m, 0, 0, 0, m) == 0);
	/* Never acked, old write of known time. */
	CHECK(outbox_stall_since(5, 10 * m, 0, m, 0, m) == m);
	return true;
}

static bool
test_outbox_warning_wrong(void)
{
	CHECK(outbox_warn_decide(0, 1000000, 10, 60) == 0);
	CHECK(outbox_warn_decide(9, 59, 10, 60) == 0);
	CHECK(outbox_warn_decide(10, 59, 10, 60) == OUTBOX_WARN_EVENTS);
	CHECK(outbox_warn_decide(9, 60, 10, 60) == OUTBOX_WARN_AGE);
	CHECK(outbox_warn_decide(10, 60, 10, 60)
	    == (OUTBOX_WARN_EVENTS | OUTBOX_WARN_AGE));
	/* Unknown age warns only by count. */
	CHECK(outbox_warn_decide(9, -1, 10, 60) == 0);
	CHECK(outbox_warn_decide(11, -1, 10, 60) == OUTBOX_WARN_EVENTS);
	return true;
}

static bool
test_stats_age_wrong(void)
{
	outbox_counts c;
	CHECK(open_ob());
	CHECK_OK(outbox_stats(ob, false, &c, err, sizeof err));
	CHECK(c.pending == 0 && c.oldest_ts == 0);
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (2, 1);"
	           "UPDATE _branchsync_log SET ts = 1000 WHERE seq = 1;"
	           "UPDATE _branchsync_log SET ts = 2000 WHERE seq = 2"));
	CHECK_OK(outbox_stats(ob, false, &c, err, sizeof err));
	CHECK(c.pending == 2 && c.oldest_ts == 1000);
	CHECK(read_batch(false));
	push.nevents = 1;
	CHECK_OK(outbox_ack(ob, 1, &push, 0, NULL, 0, err, sizeof err));
	CHECK_OK(outbox_stats(ob, true, &c, err, sizeof err));
	CHECK(c.pending == 1 && c.oldest_ts == 2000);
	CHECK(c.last_ack >= (int64_t) time(NULL) - 2);
	return true;
}

static const agent_test_case cases[] = {
    {"ts not written by the trigger", test_ts_not_written},
    {"old log not upgraded by init", test_old_log_not_upgraded},
    {"old log runs without init", test_old_log_runs},
    {"rejects list wrong", test_list_wrong},
    {"retry of the marker row lost", test_retry_marker_lost},
    {"retry rejected again lost", test_retry_rejected_again_lost},
    {"retry duplicate kept", test_retry_duplicate_kept},
    {"retry moves the watermark", test_retry_moves_watermark},
    {"discard of the marker row lost", test_discard_marker_lost},
    {"discard all lost", test_discard_all_lost},
    {"unsent entry retried twice", test_unsent_entry_retried_twice},
    {"welcome lists ignored", test_welcome_lists_ignored},
    {"stall decided wrong", test_stall_decided_wrong},
    {"outbox warning wrong", test_outbox_warning_wrong},
    {"stats age wrong", test_stats_age_wrong},
};

int
main(void)
{
	return agent_test_main(
	    "rejects_test", LOG_LVL_ERROR, cases, ARRAY_LEN(cases), close_ob);
}
