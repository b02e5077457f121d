/*
 * outbox_test.c: tests of agent/outbox.c and agent/outbox_state.c
 * against real SQLite files.
 *
 * Each case gets a fresh POS file with capture installed, makes POS writes
 * and then reads batches and processes ACKs the way the sender does. The
 * log identity decision is tested as a pure function too. Cases are named
 * after the failure they exercise.
 */
#include <inttypes.h>

#include "outbox_fixture.h"
#include "platform.h"
#include "rejects.h"

static bool
read_batch(size_t max_events, size_t max_bytes)
{
	proto_arena_reset(arena);
	memset(&push, 0, sizeof push);
	if (outbox_read(
	        ob, 0, max_events, max_bytes, arena, &push, err, sizeof err)
	    != PROTO_OK) {
		fprintf(stderr, "outbox_read: %s\n", err);
		return false;
	}
	return true;
}

static bool
is_int(const proto_value *v, int64_t i)
{
	return v->type == PROTO_INT && v->u.i == i;
}

static bool
test_batch_order_or_values_wrong(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions VALUES (1, 10, 500, "
	           "'2024-01-01 10:00:00', 0);"
	           "INSERT INTO payments VALUES (1, 2, 'card', 500, 0);"
	           "INSERT INTO transactions VALUES (2, 10, 2.5, NULL, 0);"));
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 3 && push.ntables == 2);
	CHECK_STR(push.tables[0].name, "transactions");
	CHECK(push.tables[0].ncols == 4 && push.tables[0].nkey == 1);
	CHECK_STR(push.tables[0].cols[3], "created_at");
	CHECK(push.tables[1].nkey == 2 && push.tables[1].ncols == 4);
	CHECK(push.events[0].seq < push.events[1].seq
	    && push.events[1].seq < push.events[2].seq);
	proto_event *e = &push.events[0];
	CHECK(e->op == PROTO_OP_UPSERT && e->nvals == 4 && e->table == 0);
	CHECK(is_int(&e->vals[0], 1) && is_int(&e->vals[2], 500));
	CHECK(e->vals[3].type == PROTO_STR && e->vals[3].len == 19);
	CHECK_STR(e->vals[3].u.s, "2024-01-01 10:00:00");
	e = &push.events[1];
	CHECK(
	    e->table == 1 && is_int(&e->vals[0], 1) && is_int(&e->vals[1], 2));
	CHECK_STR(e->vals[2].u.s, "card");
	e = &push.events[2];
	CHECK(e->vals[2].type == PROTO_FLOAT && e->vals[2].u.f == 2.5);
	CHECK(e->vals[3].type == PROTO_NIL);
	return true;
}

static bool
test_batch_limits_ignored(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(total_cost) VALUES (1), (2), "
	           "(3), (4);"));
	CHECK(read_batch(2, 1 << 20));
	CHECK(push.nevents == 2);
	CHECK(read_batch(100, 1));
	CHECK(push.nevents == 1);
	return true;
}

static bool
test_deleted_row_sent_as_upsert(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (5, 1);"
	           "INSERT INTO payments VALUES (7, 3, 'cash', 1, 0);"
	           "DELETE FROM transactions; DELETE FROM payments;"));
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 4);
	CHECK(push.events[0].op == PROTO_OP_NONE && push.events[0].nvals == 1
	    && is_int(&push.events[0].vals[0], 5));
	CHECK(push.events[1].op == PROTO_OP_NONE && push.events[1].nvals == 2);
	CHECK(push.events[2].op == PROTO_OP_DELETE
	    && is_int(&push.events[2].vals[0], 5));
	CHECK(push.events[3].op == PROTO_OP_DELETE && push.events[3].nvals == 2
	    && is_int(&push.events[3].vals[0], 7)
	    && is_int(&push.events[3].vals[1], 3));
	return true;
}

