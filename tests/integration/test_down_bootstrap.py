"""test_down_bootstrap: a new branch gets 50,000 products.

50,000 products exist at the center before the branch does: 25,000
inserted before `migrate` installs the feed trigger (so they reach the
feed by migrate's backfill) and 25,000 after (by the trigger). Then the
branch is added and its agent started on an empty POS file: every
product arrives, equal column by column over the columns both have, in
pages of at most max_pull_rows. The time from the agent's start to the
last row is logged (the benchmark measures it on durable settings).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

N = 50000


def count(db):
    return bstest.sqlite_one(db, "SELECT count(*) FROM products")[0]


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, publish=True, down_tables=bstest.DOWN_TABLES)
    pg.apply_file(bstest.source_file("deploy", "center", "retail.sql"))
    bstest.seed_products(pg, 1, N // 2)
    hub.migrate()
    check_eq(bstest.feed_count(pg)[0], N // 2, "migrate backfilled the feed "
             "with the rows that existed before it")
    hub.migrate()
    check_eq(bstest.feed_count(pg)[0], N // 2, "a second migrate adds no "
             "feed records")
    bstest.seed_products(pg, N // 2 + 1, N)
    check_eq(bstest.feed_count(pg)[0], N, "the trigger fed the rest")
    hub.start()
    a, bid = bstest.down_agent(env, hub, "newbranch", start=False,
                               max_pull_rows=5000)
    t0 = time.monotonic()
    a.start()
    bstest.wait_until(lambda: count(a.db) >= N, 120, "all %d products at "
                      "the new branch" % N, interval=0.05,
                      alive=[a.proc, hub.proc])
    dt = time.monotonic() - t0
    bstest.log("bootstrap: %d rows in %.2f s from agent start (%.0f rows/s)"
               % (N, dt, N / dt))
    check_eq(bstest.compare_down(a.db, pg, "products", bid), N,
             "all products arrived, equal column by column")
    check_eq(bstest.sqlite_one(a.db, "SELECT count(*) FROM products WHERE "
                               "is_synced IS NOT 1")[0], 0,
             "every downstream row is_synced = 1")
    bstest.wait_until(lambda: int(a.meta().get("down_cursor") or 0)
                      == bstest.feed_count(pg, bid)[1], 10,
                      "down_cursor to be the feed's last id", alive=[a.proc])
    check(True, "down_cursor = the feed's last id")
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
