"""test_fault_hub_kill: the hub is SIGKILLed 20 times during a drain.

A backlog of sales is waiting when the agent starts, and the POS simulator
keeps writing throughout (its own process, bounded rate and count). At
moments drawn from a fixed seed the hub gets SIGKILL -- inside a PUSH
transaction, between its commit and its ACK, or while idle -- and is
started again. Small batches (25 events) make each kill likely to land
in the middle of a batch. At the end: every POS row exactly once at the
center with equal values, every row is_synced = 1, the watermark equals
the agent's acked_seq, the hub's applied_total equals the number of
events in the log (nothing applied twice, nothing lost) and the central
stock matches the sales (bstest.check_invariants).

BS_SEED overrides the seed (the soak script uses it), BS_KILLS the count.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SEED = int(os.environ.get("BS_SEED", "4101"))
KILLS = int(os.environ.get("BS_KILLS", "20"))
BACKLOG = 1500      # sales waiting before the agent starts
LIVE_SALES = 1200   # sales written while the faults happen
LIVE_RATE = 40      # sales per second at most


def main(env):
    rng = random.Random(SEED)
    bstest.log("seed %d, %d hub kills" % (SEED, KILLS))
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    agent = env.agent("pos", "b1", key, hub.url, batch_max_events=25,
                      request_timeout_ms=3000)
    agent.init()
    bstest.possim_run(agent.db, sales=BACKLOG, seed=SEED)
    hub.start()
    agent.start()
    writer = bstest.start_writer(env, agent, LIVE_SALES, SEED + 1, LIVE_RATE)

    pending_at_kill = []
    t0 = time.monotonic()
    for i in range(1, KILLS + 1):
        # Let the agent get going again: wait for progress past the last
        # kill (bounded), then a random moment inside the next batches.
        before = agent.state()["acked_seq"]
        bstest.wait_until(lambda: agent.state()["acked_seq"] > before
                          or agent.state()["pending"] == 0, 60,
                          "progress before kill %d" % i, interval=0.02,
                          alive=[agent.proc, hub.proc])
        time.sleep(rng.uniform(0.0, 0.4))
        hub.kill()
        st = agent.state()
        pending_at_kill.append(st["pending"])
        bstest.log("kill %d: hub SIGKILLed, acked_seq %d, %d pending"
                   % (i, st["acked_seq"], st["pending"]))
        time.sleep(rng.uniform(0.0, 0.3))
        hub.start()
    busy = sum(1 for p in pending_at_kill if p > 0)
    check(busy >= KILLS * 3 // 4, "%d of %d kills hit while events were "
          "pending" % (busy, KILLS))
    bstest.log("kills done in %.1f s" % (time.monotonic() - t0))

    writer.wait(timeout=120)
    agent.wait_drained(timeout=120, hub=hub)
    t = bstest.tally(pg, hub, agent)
    inv = bstest.check_invariants(pg, hub, [agent])
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")
    bstest.report("hub_kill", seed=SEED, kills=KILLS,
                  kills_with_pending=busy, events=inv["events"],
                  rows=inv["rows"], lost=t["lost"],
                  duplicated=t["duplicated"])


bstest.run(main)