static bool
test_ack_marks_newer_change_synced(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (2, 1);"));
	CHECK(read_batch(100, 1 << 20));
	int64_t w = push.events[push.nevents - 1].seq;
	/* Changed after the batch was read: not in PostgreSQL yet. */
	CHECK(exec("UPDATE transactions SET total_cost = 9 WHERE id = 2"));
	CHECK_OK(outbox_ack(ob, w, &push, 0, NULL, 0, err, sizeof err));
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 1") == 1);
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 2") == 0);
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 1 && push.events[0].seq == w + 1);
	CHECK(ack_compact(w + 1, &push, NULL, 0));
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 2") == 1);
	/* The ack's own UPDATE was not captured. */
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 1);
	return true;
}

static bool
test_ack_reuses_seq(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(total_cost) VALUES (1), (2);"));
	CHECK(read_batch(100, 1 << 20));
	int64_t w = push.events[1].seq, tag = push.events[1].tag;
	CHECK(ack_compact(w, &push, NULL, 0));
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 1);
	CHECK(qint("SELECT max(seq) FROM _branchsync_log") == w);
	CHECK(qint("SELECT value FROM _branchsync_meta WHERE name = "
	           "'acked_seq'")
	    == w);
	CHECK(qint("SELECT value FROM _branchsync_meta WHERE name = "
	           "'acked_tag'")
	    == tag);
	CHECK(exec("INSERT INTO transactions(total_cost) VALUES (3)"));
	CHECK(qint("SELECT max(seq) FROM _branchsync_log") == w + 1);
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 1 && push.events[0].seq == w + 1);
	return true;
}

static bool
test_reject_lost(void)
{
	proto_outcome out = {0, PROTO_OUT_REJECTED, "violates check"};
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (2, 1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (3, 1);"));
	CHECK(read_batch(100, 1 << 20));
	out.seq = push.events[0].seq;
	CHECK(ack_compact(push.events[2].seq, &push, &out, 1));
	CHECK_STR(query("SELECT err FROM _branchsync_log WHERE k = 1"),
	    "violates check");
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 1") == 0);
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 2") == 1);
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 2);
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 0);
	return true;
}

static bool
test_later_reject_marks_synced(void)
{
	proto_outcome out = {0, PROTO_OUT_REJECTED, ""};
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "UPDATE transactions SET total_cost = -1;"));
	CHECK(read_batch(100, 1 << 20));
	out.seq = push.events[1].seq;
	CHECK_OK(outbox_ack(ob, out.seq, &push, 0, &out, 1, err, sizeof err));
	CHECK(qint("SELECT is_synced FROM transactions") == 0);
	CHECK_STR(
	    query("SELECT err FROM _branchsync_log WHERE op = 2"), "rejected");
	return true;
}

static bool
test_big_ack_not_chunked(void)
{
	CHECK(open_ob());
	CHECK(
	    exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
	         "FROM n WHERE i < 600) INSERT INTO transactions(total_cost) "
	         "SELECT i FROM n;"));
	CHECK(read_batch(1000, 1 << 24));
	CHECK(push.nevents == 600);
	CHECK(ack_compact(push.events[599].seq, &push, NULL, 0));
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 1);
	CHECK(qint("SELECT count(*) FROM transactions WHERE is_synced = 1")
	    == 600);
	CHECK(qint("SELECT value FROM _branchsync_meta WHERE name = "
	           "'acked_seq'")
	    == push.events[599].seq);
	return true;
}

/*
 * A log entry notes its row's rowid; a rowid taken since by another row
 * (payments has no INTEGER PRIMARY KEY: an empty table reuses rowid 1)
 * must not send that row's values for the old key.
 */
static bool
test_reused_rowid(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO payments VALUES (1, 1, 'cash', 5, 0);"
	           "DELETE FROM payments;"
	           "INSERT INTO payments VALUES (2, 1, 'card', 7, 0);"));
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE r = 1") == 2);
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 3);
	CHECK(push.events[0].op == PROTO_OP_NONE && push.events[0].nvals == 2
	    && push.events[0].vals[0].u.i == 1);
	CHECK(push.events[1].op == PROTO_OP_DELETE);
	CHECK(push.events[2].op == PROTO_OP_UPSERT
	    && push.events[2].vals[0].u.i == 2
	    && push.events[2].vals[3].u.i == 7);
	return true;
}

/*
 * Rows whose rowids changed (as VACUUM may do to a table without an
 * INTEGER PRIMARY KEY) before the read and between the read and the ack
 * are still read by key and marked synced.
 */
