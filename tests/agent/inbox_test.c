/*
 * inbox_test.c: tests of agent/inbox.c (applying CHANGES pages) against
 * real SQLite files.
 *
 * Each case gets the example POS file plus the master-data tables
 * (products with POS-only columns, branch_prices, stock_allocations),
 * capture installed for the up tables, and applies hand-built pages.
 * Cases are named after the failure they exercise.
 */
#include "agent_test.h"
#include "capture.h"
#include "inbox.h"
#include "outbox.h"

static const char down_schema[]
    = "CREATE TABLE products(id INTEGER PRIMARY KEY, store_id INTEGER, "
      "name TEXT NOT NULL, sku TEXT, price INTEGER NOT NULL, "
      "stock INTEGER NOT NULL DEFAULT 0, is_synced INTEGER NOT NULL "
      "DEFAULT 0);"
      "CREATE TABLE branch_prices(product_id INTEGER PRIMARY KEY, "
      "price INTEGER NOT NULL, is_synced INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE stock_allocations(product_id INTEGER PRIMARY KEY, "
      "qty INTEGER NOT NULL);";

/* transactions up; products, branch_prices, stock_allocations down. */
static agent_table_config dconf[4];
static inbox *ib;

static bool
down_setup(bool products_up)
{
	memset(dconf, 0, sizeof dconf);
	dconf[0] = (agent_table_config) {
	    .name = "transactions", .line = 1, .down = false};
	dconf[1] = (agent_table_config) {
	    .name = "products", .line = 2, .down = !products_up};
	dconf[2] = (agent_table_config) {
	    .name = "branch_prices", .line = 3, .down = true};
	dconf[3] = (agent_table_config) {
	    .name = "stock_allocations", .line = 4, .down = true};
	conf.tables = dconf;
	conf.ntables = 4;
	CHECK(exec(down_schema));
	CHECK_OK(capture_install(db, &conf, false, NULL, err, sizeof err));
	dconf[1].down = true; /* apply as down even if captured */
	CHECK_OK(inbox_open(db, &conf, &ib, err, sizeof err));
	return true;
}

static void
cleanup(void)
{
	inbox_close(ib);
	ib = NULL;
}

/* Values and pages built by hand. */
#define I(x)                                                                  \
	{                                                                     \
		.type = PROTO_INT, .u.i = (x)                                 \
	}
#define S(x)                                                                  \
	{                                                                     \
		.type = PROTO_STR, .len = sizeof(x) - 1, .u.s = (x)           \
	}
#define NIL                                                                   \
	{                                                                     \
		.type = PROTO_NIL                                             \
	}

static const char *prod_cols[] = {"id", "name", "sku", "price", "supplier"};
static const char *bp_cols[] = {"product_id", "price"};
static const char *tx_cols[] = {"id", "total_cost"};

static proto_table tables[] = {
    {"products", 5, prod_cols, 1},
    {"branch_prices", 2, bp_cols, 1},
    {"transactions", 2, tx_cols, 1},
    {"users", 2, tx_cols, 1},
};

#define CHANGE(id, tbl, op, vals)                                             \
	{                                                                     \
		(id), 0, (tbl), (op), ARRAY_LEN(vals), (vals), false, 0       \
	}

static proto_changes
page(int64_t cursor, bool more, proto_event *ch, uint32_t n)
{
	return (proto_changes) {
	    cursor, more, ARRAY_LEN(tables), tables, n, ch};
}

static bool
apply(proto_changes *p, const char *reload)
{
	proto_err rv = inbox_apply(ib, p, reload, err, sizeof err);
	if (rv != PROTO_OK)
		fprintf(stderr, "apply: %s\n", err);
	return rv == PROTO_OK;
}

static const char *
meta(const char *name)
{
	static char sql[200];
	snprintf(sql, sizeof sql,
	    "SELECT value FROM _branchsync_meta WHERE name = '%s'", name);
	return query(sql);
}

static const char *
products(void)
{
	return query(
	    "SELECT group_concat(id || ':' || ifnull(store_id, '-') "
	    "|| ':' || name || ':' || ifnull(sku, '-') || ':' || price "
	    "|| ':' || stock || ':' || is_synced, ';') FROM (SELECT * "
	    "FROM products ORDER BY id)");
}

