"""test_down_latency: a branch's price change reaches that branch only.

Two branches A and B run with nudges on (the hub publishes, the agents
subscribe) and a periodic pull of 60 s, so only a nudge can be fast.
Both bootstrap 20 products and their own branch_prices. Then, 10 times,
a price of A is updated at the center: each must be in A's POS file
within 2 s of the UPDATE's commit. A price row for a product only A is
priced for is inserted: it reaches A, never B. B stays connected and
receives a chain-wide product change meanwhile, which proves it pulls;
after a wait B's branch_prices equal B's rows at the center, A's row is
not there, and A's prices never appear in B's file.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

ROUNDS = 10
LIMIT_S = 2.0


def price_at(db, pid):
    r = bstest.sqlite_one(db, "SELECT price FROM branch_prices WHERE "
                          "product_id = ?", (pid,))
    return None if r is None else r[0]


def main(env):
    rng = random.Random(7)
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 20)
    a, aid = bstest.down_agent(env, hub, "A", pull_interval_ms=60000,
                               start=False)
    b, bid = bstest.down_agent(env, hub, "B", pull_interval_ms=60000,
                               start=False)
    bstest.seed_branch_rows(pg, "branch_prices", aid, 1, 20, 1000)
    bstest.seed_branch_rows(pg, "branch_prices", bid, 1, 19, 2000)
    a.start()
    b.start()
    for ag, br in ((a, aid), (b, bid)):
        bstest.wait_down_converged(ag, pg, br, timeout=30, alive=[hub.proc])

    lat = []
    for i in range(ROUNDS):
        pid = rng.randint(1, 19)
        newp = 5000 + i
        pg.psql("UPDATE public.branch_prices SET price = %s WHERE "
                "branch_id = %s AND product_id = %s", (newp, aid, pid))
        t0 = time.monotonic()
        bstest.wait_until(lambda: price_at(a.db, pid) == newp, 10,
                          "price %d of product %d in A's file" % (newp, pid),
                          interval=0.002, alive=[a.proc, hub.proc])
        lat.append(time.monotonic() - t0)
        time.sleep(rng.uniform(0.05, 0.3))
    bstest.log("commit-to-branch latency: %s ms" % ", ".join(
        "%.0f" % (x * 1000) for x in lat))
    check(max(lat) <= LIMIT_S, "each of %d price changes of A reached A's "
          "file within %.0f s (max %.0f ms)" % (ROUNDS, LIMIT_S,
                                               max(lat) * 1000))

    # A row only A has: product 20 is priced for A, not for B.
    pg.psql("UPDATE public.branch_prices SET price = 7777 WHERE branch_id = "
            "%s AND product_id = 20", (aid,))
    pg.psql("UPDATE public.products SET name = 'Renamed 7' WHERE id = 7")
    t0 = time.monotonic()
    bstest.wait_until(lambda: price_at(a.db, 20) == 7777, 10,
                      "A's own product-20 price in A's file",
                      interval=0.002, alive=[a.proc, hub.proc])
    check(time.monotonic() - t0 <= LIMIT_S, "A's product-20 price arrived "
          "within %.0f s" % LIMIT_S)
    bstest.wait_until(lambda: bstest.sqlite_one(
        b.db, "SELECT name FROM products WHERE id = 7") == ("Renamed 7",),
        10, "the chain-wide rename to reach B", alive=[b.proc, hub.proc])
    check(True, "B is connected and pulling: a chain-wide change reached it")
    time.sleep(2)
    check_eq(price_at(b.db, 20), None, "B's file has no price for product 20"
             " (A's row never reached B)")
    c = bstest.sqlite_connect(b.db)
    bad = c.execute("SELECT count(*) FROM branch_prices WHERE price >= 5000"
                    ).fetchone()[0]
    c.close()
    check_eq(bad, 0, "none of A's prices appear in B's file")
    bstest.compare_down(b.db, pg, "branch_prices", bid)
    bstest.compare_down(a.db, pg, "branch_prices", aid)
    bstest.compare_down(b.db, pg, "products", bid)
    check_eq(a.stop(), 0, "agent A exits 0 on SIGTERM")
    check_eq(b.stop(), 0, "agent B exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
