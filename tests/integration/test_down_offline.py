"""test_down_offline: a branch that was offline converges when it is back.

Branch b1 bootstraps 200 products, prices and allocations, then its
agent is stopped. While it is down the center makes 1,000 changes, each
its own transaction (fixed seed): inserts, updates and deletes of
products (scope all), of b1's prices and allocations, and of another
branch's prices (which must never reach b1), including updates that
change a key. The agent starts again: its three down tables converge to
the center's rows for b1, compared column by column over the columns
both have, and the other branch's rows are not in the file. The
downstream cursor is the highest change id the branch can see.
"""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

CHANGES = 1000


def main(env):
    rng = random.Random(4)
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 200)
    a, bid = bstest.down_agent(env, hub, "b1", pull_interval_ms=60000,
                               start=False)
    hub.branch_add("b2")
    other = hub.branch_id("b2")
    for br, base in ((bid, 1000), (other, 9000)):
        bstest.seed_branch_rows(pg, "branch_prices", br, 1, 200, base)
        bstest.seed_branch_rows(pg, "stock_allocations", br, 1, 200, base)
    a.start()
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM (branch goes offline)")

    c = pg.connect()
    cur = c.cursor()
    kinds = {}
    next_id = 1000
    for i in range(CHANGES):
        r = rng.random()
        pid = rng.randint(1, 260)
        if r < 0.15:
            kind = "product insert"
            next_id += 1
            cur.execute("INSERT INTO public.products(id, name, price, "
                        "category, created_at) VALUES (%s, %s, %s, 'new', "
                        "'2024-06-01 12:00:00')",
                        (next_id, "New %d" % i, rng.randint(1, 99999)))
        elif r < 0.35:
            kind = "product update"
            cur.execute("UPDATE public.products SET price = %s, name = %s, "
                        "updated_at = '2024-06-02 08:00:01' WHERE id = %s",
                        (rng.randint(1, 99999), "Upd %d" % i, pid))
        elif r < 0.40:
            kind = "product delete"
            cur.execute("DELETE FROM public.products WHERE id = %s", (pid,))
        elif r < 0.62:
            kind = "price upsert"
            cur.execute("INSERT INTO public.branch_prices(branch_id, "
                        "product_id, price) VALUES (%s, %s, %s) ON CONFLICT "
                        "(branch_id, product_id) DO UPDATE SET price = "
                        "EXCLUDED.price", (bid, pid, rng.randint(1, 89999)))
        elif r < 0.67:
            kind = "price delete"
            cur.execute("DELETE FROM public.branch_prices WHERE branch_id = "
                        "%s AND product_id = %s", (bid, pid))
        elif r < 0.70:
            kind = "price key change"
            cur.execute("UPDATE public.branch_prices SET product_id = %s "
                        "WHERE branch_id = %s AND product_id = %s AND NOT "
                        "EXISTS (SELECT 1 FROM public.branch_prices WHERE "
                        "branch_id = %s AND product_id = %s)",
                        (pid + 300, bid, pid, bid, pid + 300))
        elif r < 0.85:
            kind = "allocation update"
            cur.execute("UPDATE public.stock_allocations SET qty = qty + %s "
                        "WHERE branch_id = %s AND product_id = %s",
                        (rng.randint(-5, 50), bid, pid))
        elif r < 0.88:
            kind = "allocation delete"
            cur.execute("DELETE FROM public.stock_allocations WHERE "
                        "branch_id = %s AND product_id = %s", (bid, pid))
        else:
            kind = "other branch price"
            cur.execute("UPDATE public.branch_prices SET price = %s WHERE "
                        "branch_id = %s AND product_id = %s",
                        (rng.randint(90000, 99999), other, pid))
        kinds[kind] = kinds.get(kind, 0) + 1
    c.close()
    bstest.log("changes made while b1 was offline: %s" % kinds)
    check(sum(kinds.values()) == CHANGES and len(kinds) == 9,
          "%d changes of 9 kinds at the center" % CHANGES)

    a.start()
    n = bstest.wait_down_converged(a, pg, bid, timeout=60, alive=[hub.proc])
    check(n > 400, "b1 converged: %d rows in its three down tables" % n)
    check_eq(bstest.sqlite_one(a.db, "SELECT count(*) FROM branch_prices "
                               "WHERE price >= 90000")[0], 0,
             "no price of the other branch is in b1's file")
    want = pg.psql("SELECT max(id) FROM branchsync.change WHERE scope IN "
                   "(0, %s)", (bid,))[0][0]
    bstest.wait_until(lambda: int(a.meta().get("down_cursor") or 0) >= want,
                      10, "down_cursor to reach the feed's end",
                      alive=[a.proc])
    check_eq(int(a.meta()["down_cursor"]), want, "down_cursor = the highest "
             "change id b1 can see")
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
