"""test_fault_agent_kill: the agent dies between the hub's commit and its
own ack processing, 8 times, while the POS keeps writing.

The POS file is in WAL mode. Each round the test takes the POS file's
write lock (BEGIN IMMEDIATE on its own connection): the agent can still
read and push, but cannot write the ACK. The test waits until the hub's
watermark passed the agent's acked_seq (the hub committed a batch whose
ACK the agent holds but cannot record), SIGKILLs the agent, releases the
lock and starts the agent again. The POS simulator (its own process)
waits on the same lock for those moments, as a till would behind any
other writer, and goes on. Restarted, the agent must trust the hub's
watermark (same log_id, tag matches): nothing resent as new, nothing
lost. At the end bstest.check_invariants plus: one log_id, no
AGENT-LOG-RESTORED.

BS_SEED overrides the seed, BS_KILLS the count.
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SEED = int(os.environ.get("BS_SEED", "4104"))
KILLS = int(os.environ.get("BS_KILLS", "8"))
BACKLOG = 1000
LIVE_SALES = 1200
LIVE_RATE = 30


def main(env):
    bstest.log("seed %d, %d agent kills after the hub's commit"
               % (SEED, KILLS))
    f = bstest.FaultRun(env, "agent_kill", SEED, BACKLOG, LIVE_SALES,
                        LIVE_RATE, wal=True, max_batch_events=40,
                        busy_timeout_ms=60000,
                        log_level=os.environ.get("BS_AGENT_LOG", "info"))
    rng, agent, hub_seq = f.rng, f.agent, f.hub_seq

    held = 0
    for i in range(1, KILLS + 1):
        f.wait_progress("before kill %d" % i)
        time.sleep(rng.uniform(0, 0.3))
        lock = sqlite3.connect(agent.db, isolation_level=None, timeout=30)
        # Take the write lock at a moment when events are pending (while
        # it is held the POS cannot write new ones); bounded tries.
        for _ in range(400):
            lock.execute("BEGIN IMMEDIATE")  # readers go on (WAL)
            acked = int(dict(lock.execute(
                "SELECT name, value FROM _branchsync_meta"))["acked_seq"])
            if lock.execute("SELECT count(*) FROM _branchsync_log WHERE "
                            "seq > ? AND err IS NULL",
                            (acked,)).fetchone()[0] > 0:
                break
            lock.execute("ROLLBACK")
            time.sleep(0.01)
        else:
            raise bstest.Failure("no pending events to hold for kill %d" % i)
        try:
            bstest.wait_until(lambda: hub_seq() > acked, 20,
                              "the hub to commit a batch the agent cannot "
                              "ack", interval=0.01, alive=f.alive)
            agent.kill()
            after = int(dict(lock.execute(
                "SELECT name, value FROM _branchsync_meta"))["acked_seq"])
            held += after == acked
            bstest.log("kill %d: hub watermark %d, agent acked_seq %d, "
                       "agent SIGKILLed" % (i, hub_seq(), after))
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        agent.start()
    check_eq(held, KILLS, "every kill came after the hub's commit and "
             "before the agent recorded the ACK")

    f.drain()
    check_eq(agent.meta().get("log_id"), f.log_id0,
             "the agent kept its log_id")
    check("AGENT-LOG-RESTORED" not in agent.proc.log_text(),
          "no AGENT-LOG-RESTORED in the agent log")
    f.finish(kills=KILLS)


bstest.run(main)
