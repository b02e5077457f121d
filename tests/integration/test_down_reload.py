"""test_down_reload: `branchsync-agent reload TABLE` re-sends one table.

A branch holds 200 products and its prices. Rows of products are then
deleted and changed directly in the POS file (products is not an up
table, so nothing is captured). `reload products` with the agent
stopped records the reload in the meta table; at the next start the
agent pulls the whole table again from cursor 0 and the rows are back,
and the reload meta rows are gone. Then the same while the agent runs
(the periodic pull, 1 s, picks it up). The other down tables are not
touched by a reload: a price changed locally stays changed.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402


def damage(a):
    c = bstest.sqlite_connect(a.db)
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO _branchsync_guard VALUES (1)")
    c.execute("DELETE FROM products WHERE id IN (3, 50, 51, 199)")
    c.execute("UPDATE products SET price = -1 WHERE id = 7")
    c.execute("UPDATE branch_prices SET price = -5 WHERE product_id = 9")
    c.execute("DELETE FROM _branchsync_guard")
    c.execute("COMMIT")
    c.close()
    check_eq(bstest.sqlite_one(a.db, "SELECT count(*) FROM products")[0], 196,
             "4 products deleted and one changed in the POS file directly")


def main(env):
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 200)
    a, bid = bstest.down_agent(env, hub, "b1", start=False,
                               pull_interval_ms=1000)
    bstest.seed_branch_rows(pg, "branch_prices", bid, 1, 20, 1000)
    a.start()
    bstest.wait_down_converged(a, pg, bid, timeout=30, alive=[hub.proc])
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    damage(a)
    cur = a.meta()["down_cursor"]

    r = a.cli("reload", "products")
    check_eq(r.returncode, 0, "branchsync-agent reload products exits 0")
    meta = a.meta()
    check_eq((meta.get("reload_table"), str(meta.get("reload_cursor"))),
             ("products", "0"), "reload recorded in _branchsync_meta")
    st = a.cli("status")
    check(st.returncode == 0 and "reload" in st.stdout.lower(),
          "status shows the reload in progress", st.stdout + st.stderr)
    r = a.cli("reload", "no_such_table")
    check(r.returncode != 0, "reload of a table that is not down is refused",
          r.stderr.strip())
    a.start()
    bstest.wait_until(lambda: "reload_table" not in a.meta(), 20,
                      "the reload to finish", alive=[a.proc, hub.proc])
    check_eq(bstest.compare_down(a.db, pg, "products", bid), 200,
             "the deleted and changed products are back")
    check_eq(bstest.sqlite_one(a.db, "SELECT price FROM branch_prices WHERE "
                               "product_id = 9"), (-5,),
             "a reload of products leaves branch_prices alone")
    check("reload_cursor" not in a.meta(), "reload_cursor removed")
    check_eq(a.meta()["down_cursor"], cur, "down_cursor unchanged by "
             "a reload")

    bstest.log("reload while the agent runs")
    damage(a)
    r = a.cli("reload", "products")
    check_eq(r.returncode, 0, "reload products exits 0 with the agent running")
    bstest.wait_until(lambda: bstest.down_converged(a.db, pg, bid,
                                                    ["products"]), 20,
                      "products to be reloaded", alive=[a.proc, hub.proc])
    bstest.wait_until(lambda: "reload_table" not in a.meta(), 10,
                      "the reload meta rows to go", alive=[a.proc])
    bstest.compare_down(a.db, pg, "products", bid)
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
