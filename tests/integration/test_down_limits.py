"""test_down_limits: the agent's limits on what the hub sends down.

1. max_message_bytes = 65536 (the smallest allowed), 600 products with
   names of about 200 bytes (about 150 KB in all): the agent asks for
   pages of at most a quarter of its limit, so the bootstrap arrives in
   several pages and converges. Were the pages as large as they are by
   default (4 MiB), none would fit through the socket.
2. max_value_bytes = 300: a product whose name grows to 1,000 bytes at
   the center makes the page that carries it fail with a clear error in
   the agent's log (AGENT-DOWN-ERROR, "exceeds the limit"); the agent
   stays up, applies nothing of that page, keeps its cursor, and status
   shows the error (down_last_error, cleared once a pull works). The upstream keeps flowing meanwhile (a sale
   arrives). With max_value_bytes raised the same page applies.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402

LONG_NAME = "x" * 1000


def main(env):
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 600)
    pg.psql("UPDATE products SET name = name || ' ' || repeat('n', 190)")
    a, bid = bstest.down_agent(env, hub, "b1", start=False,
                               pull_interval_ms=1000,
                               max_message_bytes=65536,
                               max_value_bytes=300)
    a.start()
    n = bstest.wait_down_converged(a, pg, bid, tables=["products"],
                                   timeout=60, alive=[hub.proc])
    check_eq(n, 600, "600 products of ~200 bytes arrived under a 64 KiB "
             "message limit")
    check("AGENT-DOWN-ERROR" not in a.proc.log_text(),
          "no pull failed on the way")

    cursor = a.meta()["down_cursor"]
    pg.psql("UPDATE products SET name = %s WHERE id = 10", (LONG_NAME,))
    bstest.wait_until(lambda: "exceeds the limit" in a.proc.log_text(), 30,
                      "the agent to refuse the page with the long value",
                      alive=[a.proc, hub.proc])
    line = [ln for ln in a.proc.log_text().splitlines()
            if "AGENT-DOWN-ERROR" in ln][-1]
    check("exceeds the limit of 300 bytes" in line,
          "the error names the limit", line)
    check(a.alive(), "the agent stays up")
    name = bstest.sqlite_one(a.db, "SELECT name FROM products WHERE id = 10")
    check(name[0] != LONG_NAME, "nothing of the refused page is applied")
    check_eq(a.meta()["down_cursor"], cursor, "the cursor stays put")
    st = a.status_json()
    check("exceeds the limit" in (st.get("down_last_error") or ""),
          "status --json reports the error in down_last_error",
          st.get("down_last_error"))
    r = a.cli("status")
    check("down_error:" in r.stdout and "exceeds the limit" in r.stdout,
          "the status text shows it", r.stdout)

    before = pg.psql("SELECT count(*) FROM transactions")[0][0]
    possim.sales(a.db, 1, seed=3)
    bstest.wait_until(lambda: pg.psql("SELECT count(*) FROM transactions"
                                      )[0][0] == before + 1, 30,
                      "a sale to go up while the pull is refused",
                      alive=[a.proc, hub.proc])

    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")
    a.write_config(max_value_bytes=4096)
    a.start()
    bstest.wait_down_converged(a, pg, bid, tables=["products"], timeout=30,
                               alive=[hub.proc])
    check_eq(bstest.sqlite_one(a.db, "SELECT name FROM products WHERE "
                               "id = 10")[0], LONG_NAME,
             "with max_value_bytes raised the long name arrives")
    check_eq(a.status_json().get("down_last_error"), None,
             "the error is cleared once a pull works")
    check_eq(a.stop(), 0, "agent exits 0 on SIGTERM")


bstest.run(main)
