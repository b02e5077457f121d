"""test_least_privilege: the hub runs with only the rights that
deploy/center/grants.sql gives (issue 6).

The superuser creates the center schema, migrates and adds the branch;
then a role "branchsync_hub" (LOGIN, not superuser, owning nothing) gets
exactly deploy/center/grants.sql, and the hub runs as that role:
1. an agent's sales drain up (check_replicated) and master data comes
   down (products, branch_prices, stock_allocations converge);
2. "status", the operator listener's /api/status and /metrics, "rejects
   list" and "conflicts list" work as that role;
3. the role cannot do more: no DDL in public or branchsync, no TRUNCATE
   or DROP of a replicated table, no write to branchsync.branch (keys) or
   the change feed; "branch add" as that role fails with a permission
   error and adds nothing;
4. no role reaches what the definer functions may write: a role with no
   grants cannot call stock_move() to write stock_allocations, and the
   hub's role cannot attach branchsync.feed() (or the example schema's
   stock trigger function) to a temporary table of its own to forge
   master data into the branches' feed (or move stock).
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402

ROLE = "branchsync_hub"


def as_role(pg, sql, role=ROLE):
    """Runs sql as role; returns the error text, or None if it worked."""
    import psycopg2
    conn = psycopg2.connect(re.sub(r"user=\S+", "user=" + role,
                                   pg.conninfo))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
        return None
    except psycopg2.Error as e:
        return str(e).strip()
    finally:
        conn.close()


def main(env):
    pg, hub = bstest.down_center(env, start=False)
    bstest.seed_products(pg, 1, 50)
    key = hub.branch_add("b1")
    bid = hub.branch_id("b1")
    pg.psql("INSERT INTO public.branch_prices(branch_id, product_id, price)"
            " SELECT %s, g, 1000 + g FROM generate_series(1, 10) g", (bid,))
    pg.psql("INSERT INTO public.stock_allocations(branch_id, product_id, "
            "qty) SELECT %s, g, 100 FROM generate_series(1, 50) g", (bid,))
    pg.psql("CREATE ROLE %s LOGIN" % ROLE)
    pg.apply_file(bstest.source_file("deploy", "center", "grants.sql"))
    check_eq(pg.psql("SELECT rolsuper, rolcreaterole, rolcreatedb FROM "
                     "pg_roles WHERE rolname = %s", (ROLE,))[0],
             (False, False, False), "the hub's role has no special rights")

    hub.settings["postgres"] = re.sub(r"user=\S+", "user=" + ROLE,
                                      pg.conninfo)
    hub.write_config()
    hub.start()

    # 1. up and down.
    agent = env.agent("pos", "b1", key, hub.url, heartbeat_ms=1000,
                      down_tables=list(bstest.DOWN_TABLES),
                      nudge=hub.publish_url)
    agent.init()
    possim.sales(agent.db, 50, seed=1)
    agent.start()
    agent.wait_drained(hub=hub)
    bstest.check_replicated(pg, hub, agent)
    bstest.wait_down_converged(agent, pg, bid, timeout=60,
                               alive=[hub.proc, agent.proc])

    # 2. operator commands and the listener.
    r = hub.cli("status")
    check(r.returncode == 0 and re.search(r"(?m)^b1 +ok ", r.stdout),
          "status as the hub's role", r.stdout + r.stderr)
    code, _, body = hub.http_get("/api/status")
    check(code == 200 and '"b1"' in body, "/api/status as the hub's role",
          body[:200])
    code, _, body = hub.http_get("/metrics")
    check(code == 200 and "branchsync_hub_postgres_up 1" in body,
          "/metrics reads PostgreSQL as the hub's role")
    for cmd in (("rejects", "list"), ("conflicts", "list")):
        r = hub.cli(*cmd)
        check_eq(r.returncode, 0, "%s as the hub's role (%s)"
                 % (" ".join(cmd), r.stderr.strip()))

    # 3. and nothing more.
    for what, sql in (
            ("create a table in public", "CREATE TABLE public.x(i int)"),
            ("create a table in branchsync",
             "CREATE TABLE branchsync.x(i int)"),
            ("truncate a replicated table", "TRUNCATE public.payments"),
            ("drop a replicated table", "DROP TABLE public.payments"),
            ("change a key", "UPDATE branchsync.branch SET key_hash = "
             "'\\x00'"),
            ("add a branch", "INSERT INTO branchsync.branch(code, "
             "key_hash) VALUES ('evil', '\\x00')"),
            ("write the change feed", "DELETE FROM branchsync.change"),
            ("write master data", "UPDATE public.products SET price = 0")):
        err = as_role(pg, sql)
        check(err is not None and "permission denied" in err
              or "must be owner" in (err or ""),
              "the hub's role cannot %s" % what, err)
    r = hub.cli("branch", "add", "b2")
    check(r.returncode == 1 and "permission denied" in r.stderr,
          "branch add as the hub's role fails with a permission error",
          r.stderr)
    check_eq(pg.psql("SELECT count(*) FROM branchsync.branch")[0][0], 1,
             "no branch was added")

    # 4. the definer functions.
    def allocations():
        return pg.psql("SELECT product_id, qty FROM public.stock_allocations"
                       " WHERE branch_id = %s ORDER BY 1", (bid,))

    def forged():
        return pg.psql("SELECT count(*) FROM branchsync.change WHERE "
                       "tbl = 'products' AND key = '[999999]'")[0][0]
    before = allocations()
    pg.psql("CREATE ROLE nobody_here LOGIN")
    err = as_role(pg, "SELECT public.stock_move(ARRAY[ROW(%d, 1, 1000000)]"
                  "::public.stock_allocations[])" % bid, role="nobody_here")
    check(err is not None and re.search(r"permission denied for function "
                                   r"(public\.)?stock_move", err), "a role with no grants cannot call stock_move()", err)
    err = as_role(pg, "CREATE TEMP TABLE t(id bigint, name text); "
                  "CREATE TRIGGER f AFTER INSERT ON t FOR EACH ROW "
                  "EXECUTE FUNCTION branchsync.feed('products', '', 'id'); "
                  "INSERT INTO t VALUES (999999, 'forged')")
    check(err is not None and re.search(r"permission denied for function "
                                   r"(branchsync\.)?feed", err),
          "the hub's role cannot attach branchsync.feed() to a table of its "
          "own", err)
    err = as_role(pg, "CREATE TEMP TABLE s(branch_id int, product_id bigint,"
                  " qty bigint); CREATE TRIGGER g AFTER INSERT ON s "
                  "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                  "EXECUTE FUNCTION public.transaction_items_stock(); "
                  "INSERT INTO s VALUES (%d, 1, -1000000)" % bid)
    check(err is not None and re.search(r"permission denied for function "
          r"(public\.)?transaction_items_stock", err), "the hub's role cannot attach "
          "the stock trigger function to a table of its own", err)
    check_eq(forged(), 0, "no forged product is in the feed")
    check_eq(allocations(), before, "stock_allocations are unchanged")
    # the triggers still fire for the hub's own writes
    possim.sales(agent.db, 20, seed=2)
    agent.wait_drained(hub=hub)
    bstest.check_replicated(pg, hub, agent)
    check(allocations() != before, "sales applied by the hub's role still "
          "move stock through the definer trigger function")

    check_eq(agent.stop(), 0, "the agent stops")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
