"""test_ahead: values read at send time may be ahead of their event; a
batch boundary between such an event and the rows its values refer to
must not set anything aside (issue 4: one bad row never blocks, and no
false reject either).

The agent reads a row's values when it sends the row's event, so an event
of a row written again later carries the later values. When those refer
to a row whose own event lies after the batch, the center cannot apply
them yet (a deferred foreign key fails at COMMIT). The POS file is
written before the agent starts, so batches of 2 events fall as below:

1. reparenting: sale 1 with item 1, then sale 2, then item 1 moved to
   sale 2. The batch [sale 1, item 1] reads item 1 pointing at sale 2,
   whose insert is in the next batch.
2. a key reused after a delete (SQLite gives a deleted max rowid again):
   sale 3 with items 2 and 3 is deleted, sale 3 comes back with item 2,
   then sale 4 with item 3. The batch [item 3 insert, item 2 delete] reads
   item 3 pointing at sale 4.

The agent sends such an event "ahead" (a later event of the row is
pending); the hub skips it when it fails, and the later event brings the
row. At the end: no reject at either end, every row at the center once
with equal values (item 1 in sale 2, item 3 in sale 4), every POS row
is_synced = 1, the log drained to its marker.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check_eq  # noqa: E402

TX = ("INSERT INTO transactions(id, store_id, user_id, total_cost, "
      "payment_type, payment_method, received_amount, change_amount, "
      "customer_name, payment_status, created_at, updated_at, tax) VALUES "
      "(?, 1, 1, 100, 'sale', 'cash', 100, 0, NULL, 'paid', "
      "'2026-01-01 10:00:00', '2026-01-01 10:00:00', 7)")
ITEM = ("INSERT INTO transaction_items(id, transaction_id, product_id, "
        "product_name, qty, price, subtotal) VALUES (?, ?, 1, 'Tea', 1, "
        "100, 100)")


def pos(db, *stmts):
    """Runs (sql, params) pairs in one POS transaction."""
    c = bstest.sqlite_connect(db)
    try:
        c.execute("BEGIN IMMEDIATE")
        for sql, params in stmts:
            c.execute(sql, params)
        c.execute("COMMIT")
    finally:
        c.close()


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    bid = hub.branch_id("b1")
    agent = env.agent("pos", "b1", key, hub.url, max_batch_events=2)
    agent.init()
    db = agent.db

    # 1. reparenting: seqs 1-2 | 3-4 | 5
    pos(db, (TX, (1,)), (ITEM, (1, 1)))
    pos(db, (TX, (2,)))
    pos(db, ("INSERT INTO payments(transaction_id, line_no, method, amount)"
             " VALUES (2, 1, 'cash', 100)", ()))
    pos(db, ("UPDATE transaction_items SET transaction_id = 2 WHERE id = 1",
             ()))
    # 2. reuse: seqs 6-7 | 8-9 | 10-11 | 12-13 | 14-15
    pos(db, (TX, (3,)), (ITEM, (2, 3)), (ITEM, (3, 3)))
    pos(db, ("DELETE FROM transaction_items WHERE transaction_id = 3", ()),
        ("DELETE FROM transactions WHERE id = 3", ()))
    pos(db, (TX, (3,)), (ITEM, (2, 3)))
    pos(db, (TX, (4,)), (ITEM, (3, 4)))
    log = bstest.sqlite_all(db, "SELECT seq, tbl, op, k FROM "
                            "_branchsync_log ORDER BY seq")
    bstest.log("log: %r" % (log,))
    check_eq([(r[0], r[1], r[3]) for r in log if r[0] in (2, 5, 8, 10, 15)],
             [(2, "transaction_items", 1), (5, "transaction_items", 1),
              (8, "transaction_items", 3), (10, "transaction_items", 3),
              (15, "transaction_items", 3)],
             "the log holds the entries the batches are planned around")

    hub.start()
    agent.start()
    agent.wait_drained(timeout=60, hub=hub)
    check_eq(agent.state()["rejected"], 0, "no reject at the branch")
    check_eq(pg.psql("SELECT count(*) FROM branchsync.reject")[0][0], 0,
             "no reject at the center")
    check_eq(pg.psql("SELECT id, transaction_id FROM "
                     "public.transaction_items WHERE branch_id = %s "
                     "ORDER BY id", (bid,)), [(1, 2), (2, 3), (3, 4)],
             "item 1 in sale 2, item 2 in the new sale 3, item 3 in sale 4")
    bstest.check_replicated(pg, hub, agent)
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
