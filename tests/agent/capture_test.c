/*
 * capture_test.c: tests of agent/capture.c against real SQLite files.
 *
 * Each case gets a fresh POS file with the example schema in a temp dir,
 * installs the capture objects and checks the log rows that POS writes
 * produce. Cases are named after the failure they exercise.
 */
#include "agent_test.h"
#include "capture.h"

/* The log as "tbl:op:k;..." in seq order. */
static const char *
log_rows(void)
{
	return query("SELECT group_concat(tbl || ':' || op || ':' || k, ';') "
	             "FROM (SELECT * FROM _branchsync_log ORDER BY seq)");
}

static const char *
catalog(void)
{
	return query("SELECT group_concat(type || name || sql, '|') FROM "
	             "(SELECT * FROM sqlite_master ORDER BY name)");
}

static bool
install(capture_result *res)
{
	proto_err rv = capture_install(db, &conf, false, res, err, sizeof err);
	if (rv != PROTO_OK)
		fprintf(stderr, "install: %s\n", err);
	return rv == PROTO_OK;
}

static bool
test_init_installs(void)
{
	capture_result res;
	CHECK(install(&res));
	CHECK(res.created == 9 && res.dropped == 0);
	CHECK_STR(
	    query("SELECT count(*) FROM sqlite_master WHERE type = "
	          "'trigger' AND name LIKE '\\_branchsync\\_%' ESCAPE '\\'"),
	    "9");
	CHECK_STR(query("SELECT value FROM _branchsync_meta WHERE name = "
	                "'schema'"),
	    "2");
	CHECK_STR(query("SELECT length(value) FROM _branchsync_meta WHERE "
	                "name = 'log_id'"),
	    "32");
	CHECK_STR(query("SELECT value FROM _branchsync_meta WHERE name = "
	                "'acked_seq'"),
	    "0");
	return true;
}

static bool
test_init_twice_changes(void)
{
	capture_result res;
	char before[8192];
	CHECK(install(&res));
	snprintf(before, sizeof before, "%s", catalog());
	char log_id[64];
	snprintf(log_id, sizeof log_id, "%s",
	    query("SELECT value FROM _branchsync_meta WHERE name='log_id'"));
	CHECK(install(&res));
	CHECK(res.created == 0 && res.dropped == 0);
	CHECK_STR(catalog(), before);
	CHECK_STR(query("SELECT value FROM _branchsync_meta WHERE "
	                "name='log_id'"),
	    log_id);
	return true;
}

static bool
test_new_column_not_captured(void)
{
	capture_result res;
	CHECK(install(&res));
	CHECK(exec("ALTER TABLE transactions ADD COLUMN note TEXT;"
	           "INSERT INTO transactions(id, total_cost) VALUES (1, 5);"
	           "DELETE FROM _branchsync_log;"));
	CHECK(install(&res));
	/* Only the UPDATE OF list changed. */
	CHECK(res.created == 1 && res.dropped == 1);
	CHECK(exec("UPDATE transactions SET note = 'x' WHERE id = 1"));
	CHECK_STR(log_rows(), "transactions:2:1");
	return true;
}

static bool
test_unconfigured_table_keeps_triggers(void)
{
	capture_result res;
	CHECK(install(&res));
	conf.ntables = 1;
	CHECK(install(&res));
	CHECK(res.created == 0 && res.dropped == 6);
	CHECK(exec("INSERT INTO payments VALUES (1, 1, 'cash', 5, 0)"));
	CHECK_STR(log_rows(), "");
	return true;
}

static bool
test_write_kinds_logged_wrong(void)
{
	capture_result res;
	CHECK(install(&res));
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (7, 5);"
	           "UPDATE transactions SET total_cost = 6 WHERE id = 7;"
	           "DELETE FROM transactions WHERE id = 7;"));
	CHECK_STR(
	    log_rows(), "transactions:1:7;transactions:2:7;transactions:3:7");
	CHECK_STR(
	    query("SELECT count(DISTINCT tag) FROM _branchsync_log"), "3");
	return true;
}

static bool
test_composite_key_logged_wrong(void)
{
	capture_result res;
	CHECK(install(&res));
	CHECK(exec("INSERT INTO payments VALUES (3, 1, 'cash', 5, 0);"
	           "UPDATE payments SET amount = 6;"
	           "DELETE FROM payments;"));
	CHECK_STR(
	    log_rows(), "payments:1:[3,1];payments:2:[3,1];payments:3:[3,1]");
	return true;
}

static bool
test_key_change_loses_old_key(void)
{
	capture_result res;
	CHECK(install(&res));
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 5);"
	           "INSERT INTO payments VALUES (3, 1, 'cash', 5, 0);"
	           "DELETE FROM _branchsync_log;"
	           "UPDATE transactions SET id = 100 WHERE id = 1;"
	           "UPDATE payments SET line_no = 2;"));
	CHECK_STR(log_rows(),
	    "transactions:3:1;transactions:2:100;"
	    "payments:3:[3,1];payments:2:[3,2]");
	return true;
}

