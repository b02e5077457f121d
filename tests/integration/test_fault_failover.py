"""test_fault_failover: two hubs on one database; the agent fails over.

Hubs A and B serve the same PostgreSQL; the agent lists both URLs. While a
backlog drains and the POS simulator writes, the test kills (SIGKILL) one
hub at a random moment (fixed seed), checks that the agent goes on through
the other one alone (its acked_seq moves while the killed hub is down),
restarts the killed hub and kills the other one: 10 kills, alternating.
Both hubs may apply batches of the same branch concurrently (nng spreads
requests over both connections; a resend after a kill may land on the
other hub): the watermark row lock serializes them. At the end
bstest.check_invariants (every row once with equal values, all synced,
watermark = acked_seq, applied_total = events in the log, stock = sales).

BS_SEED overrides the seed, BS_KILLS the count.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check  # noqa: E402

SEED = int(os.environ.get("BS_SEED", "4105"))
KILLS = int(os.environ.get("BS_KILLS", "10"))
BACKLOG = 1500
LIVE_SALES = 1200
LIVE_RATE = 30


def main(env):
    bstest.log("seed %d, %d hub kills with failover" % (SEED, KILLS))
    f = bstest.FaultRun(env, "failover", SEED, BACKLOG, LIVE_SALES,
                        LIVE_RATE, hub_names=("hubA", "hubB"),
                        max_batch_events=25, request_timeout_ms=2000)
    rng, hubs, agent, writer = f.rng, f.hubs, f.agent, f.writer

    served_alone = 0
    for i in range(1, KILLS + 1):
        victim, other = hubs[i % 2], hubs[(i + 1) % 2]
        time.sleep(rng.uniform(0.05, 0.5))
        victim.kill()
        st = agent.state()
        # The other hub alone must carry the agent on: progress (or a
        # drained log when the POS is between sales).
        bstest.wait_until(
            lambda: agent.state()["acked_seq"] > st["acked_seq"]
            or (agent.state()["pending"] == 0 and not writer.running()), 30,
            "the agent to go on through %s while %s is down"
            % (other.name, victim.name), interval=0.02,
            alive=[agent.proc, other.proc])
        now = agent.state()
        served_alone += now["acked_seq"] > st["acked_seq"]
        bstest.log("kill %d: %s SIGKILLed with %d pending; %s took the "
                   "agent from acked_seq %d to %d" % (
                       i, victim.name, st["pending"], other.name,
                       st["acked_seq"], now["acked_seq"]))
        victim.start()
    check(served_alone >= KILLS - 1, "%d of %d times the surviving hub "
          "moved the agent on" % (served_alone, KILLS))

    # Either hub may be the one down last: watch only the agent.
    f.drain(watch_hub=False)
    f.finish(kills=KILLS, served_alone=served_alone)


bstest.run(main)
