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
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check  # noqa: E402

SEED = int(os.environ.get("BS_SEED", "4101"))
KILLS = int(os.environ.get("BS_KILLS", "20"))
BACKLOG = 1500      # sales waiting before the agent starts
LIVE_SALES = 1200   # sales written while the faults happen
LIVE_RATE = 40      # sales per second at most


def main(env):
    bstest.log("seed %d, %d hub kills" % (SEED, KILLS))
    f = bstest.FaultRun(env, "hub_kill", SEED, BACKLOG, LIVE_SALES,
                        LIVE_RATE, max_batch_events=25,
                        request_timeout_ms=3000)
    rng, hub, agent = f.rng, f.hub, f.agent

    pending_at_kill = []
    t0 = time.monotonic()
    for i in range(1, KILLS + 1):
        # Let the agent get going again: wait for progress past the last
        # kill (bounded), then a random moment inside the next batches.
        f.wait_progress("before kill %d" % i, or_drained=True)
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

    f.drain()
    f.finish(kills=KILLS, kills_with_pending=busy)


bstest.run(main)
