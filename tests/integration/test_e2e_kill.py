"""test_e2e_kill: the agent is killed (SIGKILL) three times mid-drain.

Like test_e2e (10,000 sales), with small batches (30 events) so the
drain takes several seconds even on a fast machine: at three progress points chosen by a fixed seed the agent gets
SIGKILL (possibly inside its ack transaction, or after the hub committed
and before the agent recorded the ack) and is started again. At the end
every row is at the center exactly once and equal column by column,
every POS row is_synced = 1, the log holds only its marker, and the agent
kept its log_id (a kill is not a restored backup: the hub holds one
watermark row for the branch).
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SALES = 10000
KILLS = 3
SEED = 7


def main(env):
    rng = random.Random(SEED)
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    agent = env.agent("pos", "b1", key, hub.url, max_batch_events=30)
    agent.init()
    st = bstest.possim_run(agent.db, sales=SALES, seed=SEED,
                           update_fraction=0.1, delete_fraction=0.02,
                           synchronous="NORMAL")
    first = agent.state()
    total = first["pending"]
    check(total > SALES, "possim wrote %d sales -> %d events pending"
          % (st["sales"], total))

    hub.start()
    agent.start()
    points = sorted(rng.uniform(0.1, 0.8) for _ in range(KILLS))
    for i, frac in enumerate(points, 1):
        target = first["acked_seq"] + int(frac * total)

        def reached():
            s = agent.state()
            return s if s["acked_seq"] >= target or s["pending"] == 0 \
                else None
        s = bstest.wait_until(reached, 240, "acked_seq to reach %d" % target,
                              interval=0.02, alive=[agent.proc, hub.proc])
        time.sleep(rng.uniform(0, 0.05))
        if s["pending"] == 0:
            raise bstest.Failure("the drain finished before kill %d; "
                                 "make the batches smaller" % i)
        agent.kill()
        s = agent.state()
        check(s["pending"] > 0, "kill %d at %.0f%% of the drain: agent "
              "SIGKILLed with %d events pending" % (i, frac * 100,
                                                    s["pending"]))
        agent.start()

    agent.wait_drained(timeout=300, hub=hub)
    bstest.check_replicated(pg, hub, agent)
    check_eq(agent.meta().get("log_id"), first["log_id"],
             "the agent kept its log_id across the kills")
    check_eq(len(hub.watermarks("b1")), 1, "hub holds one watermark row for "
             "the branch")
    check("AGENT-LOG-RESTORED" not in agent.proc.log_text(),
          "no AGENT-LOG-RESTORED in the agent log")
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
