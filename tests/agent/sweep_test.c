/*
 * sweep_test.c: tests of agent/sweep.c against real SQLite files.
 *
 * The sweep queues rows written while capture was off, and asks for the
 * entries captured before it to move behind them; the move itself waits
 * for the sender (sweep_move_pending). Cases are named after the failure
 * they exercise.
 */
#include "agent_test.h"
#include "capture.h"
#include "sweep.h"

/* The log as "seq:tbl:k;..." in seq order. */
static const char *
log_rows(void)
{
	return query("SELECT group_concat(seq || ':' || tbl || ':' || "
	             "coalesce(k, 'NULL'), ';') FROM (SELECT * FROM "
	             "_branchsync_log ORDER BY seq)");
}

static bool
install(void)
{
	proto_err rv
	    = capture_install(db, &conf, false, NULL, err, sizeof err);
	if (rv != PROTO_OK)
		fprintf(stderr, "install: %s\n", err);
	return rv == PROTO_OK;
}

/* Sweeps table tconf[i] in mode; returns the rows queued, -1 on error. */
static int64_t
sweep(size_t i, sweep_mode mode)
{
	capture_table t;
	int64_t n = 0;
	if (capture_describe(db, &tconf[i], &t, err, sizeof err) != PROTO_OK)
		return -1;
	if (sweep_table(db, &t, mode, NULL, NULL, &n, err, sizeof err)
	    != PROTO_OK)
		n = -1;
	capture_table_fini(&t);
	return n;
}

static bool
test_sweep_queues_twice(void)
{
	CHECK(install());
	CHECK(exec("INSERT INTO _branchsync_guard VALUES (1);"
	           "INSERT INTO transactions(id, total_cost, is_synced) "
	           "VALUES (1, 5, 0), (2, 6, 1), (3, 7, 0);"
	           "DELETE FROM _branchsync_guard;"));
	CHECK(sweep(0, SWEEP_UNSYNCED) == 2);
	CHECK_STR(log_rows(), "1:transactions:1;2:transactions:3");
	CHECK(sweep(0, SWEEP_UNSYNCED) == 0);
	CHECK(sweep(0, SWEEP_ALL) == 1);
	CHECK(sweep(0, SWEEP_ALL) == 0);
	return true;
}

/* A NULL key is queued once, to become a visible reject at the hub. */
static bool
test_sweep_loses_null_key(void)
{
	CHECK(exec("CREATE TABLE tk(id TEXT PRIMARY KEY, v, is_synced);"));
	tconf[3].name = "tk";
	conf.tables = &tconf[3];
	conf.ntables = 1;
	CHECK(install());
	CHECK(exec("INSERT INTO _branchsync_guard VALUES (1);"
	           "INSERT INTO tk VALUES (NULL, 1, 0), ('a', 2, 0);"
	           "DELETE FROM _branchsync_guard;"));
	CHECK(sweep(3, SWEEP_UNSYNCED) == 2);
	CHECK(sweep(3, SWEEP_UNSYNCED) == 0);
	CHECK_STR(query("SELECT count(*) FROM _branchsync_log WHERE k IS "
	                "NULL"),
	    "1");
	return true;
}

/*
 * Entries above acked_seq that the hub may have applied (a lost ACK)
 * must keep their seqs until the sender knows better: the sweep only
 * records the request, and the move takes only entries above acked_seq
 * at the time it runs.
 */
static bool
test_move_renumbers_seen_entries(void)
{
	int64_t moved;
	CHECK(install());
	CHECK(exec("INSERT INTO transaction_items(id, transaction_id, qty) "
	           "VALUES (1, 9, 1), (2, 9, 1), (3, 9, 1);"));
	CHECK_OK(sweep_move_request(db, 3, err, sizeof err));
	CHECK_STR(log_rows(),
	    "1:transaction_items:1;2:transaction_items:2;"
	    "3:transaction_items:3");
	/* A second sweep's request does not replace the first. */
	CHECK_OK(sweep_move_request(db, 2, err, sizeof err));
	CHECK_STR(query("SELECT value FROM _branchsync_meta WHERE name = "
	                "'move_after'"),
	    "3");
	/* The hub acknowledged seq 1 (the WELCOME after a lost ACK). */
	CHECK(exec("UPDATE _branchsync_meta SET value = 1 WHERE name = "
	           "'acked_seq';"
	           "INSERT INTO _branchsync_guard VALUES (1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (9, 3);"
	           "DELETE FROM _branchsync_guard;"));
	CHECK(sweep(0, SWEEP_UNSYNCED) == 1);
	CHECK_OK(sweep_move_pending(db, &moved, err, sizeof err));
	CHECK(moved == 2);
	CHECK_STR(log_rows(),
	    "1:transaction_items:1;4:transactions:9;5:transaction_items:2;"
	    "6:transaction_items:3");
	CHECK_STR(query("SELECT count(*) FROM _branchsync_meta WHERE name = "
	                "'move_after'"),
	    "0");
	CHECK_OK(sweep_move_pending(db, &moved, err, sizeof err));
	CHECK(moved == 0);
	return true;
}

static const agent_test_case cases[] = {
    {"sweep queues a row twice", test_sweep_queues_twice},
    {"sweep loses a NULL key", test_sweep_loses_null_key},
    {"move renumbers entries the hub saw", test_move_renumbers_seen_entries},
};

int
main(void)
{
	return agent_test_main(
	    "sweep_test", LOG_LVL_WARN, cases, ARRAY_LEN(cases), NULL);
}
