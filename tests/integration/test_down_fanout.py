"""test_down_fanout: a product added at head office reaches every branch.

Three branches bootstrap 100 chain-wide products (scope all). Then a
product is added, one is updated and a batch of 50 is added in one
transaction at the center: each branch's POS file gets them all, equal
column by column to the center's rows over the columns both have. The
POS-only columns of products (store_id, stock) keep their local values:
a down upsert touches only the columns it received.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

CODES = ("north", "south", "east")


def main(env):
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 100)
    agents = []
    for code in CODES:
        agents.append(bstest.down_agent(env, hub, code,
                                        pull_interval_ms=60000))
    for ag, bid in agents:
        bstest.wait_down_converged(ag, pg, bid, ["products"], timeout=30,
                                   alive=[hub.proc])
    # A POS-only column set locally must survive downstream upserts.
    for ag, _ in agents:
        c = bstest.sqlite_connect(ag.db)
        c.execute("UPDATE products SET stock = 42, store_id = 9 WHERE id = 5")
        c.close()

    pg.psql("INSERT INTO public.products(id, name, sku, barcode, price, "
            "cost_price, category, is_active, created_at, updated_at) VALUES "
            "(1001, 'Espresso machine', 'ESP-1', '4006381333931', 24900, "
            "18000, 'kitchen', 1, '2024-05-01 09:30:00', "
            "'2024-05-01 09:30:00')")
    t0 = time.monotonic()
    for ag, bid in agents:
        bstest.wait_until(lambda: bstest.sqlite_one(
            ag.db, "SELECT name FROM products WHERE id = 1001"), 10,
            "product 1001 at %s" % ag.name, interval=0.01,
            alive=[ag.proc, hub.proc])
    bstest.log("product 1001 at all %d branches after %.0f ms"
               % (len(agents), (time.monotonic() - t0) * 1000))
    pg.psql("UPDATE public.products SET price = price + 1, "
            "updated_at = '2024-05-02 10:00:00' WHERE id = 5")
    pg.psql("BEGIN; INSERT INTO public.products(id, name, price) SELECT g, "
            "'Batch ' || g, g FROM generate_series(2001, 2050) g; COMMIT")
    for ag, bid in agents:
        n = bstest.wait_down_converged(ag, pg, bid, ["products"], timeout=30,
                                       alive=[hub.proc])
        check_eq(n, 151, "%s holds all 151 products" % ag.name)
        check_eq(bstest.sqlite_one(ag.db, "SELECT stock, store_id, price "
                                   "FROM products WHERE id = 5"),
                 (42, 9, 106), "%s: product 5 has the new price and kept "
                 "its local stock and store_id" % ag.name)
        check_eq(bstest.sqlite_one(ag.db, "SELECT count(*) FROM products "
                                   "WHERE is_synced IS NOT 1")[0], 0,
                 "%s: every downstream row is_synced = 1" % ag.name)
        check_eq(bstest.sqlite_one(
            ag.db, "SELECT count(*) FROM _branchsync_log WHERE tbl = "
            "'products'")[0], 0, "%s: downstream writes were not "
            "captured" % ag.name)
    for ag, _ in agents:
        check_eq(ag.stop(), 0, "%s exits 0 on SIGTERM" % ag.name)
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
