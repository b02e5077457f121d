"""bench_down: branchsync's downstream (master data) figures, run by hand.

    ./tests/run.sh                       # builds build/ (RelWithDebInfo)
    /usr/bin/python3 tests/bench/bench_down.py [--products 50000]
        [--branches 100] [--changes 200] [--rounds 3]

Everything runs on this machine: a PostgreSQL with its default, durable
settings, one hub (nudges published on a pub0 socket) and the agents,
each on its own POS file (WAL, example schema).

It prints, as "figure: value" lines:
  1. bootstrap: a new branch pulls --products chain-wide products that
     existed at the center before it; rows/s from the agent's start to
     the last row in its POS file, --rounds times (each a new branch),
     first right after the products were loaded (the feed's planner
     statistics stale, as autovacuum has not run yet), then after an
     ANALYZE of branchsync.change;
  2. change-to-branch latency, p50/p99/max: --branches agents are
     connected (periodic pull every 60 s, so nudges carry the changes);
     --changes price changes are made one at a time, each to a random
     branch (fixed seed), each timed from the UPDATE's commit to the new
     price being readable in that branch's POS file (polled every 1 ms).
Every wait is bounded (a change that takes over 10 s fails the run).
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402

OPTS = None


def figure(name, value):
    print("figure: %s: %s" % (name, value), flush=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def count(db, table="products"):
    return bstest.sqlite_one(db, "SELECT count(*) FROM %s" % table)[0]


def bootstrap(env, pg, hub, tag):
    n = OPTS.products
    rates = []
    for r in range(OPTS.rounds):
        a, bid = bstest.down_agent(env, hub, "boot%s%d" % (tag[:4], r),
                                   start=False,
                                   log_level="warning",
                                   max_pull_rows=OPTS.page)
        a.init("--wal")
        t0 = time.monotonic()
        a.start()
        bstest.wait_until(lambda: count(a.db) >= n, 300,
                          "the bootstrap of %s" % a.name, interval=0.01,
                          alive=[a.proc, hub.proc])
        dt = time.monotonic() - t0
        rates.append(n / dt)
        bstest.log("bootstrap round %d: %d rows in %.2f s" % (r, n, dt))
        bstest.compare_down(a.db, pg, "products", bid, quiet=True)
        a.stop()
    figure("bootstrap %d products, pages of %d, %s" % (n, OPTS.page, tag),
           "%.0f rows/s (median of %d; rounds: %s)"
           % (sorted(rates)[len(rates) // 2], len(rates),
              ", ".join("%.0f" % x for x in rates)))


def latency(env, pg, hub):
    rng = random.Random(3)
    nb = OPTS.branches
    agents = []
    t0 = time.monotonic()
    for i in range(nb):
        a, bid = bstest.down_agent(env, hub, "lat%03d" % i, start=False,
                                   log_level="warning", poll_ms=1000,
                                   pull_interval_ms=60000)
        bstest.seed_branch_rows(pg, "branch_prices", bid, 1, 10, 1000)
        agents.append((a, bid))
    for a, _ in agents:
        a.start()
    for a, _ in agents:
        bstest.wait_until(lambda: count(a.db, "branch_prices") == 10, 120,
                          "%s to bootstrap" % a.name, interval=0.05,
                          alive=[a.proc, hub.proc])
    bstest.log("%d agents connected and bootstrapped in %.1f s"
               % (nb, time.monotonic() - t0))
    time.sleep(2)
    c = pg.connect()
    lat = []
    for i in range(OPTS.changes):
        a, bid = agents[rng.randrange(nb)]
        pid = rng.randint(1, 10)
        price = 100000 + i
        c.cursor().execute("UPDATE public.branch_prices SET price = %s WHERE "
                           "branch_id = %s AND product_id = %s",
                           (price, bid, pid))
        t = time.monotonic()
        q = "SELECT price FROM branch_prices WHERE product_id = %d" % pid
        bstest.wait_until(lambda: bstest.sqlite_one(a.db, q) == (price,), 10,
                          "change %d at %s" % (i, a.name), interval=0.001,
                          alive=[a.proc, hub.proc])
        lat.append(time.monotonic() - t)
        time.sleep(rng.uniform(0.0, 0.05))
    c.close()
    figure("change-to-branch latency, %d branches connected, %d changes"
           % (nb, len(lat)), "p50 %.1f ms, p99 %.1f ms, max %.1f ms"
           % (pct(lat, 50) * 1000, pct(lat, 99) * 1000, max(lat) * 1000))
    for a, _ in agents:
        a.stop()


def center(env, name):
    pg = env.postgres(durable=True)
    hub = env.hub(pg, name=name, workers=OPTS.workers, log_level="warning",
                  publish=True, down_tables=bstest.DOWN_TABLES)
    bstest.setup_center(pg, hub)
    hub.start()
    return pg, hub


def main(env):
    figure("machine", "%d cores, %s" % (os.cpu_count(), os.uname().release))
    pg, hub = center(env, "hub")
    bstest.seed_products(pg, 1, OPTS.products)
    # Right after a bulk load the planner's statistics of the feed are
    # stale (autovacuum has not analyzed it yet): the worst case, first.
    bootstrap(env, pg, hub, "stale feed statistics")
    pg.psql("ANALYZE branchsync.change")
    bootstrap(env, pg, hub, "analyzed feed")
    hub.stop()
    pg.close()
    # A fresh center, so the latency branches bootstrap only 20 products.
    pg, hub = center(env, "hub2")
    bstest.seed_products(pg, 1, 20)
    latency(env, pg, hub)
    hub.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--products", type=int, default=50000,
                    help="products a new branch bootstraps (default 50000)")
    ap.add_argument("--page", type=int, default=5000,
                    help="agent max_pull_rows (default 5000)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="bootstrap rounds (default 3)")
    ap.add_argument("--branches", type=int, default=100,
                    help="agents connected for the latency run (default 100)")
    ap.add_argument("--changes", type=int, default=200,
                    help="price changes timed (default 200)")
    ap.add_argument("--workers", type=int, default=4,
                    help="hub worker contexts (default 4)")
    OPTS = ap.parse_args()
    bstest.run(main, "bench_down")