static bool
test_renumbered_rowids(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO payments VALUES (1, 1, 'cash', 5, 0), "
	           "(1, 2, 'card', 6, 0);"
	           "UPDATE payments SET rowid = rowid + 100;"
	           "INSERT INTO payments VALUES (1, 3, 'cash', 7, 0);"));
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 3);
	CHECK(push.events[0].op == PROTO_OP_UPSERT
	    && push.events[0].vals[1].u.i == 1 && push.events[0].rowid == 101);
	CHECK(push.events[1].vals[3].u.i == 6 && push.events[1].rowid == 102);
	CHECK(exec("UPDATE payments SET rowid = rowid + 100"));
	CHECK_OK(outbox_ack(
	    ob, push.events[2].seq, &push, 0, NULL, 0, err, sizeof err));
	CHECK(qint("SELECT count(*) FROM payments WHERE is_synced = 1") == 3);
	return true;
}

/* 1 if the log holds an entry of the row of the entry at seq after it. */
static int64_t
later_in_log(int64_t seq)
{
	char sql[300];
	snprintf(sql, sizeof sql,
	    "SELECT count(*) > 0 FROM _branchsync_log l, _branchsync_log e "
	    "WHERE e.seq = %" PRId64 " AND l.tbl = e.tbl AND l.k = e.k AND "
	    "l.seq > e.seq",
	    seq);
	return qint(sql);
}

/*
 * Every event's ahead flag is the log's own answer (the row has an entry
 * after the event's), over random writes between batch reads of random
 * sizes that go on where the last stopped, start again from acked_seq (a
 * resend) now and then, and sometimes get acknowledged.
 */
static bool
test_ahead_matches_log(void)
{
	uint64_t rng = 7;
	int64_t after = 0, nahead = 0, nplain = 0;
	char sql[200];
#define RND(n) ((int) ((rng = rng * 6364136223846793005ULL + 1) >> 33) % (n))
	CHECK(open_ob());
	for (int round = 0; round < 400; round++) {
		for (int w = RND(6); w > 0; w--) {
			int id = 1 + RND(12), v = RND(1000);
			switch (RND(5)) {
			case 0:
				snprintf(sql, sizeof sql,
				    "DELETE FROM transactions WHERE id = %d",
				    id);
				break;
			case 1:
				snprintf(sql, sizeof sql,
				    "INSERT OR IGNORE INTO payments VALUES "
				    "(%d, 1, 'cash', %d, 0)",
				    id, v);
				break;
			case 2:
				snprintf(sql, sizeof sql,
				    "UPDATE payments SET amount = %d WHERE "
				    "transaction_id = %d",
				    v, id);
				break;
			default:
				snprintf(sql, sizeof sql,
				    "INSERT INTO transactions(id, total_cost) "
				    "VALUES (%d, %d) ON CONFLICT(id) DO "
				    "UPDATE "
				    "SET total_cost = excluded.total_cost",
				    id, v);
			}
			CHECK(exec(sql));
		}
		if (RND(8) == 0)
			after = 0; /* a resend: from acked_seq */
		proto_arena_reset(arena);
		memset(&push, 0, sizeof push);
		CHECK_OK(outbox_read(ob, after, 1 + (size_t) RND(7), 1 << 20,
		    arena, &push, err, sizeof err));
		for (uint32_t i = 0; i < push.nevents; i++) {
			const proto_event *ev = &push.events[i];
			bool want = ev->op == PROTO_OP_UPSERT
			    && later_in_log(ev->seq);
			if (ev->ahead != want)
				fprintf(stderr, "seq %" PRId64 ": ahead %d\n",
				    ev->seq, ev->ahead);
			CHECK(ev->ahead == want);
			nahead += want;
			nplain += !want;
		}
		if (push.nevents > 0)
			after = push.events[push.nevents - 1].seq;
		if (push.nevents > 0 && RND(4) == 0) {
			CHECK_OK(outbox_ack(
			    ob, after, &push, 0, NULL, 0, err, sizeof err));
			after = 0;
		}
	}
#undef RND
	CHECK(nahead > 50 && nplain > 50);
	return true;
}

