"""bsdown: set-ups and waits of the downstream (center -> POS) tests.

down_center and down_agent start a center and agents with the example's
down tables (products, branch_prices, stock_allocations), seed_products
and seed_branch_rows fill them at the center, feed_count counts the
change feed, wait_down_converged waits until a POS holds the center's
rows.
"""

from bsbase import DOWN_TABLES, UPSTREAM_TABLES
from bscheck import compare_down, down_converged
from bsdaemons import setup_center
from bspos import qi
from bsproc import wait_until


def wait_down_converged(agent, pg, branch_id, tables=None, timeout=60,
                        alive=(), interval=0.2):
    """Waits until the agent's POS file holds the center's rows of every
    down table, then checks them once more with a report."""
    tables = tables or list(DOWN_TABLES)
    wait_until(lambda: down_converged(agent.db, pg, branch_id, tables),
               timeout, "%s to converge on %s" % (agent.name,
                                                  ", ".join(tables)),
               interval=interval, alive=[agent.proc] + list(alive))
    return sum(compare_down(agent.db, pg, t, branch_id) for t in tables)


def feed_count(pg, branch_id=None):
    """(rows, max id) of branchsync.change visible to branch_id (its own
    scope plus scope 0); all rows when branch_id is None."""
    if branch_id is None:
        return tuple(pg.psql("SELECT count(*), coalesce(max(id), 0) FROM "
                             "branchsync.change")[0])
    return tuple(pg.psql("SELECT count(*), coalesce(max(id), 0) FROM "
                         "branchsync.change WHERE scope IN (0, %s)",
                         (branch_id,))[0])


def down_center(env, publish=True, tables=UPSTREAM_TABLES,
                down_tables=None, start=True, **hubkw):
    """PostgreSQL with the example center schema, a hub with the upstream
    and downstream tables of the example (nudges on by default), migrated
    and started. Returns (pg, hub)."""
    pg = env.postgres()
    hub = env.hub(pg, tables=tables, publish=publish,
                  down_tables=DOWN_TABLES if down_tables is None
                  else down_tables, **hubkw)
    setup_center(pg, hub)
    if start:
        hub.start()
    return pg, hub


def down_agent(env, hub, code, name=None, start=True, nudge=True,
               down_tables=None, **kw):
    """Adds branch code at the hub and an agent for it with the example's
    down tables, nudged by the hub's publisher; init, and start unless
    start is False. Returns (agent, branch id)."""
    key = hub.branch_add(code)
    if nudge and hub.publish_url:
        kw.setdefault("nudge", hub.publish_url)
    a = env.agent(name or code, code, key, hub.url,
                  down_tables=list(DOWN_TABLES) if down_tables is None
                  else down_tables, **kw)
    a.init()
    if start:
        a.start()
    return a, hub.branch_id(code)


def seed_products(pg, first, last, price_base=100):
    """Inserts chain-wide products first..last at the center (one
    statement); timestamps are whole seconds from 2024-03-01 08:00."""
    pg.psql("INSERT INTO public.products(id, name, sku, barcode, price, "
            "cost_price, category, is_active, created_at, updated_at) "
            "SELECT g, 'Product ' || g, 'SKU-' || g, lpad(g::text, 13, '0'),"
            " %s + g %% 900, 50 + g %% 400, 'cat' || (g %% 10), 1, "
            "timestamp '2024-03-01 08:00:00' + g * interval '1 second', "
            "timestamp '2024-03-01 08:00:00' + g * interval '1 second' "
            "FROM generate_series(%s, %s) g", (price_base, first, last))


def seed_branch_rows(pg, table, branch_id, first, last, value):
    """branch_prices or stock_allocations rows (branch_id, product
    first..last, value + product id)."""
    col = "price" if table == "branch_prices" else "qty"
    pg.psql("INSERT INTO public.%s(branch_id, product_id, %s) SELECT %%s, "
            "g, %%s + g FROM generate_series(%%s, %%s) g" % (qi(table), col),
            (branch_id, value, first, last))
