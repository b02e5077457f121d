"""test_down_echo: up and down traffic of one branch do not echo.

Branch b1 sends its sales up (possim) and receives its prices and stock
allocations down; the center's stock trigger turns every replicated
sale item into an allocation change, which flows down again. For 5 s
sales (20/s) and price changes of b1 (20/s) happen at the same moments.
After both settle: the upstream tables at the center equal the POS
file's, the down tables at the POS equal the center's, the POS log
(_branchsync_log) has no entry of a down table (the downstream apply is
not captured), and then for 3 s nothing moves: not the change feed for
b1 (count and max id), not the hub's watermark, not the POS log.
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SECONDS = 5
RATE = 20


def main(env):
    rng = random.Random(11)
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 20)
    a, bid = bstest.down_agent(env, hub, "b1", start=False,
                               pull_interval_ms=1000)
    bstest.seed_branch_rows(pg, "branch_prices", bid, 1, 20, 1000)
    bstest.seed_branch_rows(pg, "stock_allocations", bid, 1, 20, 10000)
    a.start()
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])

    res = {}

    def sales():
        res["possim"] = bstest.possim_run(a.db, sales=SECONDS * RATE,
                                          seed=12, rate=RATE)
    t = threading.Thread(target=sales)
    t.start()
    c = pg.connect()
    t0 = time.monotonic()
    n = 0
    while n < SECONDS * RATE:
        ahead = t0 + n / RATE - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        c.cursor().execute("UPDATE public.branch_prices SET price = %s "
                           "WHERE branch_id = %s AND product_id = %s",
                           (rng.randint(1, 99999), bid, rng.randint(1, 20)))
        n += 1
    c.close()
    t.join()
    check(res["possim"]["sales"] == SECONDS * RATE, "%d sales and %d price "
          "changes written at the same time" % (SECONDS * RATE, n))

    a.wait_drained(timeout=60, hub=hub)
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])
    bstest.check_replicated(pg, hub, a)
    moved = pg.psql("SELECT count(*) FROM public.stock_allocations WHERE "
                    "branch_id = %s AND qty <> 10000 + product_id", (bid,))
    check(moved[0][0] > 0, "sales moved %d allocations at the center, which "
          "flowed down" % moved[0][0])
    down_in_log = bstest.sqlite_one(
        a.db, "SELECT count(*) FROM _branchsync_log WHERE tbl IN (%s)"
        % ", ".join("'%s'" % x for x in bstest.DOWN_TABLES))[0]
    check_eq(down_in_log, 0, "_branchsync_log has no entry of a down table")

    feed0, wm0, st0 = (bstest.feed_count(pg, bid), hub.watermarks("b1"),
                       a.state())
    time.sleep(3)
    feed1, wm1, st1 = (bstest.feed_count(pg, bid), hub.watermarks("b1"),
                       a.state())
    check_eq(feed1, feed0, "the change feed for b1 is still (count, max id)"
             " over 3 s")
    check_eq(wm1, wm0, "the hub's watermark for b1 does not move")
    check_eq((st1["high_seq"], st1["pending"]), (st0["high_seq"], 0),
             "the POS log does not grow")
    check_eq(int(a.meta()["down_cursor"]), feed1[1], "down_cursor = the "
             "feed's last id for b1")
    for t in ("branch_prices", "stock_allocations"):
        check_eq(bstest.sqlite_one(a.db, "SELECT count(*) FROM %s WHERE "
                                   "is_synced IS NOT 1" % t)[0], 0,
                 "%s: every row is_synced = 1" % t)
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