/*
 * An ack leaves its entries to a later compaction, which happens by
 * itself once enough are acknowledged and nothing is pending.
 */
static bool
test_compact_after_drain(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(total_cost) VALUES (1), (2);"));
	CHECK(read_batch(100, 1 << 20));
	CHECK_OK(outbox_ack(
	    ob, push.events[1].seq, &push, 0, NULL, 0, err, sizeof err));
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 2);
	CHECK(
	    exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
	         "FROM n WHERE i < 1100) INSERT INTO transactions(total_cost) "
	         "SELECT i FROM n;"));
	CHECK(read_batch(2000, 1 << 24));
	CHECK(push.nevents == 1100);
	int64_t w = push.events[1099].seq, tag = push.events[1099].tag;
	CHECK_OK(outbox_ack(ob, w, &push, 0, NULL, 0, err, sizeof err));
	char want[64];
	snprintf(want, sizeof want, "%" PRId64 ":%" PRId64, w, tag);
	CHECK_STR(query("SELECT group_concat(seq || ':' || tag) FROM "
	                "_branchsync_log"),
	    want);
	CHECK(qint("SELECT count(*) FROM transactions WHERE is_synced = 1")
	    == 1102);
	return true;
}

/* A compaction never waits for a write lock the POS holds. */
static bool
test_compact_waits_for_lock(void)
{
	sqlite3 *pos;
	int64_t t0;
	conf.busy_timeout_ms = 30000;
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(total_cost) VALUES (1), (2);"));
	CHECK(read_batch(100, 1 << 20));
	CHECK_OK(outbox_ack(
	    ob, push.events[1].seq, &push, 0, NULL, 0, err, sizeof err));
	CHECK(sqlite3_open(path, &pos) == SQLITE_OK);
	CHECK(sqlite3_exec(pos, "BEGIN IMMEDIATE", NULL, NULL, NULL)
	    == SQLITE_OK);
	t0 = plat_mono_ms();
	CHECK_OK(outbox_compact(ob, 1, err, sizeof err));
	CHECK(plat_mono_ms() - t0 < 5000);
	CHECK(sqlite3_exec(pos, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(pos);
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 2);
	CHECK_OK(outbox_compact(ob, 1, err, sizeof err));
	CHECK(qint("SELECT count(*) FROM _branchsync_log") == 1);
	return true;
}

/*
 * The WELCOME of an idle branch (its watermark is acked_seq) needs no
 * write: it does not wait for a write lock the POS holds.
 */
static bool
test_idle_welcome_waits_for_lock(void)
{
	outbox_id_decision d;
	sqlite3 *pos;
	int64_t t0, w, tag;
	conf.busy_timeout_ms = 30000;
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(total_cost) VALUES (1), (2);"));
	CHECK(read_batch(100, 1 << 20));
	w = push.events[1].seq;
	tag = push.events[1].tag;
	CHECK_OK(outbox_ack(ob, w, &push, 0, NULL, 0, err, sizeof err));
	CHECK(sqlite3_open(path, &pos) == SQLITE_OK);
	CHECK(sqlite3_exec(pos, "BEGIN IMMEDIATE", NULL, NULL, NULL)
	    == SQLITE_OK);
	t0 = plat_mono_ms();
	CHECK_OK(outbox_welcome(ob, w, tag, &d, err, sizeof err));
	CHECK(plat_mono_ms() - t0 < 5000);
	CHECK(d == OUTBOX_ID_TRUST);
	CHECK(sqlite3_exec(pos, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(pos);
	return true;
}

/*
 * A compaction keeps the pending entries, the marker, rejects and
 * retries, and nothing else; seqs go on after it.
 */
static bool
test_compact_keeps(void)
{
	proto_outcome out = {0, PROTO_OUT_REJECTED, "violates check"};
	int64_t one = 1, changed;
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES "
	           "(1, 1), (2, 1), (3, 1), (4, 1), (5, 1);"));
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 5 && push.events[0].seq == 1);
	out.seq = 2;
	CHECK_OK(outbox_ack(ob, 4, &push, 0, &out, 1, err, sizeof err));
	CHECK(exec("UPDATE _branchsync_log SET err = 'r' WHERE seq = 1"));
	CHECK_OK(rejects_retry(
	    outbox_db(ob), &one, 1, true, &changed, err, sizeof err));
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (6, 1)"));
	CHECK_OK(outbox_compact(ob, 0, err, sizeof err));
	/* 1 retried, 2 rejected, 4 the marker, 5 and 6 pending; 3 gone. */
	CHECK_STR(
	    query("SELECT group_concat(seq || ':' || coalesce(err, '-') "
	          "|| ':' || coalesce(retry, '-')) FROM _branchsync_log"),
	    "1:-:1,2:violates check:-,4:-:-,5:-:-,6:-:-");
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 2 && push.events[0].seq == 5
	    && push.events[1].seq == 6);
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (7, 1)"));
	CHECK(qint("SELECT max(seq) FROM _branchsync_log") == 7);
	return true;
}

