"""test_fault_pg_restart: PostgreSQL goes down while batches are applied.

The cluster runs with synchronous_commit on (crash_safe): with the
harness's usual synchronous_commit = off a crash loses the last commits the
hub already acknowledged -- PostgreSQL's documented trade-off, which the
agent reports as AGENT-HUB-BEHIND -- and no sync tool can survive that.

A backlog drains in small batches while the POS simulator keeps writing.
Six times (fixed seed) the test waits until a hub connection is inside a
transaction (pg_stat_activity: xact_start set), then takes PostgreSQL
down -- alternately a crash (SIGKILL of the postmaster) and a fast
shutdown (pg_ctl stop -m fast, which aborts open transactions) -- keeps it
down for a moment and starts it again. The hub must reconnect and the
agent must resend what was not acknowledged; the aborted transactions
must leave no trace. At the end bstest.check_invariants: every row once
with equal values, all synced, watermark = acked_seq, applied_total =
events in the log, central stock = sales.

BS_SEED overrides the seed, BS_RESTARTS the count.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check  # noqa: E402

SEED = int(os.environ.get("BS_SEED", "4102"))
RESTARTS = int(os.environ.get("BS_RESTARTS", "6"))
BACKLOG = 1500
LIVE_SALES = 1500
LIVE_RATE = 30


def in_transaction(pg):
    """True when some hub backend is inside a transaction right now."""
    try:
        return bool(pg.psql(
            "SELECT 1 FROM pg_stat_activity WHERE backend_type = "
            "'client backend' AND pid <> pg_backend_pid() AND datname = "
            "current_database() AND xact_start IS NOT NULL AND query NOT "
            "LIKE '%%LISTEN%%' LIMIT 1"))
    except Exception:
        return False


def main(env):
    bstest.log("seed %d, %d PostgreSQL restarts" % (SEED, RESTARTS))
    # synchronous_commit on: a crash must not lose acknowledged commits
    # (see bstest.Postgres); fsync stays off, a process crash keeps it.
    f = bstest.FaultRun(env, "pg_restart", SEED, BACKLOG, LIVE_SALES,
                        LIVE_RATE, crash_safe=True, max_batch_events=25,
                        request_timeout_ms=3000)
    rng, pg, hub, agent = f.rng, f.pg, f.hub, f.agent

    caught = 0
    for i in range(1, RESTARTS + 1):
        f.wait_progress("before restart %d" % i, timeout=90, interval=0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        deadline = time.monotonic() + 3
        hit = False
        while time.monotonic() < deadline:
            if in_transaction(pg):
                hit = True
                break
        caught += hit
        how = "crash" if i % 2 else "fast stop"
        if i % 2:
            pg.kill()
        else:
            pg.stop()
        st = agent.state()
        bstest.log("restart %d: PostgreSQL %s%s, acked_seq %d, %d pending"
                   % (i, how, " inside a hub transaction" if hit else "",
                      st["acked_seq"], st["pending"]))
        time.sleep(rng.uniform(0.2, 1.5))
        pg.restart()
        check(hub.proc.alive(), "restart %d: the hub survived PostgreSQL "
              "going away" % i)
    check(caught >= RESTARTS // 2, "%d of %d restarts hit a hub transaction"
          % (caught, RESTARTS))

    f.drain(writer_timeout=150)
    f.finish(restarts=RESTARTS, in_transaction=caught)


bstest.run(main)
