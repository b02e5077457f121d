"""test_down_stock: central stock from replicated sales.

Five branches sell (possim, fixed seeds, 200 sales each, 1,000 in all,
with its usual later updates and deletes) products 1-20, which have
stock allocations at the center for each branch; for branch 5 only
products 1-15 are allocated, so sales of 16-20 create allocation rows
with a negative quantity. The sales replicate up; the center's trigger
on transaction_items moves stock by deltas. Afterwards, for every
(branch, product): allocation = start - sum(qty) over that branch's
transaction_items rows at the center (the replicated rows, equal to the
POS's, are the truth), and each branch's POS stock_allocations equal
its center rows. Before the check some items are changed at the POS (a
larger quantity; another product), which the center's trigger turns
into deltas as well.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

BRANCHES = 5
SALES = 200
START = 100000


def main(env):
    pg, hub = bstest.down_center(env, workers=2)
    bstest.seed_products(pg, 1, 20)
    agents = []
    start = {}
    for i in range(BRANCHES):
        a, bid = bstest.down_agent(env, hub, "s%d" % (i + 1), start=False,
                                   pull_interval_ms=5000,
                                   log_level="notice")
        last = 15 if i == BRANCHES - 1 else 20
        bstest.seed_branch_rows(pg, "stock_allocations", bid, 1, last, START)
        for p in range(1, last + 1):
            start[(bid, p)] = START + p
        agents.append((a, bid))
    for a, _ in agents:
        a.start()
    for a, bid in agents:
        bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])

    res = {}

    def sell(a, seed):
        res[a.name] = bstest.possim_run(a.db, sales=SALES, seed=seed,
                                        rate=100)
    ths = [threading.Thread(target=sell, args=(a, 100 + i))
           for i, (a, _) in enumerate(agents)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    check_eq(sum(r["sales"] for r in res.values()), BRANCHES * SALES,
             "sales written")
    check(sum(r["deletes"] for r in res.values()) > 0,
          "some sales were deleted again (their items give stock back)")
    # possim never changes an item; a till correcting a line does: the
    # quantity of some items changes, and some move to another product.
    for i, (a, _) in enumerate(agents):
        c = bstest.sqlite_connect(a.db)
        c.execute("BEGIN IMMEDIATE")
        c.execute("UPDATE transaction_items SET qty = qty + 2 WHERE id %% 17 "
                  "= %d" % i)
        c.execute("UPDATE transaction_items SET product_id = product_id %% 20"
                  " + 1 WHERE id %% 23 = %d" % i)
        c.execute("COMMIT")
        c.close()
    for a, bid in agents:
        a.wait_drained(timeout=60, hub=hub)
        bstest.compare_table(a.db, pg, "transaction_items", bid)

    sold = {(b, p): q for b, p, q in pg.psql(
        "SELECT branch_id, product_id, sum(qty) FROM "
        "public.transaction_items GROUP BY 1, 2")}
    alloc = {(b, p): q for b, p, q in pg.psql(
        "SELECT branch_id, product_id, qty FROM public.stock_allocations")}
    want = {}
    for k in set(start) | set(sold):
        want[k] = start.get(k, 0) - int(sold.get(k, 0))
    bad = [(k, alloc.get(k), w) for k, w in sorted(want.items())
           if alloc.get(k) != w]
    check(not bad, "each of %d (branch, product) allocations = start - "
          "sold" % len(want), "first differences (key, got, want): %s"
          % bad[:5])
    # A row created by a sale whose items were all deleted again holds 0.
    extra = [k for k in set(alloc) - set(want) if alloc[k] != 0]
    check(not extra, "no other allocation rows (but zeros)", sorted(extra)[:5])
    neg = [k for k in want if k not in start]
    check(len(neg) > 0 and all(alloc[k] < 0 for k in neg if sold.get(k)),
          "%d allocations created by sales with a negative quantity"
          % len(neg))
    for a, bid in agents:
        bstest.wait_down_converged(a, pg, bid, ["stock_allocations"],
                                   timeout=30, alive=[hub.proc])
    for a, _ in agents:
        check_eq(a.stop(), 0, "%s exits 0 on SIGTERM" % a.name)
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