static bool
test_upsert_overwrites_pos_columns(void)
{
	CHECK(down_setup(false));
	CHECK(exec("INSERT INTO products VALUES (1, 3, 'old', 'S1', 100, 7, "
	           "0)"));
	proto_value v1[] = {I(1), S("tea"), NIL, I(120), S("acme")};
	proto_value v2[] = {I(2), S("cake"), S("C2"), I(300), NIL};
	proto_event ch[] = {CHANGE(10, 0, PROTO_OP_UPSERT, v1),
	    CHANGE(11, 0, PROTO_OP_UPSERT, v2)};
	proto_changes p = page(11, false, ch, ARRAY_LEN(ch));
	CHECK(apply(&p, NULL));
	/* store_id and stock are the POS's: kept; sku NULL was received. */
	CHECK_STR(products(), "1:3:tea:-:120:7:1;2:-:cake:C2:300:0:1");
	CHECK_STR(meta("down_cursor"), "11");
	CHECK(atoll(meta("last_pull")) > 1600000000);
	CHECK_STR(query("SELECT count(*) FROM _branchsync_log"), "0");
	return true;
}

static bool
test_delete_ignored(void)
{
	CHECK(down_setup(false));
	CHECK(exec("INSERT INTO products(id, name, price) VALUES (1, 'a', 1), "
	           "(2, 'b', 2)"));
	proto_value k[] = {I(1)};
	proto_event ch[] = {CHANGE(5, 0, PROTO_OP_DELETE, k)};
	proto_changes p = page(5, false, ch, 1);
	CHECK(apply(&p, NULL));
	CHECK_STR(query("SELECT group_concat(id) FROM products"), "2");
	/* Deleting a key that is not there is no error. */
	proto_changes p2 = page(6, false, ch, 1);
	CHECK(apply(&p2, NULL));
	CHECK_STR(meta("down_cursor"), "6");
	return true;
}

static bool
test_unknown_column_fails_page(void)
{
	CHECK(down_setup(false));
	/* "supplier" is not a POS column: ignored, the rest applied, twice
	 * (the warning is logged once). */
	proto_value v[] = {I(4), S("pie"), S("P4"), I(50), S("acme")};
	proto_event ch[] = {CHANGE(1, 0, PROTO_OP_UPSERT, v)};
	proto_changes p = page(1, false, ch, 1);
	CHECK(apply(&p, NULL));
	CHECK(apply(&p, NULL));
	CHECK_STR(products(), "4:-:pie:P4:50:0:1");
	/* The POS gains the column: it is used from the next page on. */
	CHECK(exec("ALTER TABLE products ADD COLUMN supplier TEXT"));
	CHECK(apply(&p, NULL));
	CHECK_STR(query("SELECT supplier FROM products"), "acme");
	return true;
}

static bool
test_undown_table_applied(void)
{
	CHECK(down_setup(false));
	proto_value t[] = {I(1), I(999)};
	proto_value b[] = {I(7), I(250)};
	proto_event ch[] = {CHANGE(1, 2, PROTO_OP_UPSERT, t),
	    CHANGE(2, 3, PROTO_OP_UPSERT, t),
	    CHANGE(3, 1, PROTO_OP_UPSERT, b)};
	proto_changes p = page(3, false, ch, ARRAY_LEN(ch));
	CHECK(apply(&p, NULL));
	/* transactions is an up table, users is not configured: skipped. */
	CHECK_STR(query("SELECT count(*) FROM transactions"), "0");
	CHECK_STR(query("SELECT product_id || ':' || price || ':' || "
	                "is_synced FROM branch_prices"),
	    "7:250:1");
	CHECK_STR(meta("down_cursor"), "3");
	return true;
}

static bool
test_down_apply_captured(void)
{
	CHECK(down_setup(false));
	/* transactions is captured... */
	CHECK(exec("INSERT INTO transactions(id, total_cost) VALUES (1, 5)"));
	CHECK_STR(query("SELECT count(*) FROM _branchsync_log"), "1");
	CHECK(exec("DELETE FROM _branchsync_log"));
	/* ...products is not: init installed no trigger on a down table. */
	CHECK_STR(query("SELECT count(*) FROM sqlite_master WHERE type = "
	                "'trigger' AND tbl_name <> 'transactions'"),
	    "0");
	proto_value v[] = {I(1), S("tea"), NIL, I(1), NIL};
	proto_event ch[] = {CHANGE(1, 0, PROTO_OP_UPSERT, v)};
	proto_changes p = page(1, false, ch, 1);
	CHECK(apply(&p, NULL));
	CHECK_STR(query("SELECT count(*) FROM _branchsync_log"), "0");
	CHECK_STR(query("SELECT count(*) FROM _branchsync_guard"), "0");
	return true;
}