/* Duplicates: the hub applied an earlier send whose ACK was lost, so the
 * values sent now prove nothing; only "no later entry" does. */
static bool
test_duplicate_ack_marks_changed_row(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (2, 1);"));
	CHECK(read_batch(100, 1 << 20));
	int64_t w = push.events[1].seq;
	CHECK(exec("UPDATE transactions SET total_cost = 7 WHERE id = 2"));
	CHECK_OK(outbox_ack(ob, w, &push, 2, NULL, 0, err, sizeof err));
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 1") == 1);
	CHECK(qint("SELECT is_synced FROM transactions WHERE id = 2") == 0);
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE seq > "
	           "(SELECT value FROM _branchsync_meta WHERE name = "
	           "'acked_seq')")
	    == 1);
	return true;
}

/* A row changed between the send and the ACK keeps is_synced = 0 even
 * when its newer entry has been acknowledged in the same ACK range. */
static bool
test_changed_row_marked_by_stale_ack(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO payments VALUES (4, 1, 'cash', 10, 0);"));
	CHECK(read_batch(100, 1 << 20));
	CHECK(exec("UPDATE payments SET amount = 11"));
	CHECK_OK(outbox_ack(
	    ob, push.events[0].seq, &push, 0, NULL, 0, err, sizeof err));
	CHECK(qint("SELECT is_synced FROM payments") == 0);
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 1 && push.events[0].op == PROTO_OP_UPSERT);
	CHECK_OK(outbox_ack(
	    ob, push.events[0].seq, &push, 0, NULL, 0, err, sizeof err));
	CHECK(qint("SELECT is_synced FROM payments") == 1);
	return true;
}

static bool
test_unconfigured_entries_block(void)
{
	CHECK(open_ob());
	CHECK(exec("INSERT INTO payments VALUES (1, 1, 'cash', 1, 0);"
	           "INSERT INTO transactions(total_cost) VALUES (1);"));
	outbox_close(ob);
	conf.ntables = 1; /* payments no longer configured */
	CHECK_OK(outbox_open(&conf, &ob, err, sizeof err));
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 1 && push.ntables == 1);
	CHECK_STR(push.tables[0].name, "transactions");
	CHECK(qint("SELECT count(*) FROM _branchsync_log WHERE err IS NOT "
	           "NULL AND tbl = 'payments'")
	    == 1);
	return true;
}

static bool
test_run_before_init(void)
{
	CHECK(outbox_open(&conf, &ob, err, sizeof err) == PROTO_EINVAL);
	CHECK(strstr(err, "branchsync-agent init") != NULL);
	return true;
}

static bool
test_identity_decisions_wrong(void)
{
	/* acked 10, high 20; entry at w has tag 77. */
	CHECK(outbox_id_decide(10, 20, 0, 0, false, 0) == OUTBOX_ID_NEW_HUB);
	/* Lost ack: the hub is ahead of acked_seq and the tag matches. */
	CHECK(outbox_id_decide(10, 20, 15, 77, true, 77) == OUTBOX_ID_TRUST);
	CHECK(outbox_id_decide(10, 20, 10, 77, true, 77) == OUTBOX_ID_TRUST);
	/* Restored from a backup: the hub saw more than the file holds. */
	CHECK(
	    outbox_id_decide(10, 20, 21, 77, false, 0) == OUTBOX_ID_RESTORED);
	/* Restored and written as many events again: same seq, other tag. */
	CHECK(
	    outbox_id_decide(10, 20, 15, 78, true, 77) == OUTBOX_ID_RESTORED);
	CHECK(
	    outbox_id_decide(10, 20, 15, 77, false, 0) == OUTBOX_ID_RESTORED);
	CHECK(
	    outbox_id_decide(10, 20, 5, 1, false, 0) == OUTBOX_ID_HUB_BEHIND);
	return true;
}

