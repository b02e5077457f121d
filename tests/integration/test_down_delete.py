"""test_down_delete: a delete at head office arrives as a delete.

A branch bootstraps 50 products, its 50 prices and 50 stock
allocations. At the center then: products 10-14 are deleted, the price
of product 20 is deleted, an allocation's key changes (UPDATE of
product_id, which the feed turns into a tombstone of the old key plus an
upsert of the new), and a product is deleted and inserted again with
the same id. The change feed holds tombstones (op 2, row NULL) for the
deleted keys; the POS file no longer has those rows and equals the
center column by column. A delete of a row the branch never had is
harmless, and the agent is stopped during one delete to show a
tombstone is delivered on the next pull as well.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402


def main(env):
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 50)
    a, bid = bstest.down_agent(env, hub, "b1", pull_interval_ms=60000,
                               start=False)
    bstest.seed_branch_rows(pg, "branch_prices", bid, 1, 50, 1000)
    bstest.seed_branch_rows(pg, "stock_allocations", bid, 1, 50, 500)
    a.start()
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])

    pg.psql("DELETE FROM public.products WHERE id BETWEEN 10 AND 14")
    pg.psql("DELETE FROM public.branch_prices WHERE branch_id = %s AND "
            "product_id = 20", (bid,))
    pg.psql("UPDATE public.stock_allocations SET product_id = 99 WHERE "
            "branch_id = %s AND product_id = 30", (bid,))
    pg.psql("DELETE FROM public.products WHERE id = 40")
    pg.psql("INSERT INTO public.products(id, name, price) VALUES "
            "(40, 'Back again', 4040)")
    pg.psql("DELETE FROM public.branch_prices WHERE branch_id = %s AND "
            "product_id = 12345", (bid,))  # a row nobody has: no change
    tomb = pg.psql("SELECT tbl, key::text FROM branchsync.change WHERE op = 2"
                   " AND row IS NULL ORDER BY tbl, key::text")
    bstest.log("tombstones: %s" % tomb)
    check_eq(sorted(tomb), sorted([("branch_prices", "[20]")]
                                  + [("products", "[%d]" % i)
                                     for i in range(10, 15)]
                                  + [("stock_allocations", "[30]")]),
             "the feed holds a tombstone (op 2, row NULL) per deleted key")
    bstest.wait_until(lambda: bstest.sqlite_one(
        a.db, "SELECT count(*) FROM products WHERE id BETWEEN 10 AND 14")[0]
        == 0, 10, "products 10-14 to be deleted at the branch",
        alive=[a.proc, hub.proc])
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])
    check_eq(bstest.sqlite_one(a.db, "SELECT count(*) FROM branch_prices "
                               "WHERE product_id = 20")[0], 0,
             "the deleted price is gone at the branch")
    check_eq(bstest.sqlite_one(a.db, "SELECT product_id, qty FROM "
                               "stock_allocations WHERE product_id IN "
                               "(30, 99) ORDER BY 1"), (99, 530),
             "a key change arrived as delete of the old key + new row")
    check_eq(bstest.sqlite_one(a.db, "SELECT name FROM products WHERE "
                               "id = 40"), ("Back again",),
             "a row deleted and inserted again is there with its new values")

    # A delete while the agent is stopped arrives on its next pull.
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    pg.psql("DELETE FROM public.products WHERE id = 1")
    pg.psql("DELETE FROM public.stock_allocations WHERE branch_id = %s",
            (bid,))
    a.start()
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])
    check_eq(bstest.sqlite_one(a.db, "SELECT count(*) FROM "
                               "stock_allocations")[0], 0,
             "all allocations deleted while the agent was down are gone")
    check(bstest.sqlite_one(a.db, "SELECT 1 FROM products WHERE id = 1")
          is None, "product 1 deleted while the agent was down is gone")
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