static bool
test_guard_missing(void)
{
	/* products also captured: the guard must keep the triggers quiet. */
	CHECK(down_setup(true));
	CHECK_STR(query("SELECT count(*) FROM sqlite_master WHERE type = "
	                "'trigger' AND tbl_name = 'products'"),
	    "3");
	CHECK(exec("INSERT INTO products(id, name, price) VALUES (1, 'a', 1), "
	           "(2, 'b', 2)"));
	CHECK_STR(query("SELECT count(*) FROM _branchsync_log"), "2");
	CHECK(exec("DELETE FROM _branchsync_log"));
	proto_value v1[] = {I(1), S("tea"), NIL, I(1), NIL};
	proto_value v3[] = {I(3), S("new"), NIL, I(3), NIL};
	proto_value k2[] = {I(2)};
	proto_event ch[] = {CHANGE(1, 0, PROTO_OP_UPSERT, v1),
	    CHANGE(2, 0, PROTO_OP_UPSERT, v3),
	    CHANGE(3, 0, PROTO_OP_DELETE, k2)};
	proto_changes p = page(3, false, ch, ARRAY_LEN(ch));
	CHECK(apply(&p, NULL));
	CHECK_STR(products(), "1:-:tea:-:1:0:1;3:-:new:-:3:0:1");
	CHECK_STR(query("SELECT count(*) FROM _branchsync_log"), "0");
	CHECK_STR(query("SELECT count(*) FROM _branchsync_guard"), "0");
	return true;
}

static bool
test_half_page_written(void)
{
	CHECK(down_setup(false));
	CHECK(
	    exec("INSERT INTO products(id, name, price) VALUES (1, 'a', 1)"));
	proto_value v1[] = {I(1), S("changed"), NIL, I(9), NIL};
	proto_value v2[] = {I(2), S("b"), NIL, I(2), NIL};
	proto_value bad[] = {I(3), S("c"), NIL, NIL, NIL}; /* price NULL */
	proto_event ch[] = {CHANGE(1, 0, PROTO_OP_UPSERT, v1),
	    CHANGE(2, 0, PROTO_OP_UPSERT, v2),
	    CHANGE(3, 0, PROTO_OP_UPSERT, bad)};
	proto_changes p = page(3, false, ch, ARRAY_LEN(ch));
	CHECK(inbox_apply(ib, &p, NULL, err, sizeof err) == PROTO_EDB);
	CHECK(strstr(err, "change 3") != NULL);
	CHECK_STR(products(), "1:-:a:-:1:0:0");
	CHECK_STR(meta("down_cursor"), "0");
	CHECK_STR(meta("last_pull"), "");
	CHECK_STR(query("SELECT count(*) FROM _branchsync_guard"), "0");
	CHECK(sqlite3_get_autocommit(db));
	/* The corrected page applies in full. */
	ch[2] = (proto_event) CHANGE(3, 0, PROTO_OP_UPSERT, v2);
	CHECK(apply(&p, NULL));
	CHECK_STR(meta("down_cursor"), "3");
	return true;
}

static bool
test_key_mismatch_applied(void)
{
	CHECK(down_setup(false));
	/* The hub keys products by sku; the POS by id. */
	static proto_table wrong = {"products", 5, prod_cols, 2};
	proto_value v[] = {I(1), S("tea"), NIL, I(1), NIL};
	proto_event ch[] = {CHANGE(1, 0, PROTO_OP_UPSERT, v)};
	proto_changes p = {1, false, 1, &wrong, 1, ch};
	CHECK(inbox_apply(ib, &p, NULL, err, sizeof err) == PROTO_EINVAL);
	CHECK(strstr(err, "key") != NULL);
	CHECK_STR(products(), "");
	CHECK_STR(meta("down_cursor"), "0");
	return true;
}

