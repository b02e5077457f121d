"""test_down_order: a change committed after a later id still arrives.

Feed ids are drawn when a transaction writes, not when it commits. Here a
head-office transaction T1 updates product 1 (drawing id N) and stays
open; meanwhile product 2 is updated and committed (id N + 1), which
nudges the branch. Its pull must not move the cursor past N while T1 is
in flight: the hub reads pages holding the feed lock, so the pull waits
for T1. When T1 commits, both new names are at the branch, and the
branch's cursor equals the highest id in the feed.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check_eq  # noqa: E402


def main(env):
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 10)
    a, bid = bstest.down_agent(env, hub, "b1", pull_interval_ms=60000)
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])

    t1 = pg.connect()
    t1.autocommit = False
    cur = t1.cursor()
    cur.execute("UPDATE public.products SET name = 'early id' WHERE id = 1")
    # T1 holds its feed id. A later change commits and nudges the branch;
    # its pull waits for T1 in the hub, which must not block this script.
    other = threading.Thread(target=pg.psql, args=(
        "UPDATE public.products SET name = 'later id' WHERE id = 2",))
    other.start()
    time.sleep(2.0)
    bstest.log("while T1 is open: feed %s, branch cursor %s" % (
        pg.psql("SELECT id, key::text FROM branchsync.change WHERE"
                " tbl = 'products' AND key IN ('[1]', '[2]') ORDER BY id"),
        a.meta().get("down_cursor")))
    t1.commit()
    t1.close()

    bstest.wait_until(lambda: bstest.sqlite_one(
        a.db, "SELECT name FROM products WHERE id = 1") == ("early id",),
        15, "the change committed last (with the lower id) to arrive",
        alive=[a.proc, hub.proc])
    check_eq(bstest.sqlite_one(a.db, "SELECT name FROM products WHERE "
                               "id = 2"), ("later id",),
             "the change committed first arrived too")
    top = pg.psql("SELECT max(id) FROM branchsync.change")[0][0]
    bstest.wait_until(lambda: int(a.meta().get("down_cursor") or 0) == top,
                      10, "the branch's cursor to reach the feed's last id",
                      alive=[a.proc, hub.proc])
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