static bool
test_lost_ack_resent(void)
{
	outbox_id_decision d;
	char log_id[33];
	CHECK(open_ob());
	snprintf(log_id, sizeof log_id, "%s", outbox_log_id(ob));
	CHECK(exec("INSERT INTO transactions(total_cost) VALUES (1), (2), "
	           "(3);"));
	CHECK(read_batch(100, 1 << 20));
	/* The hub applied up to the 2nd event; its ack was lost. */
	CHECK_OK(outbox_welcome(
	    ob, push.events[1].seq, push.events[1].tag, &d, err, sizeof err));
	CHECK(d == OUTBOX_ID_TRUST);
	CHECK_STR(outbox_log_id(ob), log_id);
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 1);
	CHECK(qint("SELECT count(*) FROM transactions WHERE is_synced = 1")
	    == 2);
	return true;
}

static bool
test_restored_file_trusted(void)
{
	outbox_id_decision d;
	char log_id[33];
	CHECK(open_ob());
	snprintf(log_id, sizeof log_id, "%s", outbox_log_id(ob));
	CHECK(exec("INSERT INTO transactions(total_cost) VALUES (1), (2);"));
	CHECK(read_batch(100, 1 << 20));
	/* Same seq as the hub's watermark, but another tag. */
	CHECK_OK(outbox_welcome(ob, push.events[1].seq, push.events[1].tag ^ 1,
	    &d, err, sizeof err));
	CHECK(d == OUTBOX_ID_RESTORED);
	CHECK(strcmp(outbox_log_id(ob), log_id) != 0);
	CHECK_STR(query("SELECT value FROM _branchsync_meta WHERE name = "
	                "'log_id'"),
	    outbox_log_id(ob));
	/* Everything pending is sent again under the new log id. */
	CHECK(read_batch(100, 1 << 20));
	CHECK(push.nevents == 2);
	/* Watermark above the file's high mark: restored as well. */
	CHECK_OK(outbox_welcome(ob, 1000, 5, &d, err, sizeof err));
	CHECK(d == OUTBOX_ID_RESTORED);
	return true;
}

static const agent_test_case cases[] = {
    {"batch order or values wrong", test_batch_order_or_values_wrong},
    {"batch limits ignored", test_batch_limits_ignored},
    {"deleted row sent as upsert", test_deleted_row_sent_as_upsert},
    {"reused rowid sends another row", test_reused_rowid},
    {"ahead flag differs from the log", test_ahead_matches_log},
    {"renumbered rowids lose rows", test_renumbered_rowids},
    {"compaction after a drain", test_compact_after_drain},
    {"compaction keeps what it must", test_compact_keeps},
    {"compaction waits for the lock", test_compact_waits_for_lock},
    {"idle welcome waits for the lock", test_idle_welcome_waits_for_lock},
    {"ack marks a newer change synced", test_ack_marks_newer_change_synced},
    {"ack lets seq be reused", test_ack_reuses_seq},
    {"reject lost", test_reject_lost},
    {"later reject marks row synced", test_later_reject_marks_synced},
    {"big ack not chunked", test_big_ack_not_chunked},
    {"duplicate ack marks changed row", test_duplicate_ack_marks_changed_row},
    {"changed row marked by stale ack", test_changed_row_marked_by_stale_ack},
    {"unconfigured entries block the log", test_unconfigured_entries_block},
    {"run before init", test_run_before_init},
    {"identity decisions wrong", test_identity_decisions_wrong},
    {"lost ack resent", test_lost_ack_resent},
    {"restored file trusted", test_restored_file_trusted},
};

int
main(void)
{
	return agent_test_main(
	    "outbox_test", LOG_LVL_ERROR, cases, ARRAY_LEN(cases), close_ob);
}