static bool
test_reload_meta_lost(void)
{
	inbox_state st;
	CHECK(down_setup(false));
	CHECK_OK(inbox_reload_request(db, "products", err, sizeof err));
	CHECK_OK(inbox_state_read(db, &st, err, sizeof err));
	CHECK_STR(st.reload_table, "products");
	CHECK(st.reload_cursor == 0 && st.down_cursor == 0);
	CHECK(strlen(st.log_id) == 32);
	proto_value v[] = {I(1), S("tea"), NIL, I(1), NIL};
	proto_event ch[] = {CHANGE(5, 0, PROTO_OP_UPSERT, v)};
	proto_changes p = page(5, true, ch, 1);
	CHECK(apply(&p, "products"));
	CHECK_STR(meta("reload_cursor"), "5");
	CHECK_STR(meta("reload_table"), "products");
	CHECK_STR(meta("down_cursor"), "0");
	/* The last page ends the reload in its own transaction. */
	p = page(9, false, ch, 1);
	CHECK(apply(&p, "products"));
	CHECK_STR(query("SELECT count(*) FROM _branchsync_meta WHERE name "
	                "LIKE 'reload%'"),
	    "0");
	CHECK_STR(meta("down_cursor"), "0");
	CHECK_OK(inbox_state_read(db, &st, err, sizeof err));
	CHECK_STR(st.reload_table, "");
	return true;
}

static bool
test_reload_replaced_lost(void)
{
	CHECK(down_setup(false));
	CHECK_OK(inbox_reload_request(db, "products", err, sizeof err));
	/* A new "reload" while a page of the old one is in flight. */
	CHECK_OK(inbox_reload_request(db, "branch_prices", err, sizeof err));
	proto_value v[] = {I(1), S("tea"), NIL, I(1), NIL};
	proto_event ch[] = {CHANGE(5, 0, PROTO_OP_UPSERT, v)};
	proto_changes p = page(5, true, ch, 1);
	CHECK(apply(&p, "products"));
	CHECK_STR(meta("reload_cursor"), "0");
	p = page(6, false, ch, 1);
	CHECK(apply(&p, "products"));
	CHECK_STR(meta("reload_table"), "branch_prices");
	CHECK_STR(meta("reload_cursor"), "0");
	return true;
}

static bool
test_init_captures_down(void)
{
	capture_result res;
	CHECK(down_setup(true)); /* products captured first */
	CHECK_STR(meta("down_cursor"), "0");
	/* Switched to down: init drops its triggers. */
	CHECK_OK(capture_install(db, &conf, false, &res, err, sizeof err));
	CHECK(res.dropped == 3 && res.created == 0);
	CHECK_STR(query("SELECT count(*) FROM sqlite_master WHERE type = "
	                "'trigger' AND tbl_name = 'products'"),
	    "0");
	/* The outbox describes only up tables. */
	outbox *ob = NULL;
	CHECK_OK(outbox_open(&conf, &ob, err, sizeof err));
	outbox_close(ob);
	return true;
}

static bool
test_missing_down_table_accepted(void)
{
	inbox *x = NULL;
	CHECK(down_setup(false));
	dconf[3].name = "no_such_table";
	CHECK(inbox_open(db, &conf, &x, err, sizeof err) == PROTO_EINVAL);
	CHECK(x == NULL && strstr(err, "no_such_table") != NULL);
	return true;
}

static const agent_test_case cases[] = {
    {"upsert overwrites POS-only columns", test_upsert_overwrites_pos_columns},
    {"delete ignored", test_delete_ignored},
    {"unknown column fails the page", test_unknown_column_fails_page},
    {"table not configured down applied", test_undown_table_applied},
    {"down apply captured", test_down_apply_captured},
    {"guard missing on a captured table", test_guard_missing},
    {"half a page written", test_half_page_written},
    {"key mismatch applied", test_key_mismatch_applied},
    {"reload meta lost", test_reload_meta_lost},
    {"replaced reload lost", test_reload_replaced_lost},
    {"init captures down tables", test_init_captures_down},
    {"missing down table accepted", test_missing_down_table_accepted},
};

int
main(void)
{
	return agent_test_main(
	    "inbox_test", LOG_LVL_ERROR, cases, ARRAY_LEN(cases), cleanup);
}
