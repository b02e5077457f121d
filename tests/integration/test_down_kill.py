"""test_down_kill: an agent killed in the middle of a bootstrap resumes.

100,000 products wait at the center for a new branch whose agent asks
for pages of 500 rows. When part of them has arrived the agent is
SIGKILLed; its down_cursor and row count are read from the file. Then
the row of product 1, which had arrived, is changed directly in the POS
file (a marker: products has no capture triggers). After the restart:
the down_cursor never goes below the one at the kill (sampled every few
ms from the start), the rows the hub still had to send for the branch
(feed ids above that cursor) are fewer than the total, the marker is
untouched once all rows are there (a restart from cursor 0 would have
overwritten it), and every other product arrived equal column by
column. Two kills: at 20% and at 60% of the rows. Nothing is applied half: the
row count at each kill is a whole number of pages.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

N = 100000
PAGE = 500


def count(db):
    return bstest.sqlite_one(db, "SELECT count(*) FROM products")[0]


def cursor(a):
    try:
        return int(a.meta().get("down_cursor") or 0)
    except Exception:  # the file may be busy for a moment
        return -1


def main(env):
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, N)
    a, bid = bstest.down_agent(env, hub, "b1", start=False,
                               max_pull_rows=PAGE)
    kills = []
    low = None  # lowest down_cursor seen since the last restart
    a.start()
    for frac in (0.2, 0.6, 1.0):
        def progress():
            nonlocal low
            v = cursor(a)
            if v >= 0 and low is not None:
                low = min(low, v)
            return count(a.db) >= N * frac
        bstest.wait_until(progress, 120, "%d%% of the rows" % (frac * 100),
                          interval=0.003, alive=[a.proc, hub.proc])
        if kills:
            cur = kills[-1][0]
            check(low >= cur, "after the restart down_cursor never went "
                  "below %d (lowest seen %d)" % (cur, low))
        if frac == 1.0:
            break
        a.kill()
        cur, n = cursor(a), count(a.db)
        bstest.log("killed with down_cursor %d, %d rows in the file"
                   % (cur, n))
        check(0 < n < N, "SIGKILL came in the middle of the bootstrap "
              "(%d of %d rows)" % (n, N))
        check_eq(n % PAGE, 0, "the file holds whole pages only")
        left = pg.psql("SELECT count(*) FROM branchsync.change WHERE scope "
                       "IN (0, %s) AND id > %s", (bid, cur))[0][0]
        check_eq(left, N - n, "the feed records after the cursor are the "
                 "rows still missing")
        kills.append((cur, n, left))
        c = bstest.sqlite_connect(a.db)
        c.execute("UPDATE products SET name = 'MARKER' WHERE id = 1")
        c.close()
        low = cur
        a.start()
    check_eq(bstest.sqlite_one(a.db, "SELECT name FROM products WHERE id = 1"),
             ("MARKER",), "product 1 was not pulled again (no restart "
             "from cursor 0)")
    for cur, n, left in kills:
        check(left < N, "resumed with %d of %d rows left to pull" % (left, N))
    bstest.compare_down(a.db, pg, "products", bid, where_pos="WHERE id <> 1",
                        where_pg="id <> 1")
    check_eq(bstest.sqlite_one(a.db, "SELECT count(*) FROM products")[0], N,
             "all %d products at the branch" % N)
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
