"""test_examples: the configurations in deploy/examples/ work end to end.

Each example's pos.sql, center.sql and the [table] sections of its
agent.ini and hub.ini are used as they are; only the connection keys point
at this test's throwaway PostgreSQL, hub and POS file.

1. electron-retail: a POS file that already holds a year's sales (some
   marked is_synced = 1 by the app's old sync loop) is brought in with
   `init --wal --initial-load`; then the app keeps selling, saving each
   sale with INSERT OR REPLACE (and re-saving it when paid), and writes
   its local settings table. Every sale and item, old and new, arrives at
   the center with equal values, each POS row ends is_synced = 1, no
   settings write is captured, and head office's products reach the POS.
2. finance-sidecar: UUID text keys, the app's text branch_id ('JKT-01'),
   integer money and ISO timestamps with an offset. journal_entries keeps
   branchsync's integer branch_id and stores the app's code as
   branch_code; cash_counts keeps the app's branch_id and gets
   branchsync's id in origin_branch. Values arrive exactly (uuid,
   bigint, timestamptz); the app's own `synced_at` stamp creates no event
   and never reaches the center; an update and a delete arrive.
"""
import configparser
import datetime
import os
import sqlite3
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402


def example(name, *parts):
    return bstest.source_file("deploy", "examples", name, *parts)


