"""test_e2e: a day of sales written while the hub is down, then synced.

The POS simulator writes 10,000 sales (each a transaction, 1-5 items and
a payment; some sales later updated, some deleted) into a POS file while
no hub and no agent run. Then hub and agent start; once the log is
drained, every row of transactions, transaction_items and payments must
be at the center for this branch, equal column by column and exactly
once; every POS row is_synced = 1; the log holds only its marker row; the
hub's watermark equals the agent's acked seq. Then two live phases with
the same checks: 1,000 more sales while agent and hub run (the simulator
and the agent share the POS file), and 500 sales while the hub is stopped
and the agent keeps retrying, after which the hub comes back. Agent and
hub stop with status 0 on SIGTERM.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SALES = 10000


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    agent = env.agent("pos", "b1", key, hub.url)
    agent.init()

    st = bstest.possim_run(agent.db, sales=SALES, seed=42,
                           update_fraction=0.1, delete_fraction=0.02,
                           synchronous="NORMAL")
    check(st["updates"] > 0 and st["deletes"] > 0,
          "possim wrote %(sales)d sales, %(updates)d updates, "
          "%(deletes)d deletes with no hub running" % st)
    before = agent.state()
    bstest.log("log before sync: %d events pending" % before["pending"])

    hub.start()
    t0 = time.monotonic()
    agent.start()
    agent.wait_drained(timeout=300, hub=hub)
    dt = time.monotonic() - t0
    bstest.log("drained %d events in %.1f s (%.0f events/s)"
               % (before["pending"], dt, before["pending"] / max(dt, 0.001)))

    n = bstest.check_replicated(pg, hub, agent)
    check(n > SALES, "replicated %d rows in total" % n)
    check_eq(len(hub.watermarks("b1")), 1, "hub holds one watermark row "
             "for the branch")

    bstest.log("live phase: sales while agent and hub run")
    bstest.possim_run(agent.db, sales=1000, seed=43, rate=400)
    agent.wait_drained(timeout=120, hub=hub)
    bstest.check_replicated(pg, hub, agent)

    bstest.log("outage phase: sales while the hub is stopped")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")
    bstest.possim_run(agent.db, sales=500, seed=44)
    time.sleep(1)
    check(agent.alive() and agent.state()["pending"] > 0,
          "agent keeps running with events pending while the hub is down")
    hub.start()
    agent.wait_drained(timeout=120, hub=hub)
    bstest.check_replicated(pg, hub, agent)
    check_eq(len(hub.watermarks("b1")), 1, "still one watermark row for "
             "the branch")

    def reported_queue():
        rows = pg.psql("SELECT s.queue_events FROM branchsync.branch_status s"
                       " JOIN branchsync.branch b ON b.id = s.branch_id"
                       " WHERE b.code = 'b1'")
        return rows and rows[0][0] == 0
    bstest.wait_until(reported_queue, 10, "the hub to record the drained "
                      "agent's empty queue", alive=[agent.proc, hub.proc])
    check(True, "an agent that drained its log reports queue_events = 0")
    r = hub.cli("status")
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("b1 ")]
    check(r.returncode == 0 and len(line) == 1
          and line[0].split()[1:3] == ["ok", "0"],
          "branchsync-hub status exits 0 and shows b1 ok with queue 0",
          r.stdout + r.stderr)
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