static bool
test_synced_update_captured(void)
{
	capture_result res;
	CHECK(install(&res));
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 5);"
	           "DELETE FROM _branchsync_log;"
	           "UPDATE transactions SET is_synced = 1;"));
	CHECK_STR(log_rows(), "");
	/* A real change marks the row unsynced again. */
	CHECK(exec("UPDATE transactions SET total_cost = 9"));
	CHECK_STR(query("SELECT is_synced FROM transactions"), "0");
	return true;
}

static bool
test_guard_row_captured(void)
{
	capture_result res;
	CHECK(install(&res));
	CHECK(exec("BEGIN; INSERT INTO _branchsync_guard VALUES (1);"
	           "INSERT INTO transactions(id, total_cost) VALUES (1, 5);"
	           "UPDATE transactions SET total_cost = 6;"
	           "DELETE FROM _branchsync_guard; COMMIT;"));
	CHECK_STR(log_rows(), "");
	return true;
}

static bool
test_insert_or_replace_missed(void)
{
	capture_result res;
	CHECK(install(&res));
	CHECK(exec("INSERT INTO transactions(id, total_cost, is_synced) "
	           "VALUES (1, 5, 1);"));
	CHECK_STR(query("SELECT is_synced FROM transactions"), "0");
	CHECK(exec("DELETE FROM _branchsync_log;"
	           "UPDATE transactions SET is_synced = 1;"
	           "INSERT OR REPLACE INTO transactions(id, total_cost, "
	           "is_synced) VALUES (1, 8, 1);"));
	CHECK_STR(log_rows(), "transactions:1:1");
	CHECK_STR(query("SELECT is_synced FROM transactions"), "0");
	return true;
}

static bool
test_odd_names_break_sql(void)
{
	capture_result res;
	conf.tables = &tconf[3];
	conf.ntables = 1;
	CHECK(install(&res));
	CHECK(res.created == 3);
	CHECK(exec("INSERT INTO \"odd\"\"name\" VALUES (4, 'x')"));
	CHECK_STR(log_rows(), "odd\"name:1:4");
	CHECK(install(&res));
	CHECK(res.created == 0);
	return true;
}