def ini_tables(path):
    """[table NAME] sections of an example ini: (up, down), each
    {name: {key: value}} in file order."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"),
                                   comment_prefixes=(";", "#"))
    cp.read(path)
    up, down = {}, {}
    for sec in cp.sections():
        if not sec.startswith("table "):
            continue
        keys = dict(cp[sec])
        name = sec[len("table "):].strip()
        if keys.pop("direction", "up") == "down":
            down[name] = keys
        else:
            up[name] = keys
    return up, down


def start(env, name, pg_setup=None):
    """PostgreSQL with the example's center schema, its hub, a branch
    JKT-01 and its agent on a new POS file from pos.sql (not yet
    initialized). Returns (pg, hub, agent, branch id)."""
    pg = env.postgres()
    with open(example(name, "center.sql")) as f:
        pg.psql(f.read())
    if pg_setup:
        pg_setup(pg)
    up, down = ini_tables(example(name, "hub.ini"))
    hub = env.hub(pg, tables=up, down_tables=down, publish=True)
    hub.migrate()
    key = hub.branch_add("JKT-01")
    db = os.path.join(env.dir, name + ".db")
    c = sqlite3.connect(db)
    with open(example(name, "pos.sql")) as f:
        c.executescript(f.read())
    c.close()
    up, down = ini_tables(example(name, "agent.ini"))
    agent = env.agent(name, "JKT-01", key, hub.url, db=db, tables=up,
                      down_tables=down, nudge=hub.publish_url,
                      pull_interval_ms=1000)
    return pg, hub, agent, hub.branch_id("JKT-01")


# ------------------------------------------------------ electron-retail

SALE_COLS = ("id", "invoice_no", "user_id", "total", "paid", "change_due",
             "payment_method", "customer_name", "status", "created_at",
             "updated_at")
ITEM_COLS = ("id", "sale_id", "product_id", "product_name", "qty", "price",
             "subtotal")


def save_sale(c, sid, status, synced=0):
    """The app's save: the whole sale with INSERT OR REPLACE, its items
    inserted once, in one transaction."""
    total = 1000 + sid * 7
    c.execute("BEGIN")
    c.execute("INSERT OR REPLACE INTO sales(id, invoice_no, user_id, total, "
              "paid, change_due, payment_method, customer_name, status, "
              "created_at, updated_at, is_synced) VALUES (?, ?, 1, ?, ?, 0, "
              "'cash', ?, ?, '2026-12-01 09:00:00', ?, ?)",
              (sid, "INV-%05d" % sid, total, total if status == "paid"
               else 0, "cust %d" % sid if sid % 3 else None, status,
               "2026-12-01 09:%02d:00" % (sid % 60), synced))
    if status == "open":
        for n in range(2):
            c.execute("INSERT INTO sale_items(sale_id, product_id, "
                      "product_name, qty, price, subtotal, is_synced) VALUES "
                      "(?, ?, ?, ?, 500, ?, ?)",
                      (sid, n + 1, "item %d" % n, n + 1, 500 * (n + 1),
                       synced))
    c.execute("COMMIT")


def center_equal(pg, db, bid, table, cols):
    pos = sorted(tuple(r) for r in bstest.sqlite_all(
        db, "SELECT %s FROM %s" % (", ".join(cols), table)))
    center = sorted(tuple(r) for r in pg.psql(
        "SELECT %s FROM %s WHERE branch_id = %%s" % (", ".join(cols), table),
        (bid,)))
    check_eq(len(center), len(pos), "%s: as many rows at the center as at "
             "the POS" % table)
    check(center == pos, "%s: every row equal at the center" % table)


def electron_retail(env):
    def products(pg):
        pg.psql("INSERT INTO products(id, name, sku, price, category) "
                "SELECT g, 'product ' || g, 'SKU' || g, 100 * g, 'food' "
                "FROM generate_series(1, 40) g")
    pg, hub, agent, bid = start(env, "electron-retail", products)
    db = agent.db
    c = bstest.sqlite_connect(db)
    # A year of history: the old sync loop marked half of it synced.
    for sid in range(1, 41):
        save_sale(c, sid, "open", synced=sid % 2)
        save_sale(c, sid, "paid", synced=sid % 2)
    r = agent.init("--wal", "--initial-load")
    check("queued" in (r.stdout + r.stderr).lower(), "init --initial-load "
          "reports what it queued", r.stdout + r.stderr)
    hub.start()
    agent.start()
    # The app keeps selling: open, then paid, each an INSERT OR REPLACE.
    for sid in range(41, 101):
        save_sale(c, sid, "open")
        save_sale(c, sid, "paid")
        c.execute("INSERT OR REPLACE INTO settings(key, value) VALUES "
                  "('last_invoice', ?)", ("INV-%05d" % sid,))
    c.close()
    agent.wait_drained(hub=hub)
    bstest.wait_until(lambda: bstest.sqlite_one(
        db, "SELECT count(*) FROM sales WHERE is_synced = 0")[0] == 0
        and bstest.sqlite_one(db, "SELECT count(*) FROM sale_items WHERE "
                              "is_synced = 0")[0] == 0, 60,
        "every sale and item to be is_synced = 1",
        alive=[agent.proc, hub.proc])
    center_equal(pg, db, bid, "sales", SALE_COLS)
    center_equal(pg, db, bid, "sale_items", ITEM_COLS)
    check_eq(pg.psql("SELECT count(*) FROM sales WHERE branch_id = %s",
                     (bid,))[0][0], 100, "100 sales at the center")
    check_eq(bstest.sqlite_one(db, "SELECT count(*) FROM _branchsync_log "
                               "WHERE tbl = 'settings'")[0], 0,
             "the local settings table is never captured")
    bstest.wait_until(lambda: bstest.sqlite_one(
        db, "SELECT count(*), sum(price) FROM products")
        == (40, sum(100 * g for g in range(1, 41))), 60,
        "head office's products to reach the POS",
        alive=[agent.proc, hub.proc])
    agent.stop()
    hub.stop()


# ------------------------------------------------------ finance-sidecar

def finance_sidecar(env):
    pg, hub, agent, bid = start(env, "finance-sidecar")
    db = agent.db
    agent.init()
    hub.start()
    agent.start()
    c = bstest.sqlite_connect(db)
    jids = [str(uuid.uuid4()) for _ in range(30)]
    cids = [str(uuid.uuid4()) for _ in range(10)]
    for n, j in enumerate(jids):
        c.execute("INSERT INTO journal_entries(id, branch_id, account, "
                  "amount, memo, posted_at) VALUES (?, 'JKT-01', ?, ?, ?, "
                  "?)", (j, "4-%03d" % n, 12345678900 + n, "memo %d" % n,
                         "2026-12-07T10:%02d:00+07:00" % n))
    for n, k in enumerate(cids):
        c.execute("INSERT INTO cash_counts(id, branch_id, counted_by, "
                  "amount, counted_at) VALUES (?, 'JKT-01', 'ana', ?, ?)",
                  (k, 500000 * (n + 1), "2026-12-07T21:%02d:30+07:00" % n))
    agent.wait_drained(hub=hub)
    bstest.wait_until(lambda: bstest.sqlite_one(
        db, "SELECT count(*) FROM journal_entries WHERE is_synced = 1")[0]
        == 30, 60, "the journal to be synced", alive=[agent.proc, hub.proc])
    # The app's own upload stamp: not captured, is_synced stays 1.
    high = agent.state()["high_seq"]
    c.execute("UPDATE journal_entries SET synced_at = "
              "'2026-12-07T23:00:00+07:00', is_synced = 1")
    c.execute("UPDATE cash_counts SET synced_at = '2026-12-07T23:00:00+07:00'")
    check_eq(agent.state()["high_seq"], high, "the app's synced_at stamps "
             "create no event")
    check_eq(bstest.sqlite_one(db, "SELECT count(*) FROM journal_entries "
                               "WHERE is_synced = 1")[0], 30,
             "and leave is_synced = 1")
    c.execute("UPDATE journal_entries SET amount = 7 WHERE id = ?",
              (jids[0],))
    c.execute("DELETE FROM cash_counts WHERE id = ?", (cids[0],))
    c.close()
    agent.wait_drained(hub=hub)
    rows = pg.psql("SELECT id::text, branch_id, branch_code, account, "
                   "amount, posted_at FROM journal_entries ORDER BY account")
    check_eq(len(rows), 30, "30 journal entries at the center")
    tz = datetime.timezone(datetime.timedelta(hours=7))
    for n, r in enumerate(rows):
        check_eq(r, (jids[n], bid, "JKT-01", "4-%03d" % n,
                     7 if n == 0 else 12345678900 + n,
                     datetime.datetime(2026, 12, 7, 10, n, tzinfo=tz)),
                 "journal entry %d: its uuid, branchsync's id in branch_id, "
                 "the app's code in branch_code, money and time exact" % n)
    rows = pg.psql("SELECT id::text, origin_branch, branch_id, amount, "
                   "counted_at FROM cash_counts ORDER BY amount")
    check_eq([r[0] for r in rows], cids[1:], "cash counts: all but the "
             "deleted one, by uuid")
    check(all(r[1] == bid and r[2] == "JKT-01" for r in rows),
          "cash counts: branchsync's id in origin_branch, the app's "
          "branch_id as it is", rows[:2])
    check_eq(rows[0][4], datetime.datetime(2026, 12, 7, 21, 1, 30,
                                           tzinfo=tz),
             "cash counts: the ISO text time as timestamptz")
    cols = {r[0] for r in pg.psql(
        "SELECT column_name FROM information_schema.columns WHERE "
        "table_name IN ('journal_entries', 'cash_counts')")}
    check("synced_at" not in cols, "the center has no synced_at (never "
          "sent)")
    agent.stop()
    hub.stop()


def main(env):
    electron_retail(env)
    finance_sidecar(env)


bstest.run(main)