static bool
test_bad_tables_accepted(void)
{
	capture_result res;
	char before[8192];
	snprintf(before, sizeof before, "%s", catalog());
	tconf[4].name = "nokey";
	conf.tables = &tconf[4];
	conf.ntables = 1;
	CHECK(capture_install(db, &conf, false, &res, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK(strstr(err, "no PRIMARY KEY") != NULL);
	tconf[4].name = "missing";
	CHECK(capture_install(db, &conf, false, &res, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK(strstr(err, "does not exist") != NULL);
	tconf[4].name = "nokey";
	tconf[4].key = "a, zz";
	CHECK(capture_install(db, &conf, false, &res, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK(strstr(err, "\"zz\"") != NULL);
	/* A failed init leaves the file as it was. */
	CHECK_STR(catalog(), before);
	tconf[4].key = "b";
	CHECK(install(&res));
	CHECK(exec("INSERT INTO nokey VALUES (1, 'k')"));
	CHECK_STR(log_rows(), "nokey:1:k");
	return true;
}

static bool
test_wal_switch_ignored(void)
{
	capture_result res;
	CHECK_OK(capture_install(db, &conf, true, &res, err, sizeof err));
	CHECK(res.wal);
	CHECK_STR(query("PRAGMA journal_mode"), "wal");
	return true;
}

/* Tables whose key SQLite lets hold anything, NULL and BLOB included. */
static bool
odd_key_tables(void)
{
	CHECK(exec("CREATE TABLE tk(id TEXT PRIMARY KEY, v);"
	           "CREATE TABLE ck(a, b, v, PRIMARY KEY (a, b));"));
	tconf[3].name = "tk";
	tconf[4].name = "ck";
	conf.tables = &tconf[3];
	conf.ntables = 2;
	return true;
}

static bool
test_odd_key_fails_the_sale(void)
{
	capture_result res;
	CHECK(odd_key_tables());
	CHECK(install(&res));
	CHECK(exec("INSERT INTO tk VALUES (NULL, 1);"
	           "INSERT INTO tk VALUES (x'00ff', 2);"
	           "INSERT INTO tk VALUES (2.5, 3);"
	           "UPDATE tk SET id = 'n' WHERE id IS NULL;"
	           "INSERT INTO ck VALUES (x'0102', NULL, 1);"
	           "INSERT INTO ck VALUES (1.5, 'x', 2) ON CONFLICT DO "
	           "NOTHING;"
	           "INSERT OR REPLACE INTO ck VALUES (x'0102', NULL, 3);"
	           "DELETE FROM ck WHERE a = 1.5;"));
	CHECK_STR(query("SELECT group_concat(tbl || ':' || op || ':' || "
	                "coalesce(quote(k), 'NULL'), ';') FROM (SELECT * "
	                "FROM _branchsync_log ORDER BY seq)"),
	    "tk:1:NULL;tk:1:X'00FF';tk:1:'2.5';tk:3:NULL;tk:2:'n';"
	    "ck:1:'[{\"b\":\"0102\"},null]';ck:1:'[1.5,\"x\"]';"
	    "ck:1:'[{\"b\":\"0102\"},null]';ck:3:'[1.5,\"x\"]'");
	return true;
}

/* A log made by schema 1 (k NOT NULL), with its triggers and an entry. */
static bool
test_old_log_fails_null_key(void)
{
	capture_result res;
	CHECK(odd_key_tables());
	CHECK(exec("CREATE TABLE _branchsync_log(seq INTEGER PRIMARY KEY, "
	           "tbl TEXT NOT NULL, op INTEGER NOT NULL, k NOT NULL, tag "
	           "INTEGER NOT NULL, err TEXT, retry INTEGER, ts INTEGER);"
	           "CREATE TABLE _branchsync_meta(name TEXT PRIMARY KEY, "
	           "value) WITHOUT ROWID;"
	           "INSERT INTO _branchsync_meta VALUES ('schema', 1);"
	           "CREATE TRIGGER _branchsync_tk_ins AFTER INSERT ON tk "
	           "BEGIN INSERT INTO _branchsync_log(tbl, op, k, tag) "
	           "VALUES ('tk', 1, NEW.id, 1); END;"
	           "INSERT INTO tk VALUES ('a', 1);"
	           "INSERT INTO _branchsync_log(seq, tbl, op, k, tag, err) "
	           "VALUES (7, 'tk', 2, 'b', 5, 'a reason');"));
	CHECK(!exec("INSERT INTO tk VALUES (NULL, 2)"));
	CHECK(install(&res));
	CHECK(res.dropped == 1 && res.created == 6);
	CHECK(exec("INSERT INTO tk VALUES (NULL, 2)"));
	CHECK_STR(query("SELECT group_concat(seq || ':' || coalesce(k, "
	                "'NULL') || ':' || tag || ':' || coalesce(err, ''), "
	                "';') FROM (SELECT * FROM _branchsync_log WHERE seq "
	                "< 8 ORDER BY seq)"),
	    "1:a:1:;7:b:5:a reason");
	CHECK_STR(query("SELECT count(*) FROM _branchsync_log WHERE seq = 8 "
	                "AND k IS NULL"),
	    "1");
	CHECK_STR(query("SELECT value FROM _branchsync_meta WHERE name = "
	                "'schema'"),
	    "2");
	CHECK_STR(query("SELECT count(*) FROM sqlite_master WHERE name = "
	                "'_branchsync_log_key'"),
	    "1");
	CHECK(install(&res));
	CHECK(res.dropped == 0 && res.created == 0);
	return true;
}

static bool
test_excluded_column_captured(void)
{
	capture_result res;
	tconf[0].exclude = "created_at";
	CHECK(install(&res));
	CHECK(
	    exec("INSERT INTO transactions(id, total_cost) VALUES (1, 5);"
	         "DELETE FROM _branchsync_log;"
	         "UPDATE transactions SET is_synced = 1;"
	         "UPDATE transactions SET created_at = 'x';"
	         "UPDATE transactions SET created_at = 'y', is_synced = 1;"));
	CHECK_STR(log_rows(), "");
	CHECK_STR(query("SELECT is_synced FROM transactions"), "1");
	CHECK(
	    exec("UPDATE transactions SET created_at = 'z', total_cost = 6"));
	CHECK_STR(log_rows(), "transactions:2:1");
	CHECK_STR(query("SELECT is_synced FROM transactions"), "0");
	return true;
}

static bool
test_bad_exclude_accepted(void)
{
	capture_result res;
	tconf[0].exclude = "id";
	CHECK(capture_install(db, &conf, false, &res, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK(strstr(err, "key column \"id\"") != NULL);
	tconf[0].exclude = "total_cost, nosuch";
	CHECK(capture_install(db, &conf, false, &res, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK(strstr(err, "\"nosuch\"") != NULL);
	return true;
}

static const agent_test_case cases[] = {
    {"NULL, REAL or BLOB key fails the sale", test_odd_key_fails_the_sale},
    {"old log fails a NULL key", test_old_log_fails_null_key},
    {"excluded column captured", test_excluded_column_captured},
    {"bad exclude accepted", test_bad_exclude_accepted},
    {"init installs nothing", test_init_installs},
    {"init twice changes the catalog", test_init_twice_changes},
    {"new column not captured", test_new_column_not_captured},
    {"unconfigured table keeps triggers",
        test_unconfigured_table_keeps_triggers},
    {"write kinds logged wrong", test_write_kinds_logged_wrong},
    {"composite key logged wrong", test_composite_key_logged_wrong},
    {"key change loses the old key", test_key_change_loses_old_key},
    {"is_synced-only update captured", test_synced_update_captured},
    {"guard row captured anyway", test_guard_row_captured},
    {"insert or replace missed", test_insert_or_replace_missed},
    {"odd names break the SQL", test_odd_names_break_sql},
    {"bad tables accepted", test_bad_tables_accepted},
    {"wal switch ignored", test_wal_switch_ignored},
};

int
main(void)
{
	return agent_test_main(
	    "capture_test", LOG_LVL_WARN, cases, ARRAY_LEN(cases), NULL);
}
