"""test_log_identity: restored POS backups and a lost ACK.

The hub keeps a watermark per (branch, log_id) and the agent checks, at
each HELLO, that the hub's watermark and tag match its own log.

1. restore: sync, copy the POS file (a backup), sync more, put the old
   copy back, write new sales. The hub's watermark is beyond the local
   log: the agent must start a new log_id (AGENT-LOG-RESTORED) and every
   change written after the restore must arrive.
2. restore, hard case: after the restore write exactly as many events as
   were lost, so the local high seq equals the hub's watermark. Only the
   tag tells the logs apart: again a new log_id, and every new change
   must arrive (a seq-only check would drop them all as acknowledged).
3. lost ACK: the hub commits a batch but the agent never records the ACK
   (deterministic: the POS file is in WAL mode and the test holds its
   write lock, so the agent can read and push but blocks on the ACK
   write; the test waits for the hub's watermark, SIGKILLs the agent and
   releases the lock). Restarted, the agent must trust the hub's
   watermark (the tag matches): same log_id, one watermark row for the
   branch, nothing duplicated or missing.
"""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402

MAX_EVENTS_PER_SALE = 7  # transaction + up to 5 items + payment


def sync(agent, hub):
    agent.start()
    agent.wait_drained(timeout=120, hub=hub)
    agent.stop()
    return agent.state()


def check_new_log(agent, hub, lid0, what):
    lid = agent.meta().get("log_id")
    check(lid != lid0, "%s: the agent started a new log_id" % what,
          "%s -> %s" % (lid0, lid))
    check("AGENT-LOG-RESTORED" in agent.proc.log_text(),
          "%s: AGENT-LOG-RESTORED in the agent log" % what)
    wms = hub.watermarks(agent.branch)
    check_eq(sorted(w[0] for w in wms), sorted([lid0, lid]),
             "%s: the hub holds the old and the new log" % what)


def scenario_restore(env, pg, hub, code, hard):
    what = "restore (hard case)" if hard else "restore"
    key = hub.branch_add(code)
    agent = env.agent(code, code, key, hub.url)
    agent.init()
    bid = hub.branch_id(code)
    backup = os.path.join(env.dir, code + "-backup.db")

    bstest.possim_run(agent.db, sales=150, seed=11)
    s1 = sync(agent, hub)
    bstest.sqlite_copy(agent.db, backup)
    lid0 = s1["log_id"]
    bstest.possim_run(agent.db, sales=150, seed=12)
    s2 = sync(agent, hub)
    check(s2["acked_seq"] > s1["acked_seq"], "%s: more events synced after "
          "the backup (%d -> %d)" % (what, s1["acked_seq"], s2["acked_seq"]))
    check_eq(hub.watermarks(code)[0][1], s2["acked_seq"],
             "%s: hub watermark before the restore" % what)

    bstest.sqlite_copy(backup, agent.db)
    check_eq(agent.state()["high_seq"], s1["acked_seq"],
             "%s: backup put back (local high seq went back)" % what)
    sim = possim.Simulator(agent.db, seed=13, update_fraction=0,
                           delete_fraction=0)
    try:
        if hard:
            lost = s2["acked_seq"] - s1["acked_seq"]
            while s2["acked_seq"] - agent.state()["high_seq"] \
                    >= MAX_EVENTS_PER_SALE:
                sim.sale()
            while agent.state()["high_seq"] < s2["acked_seq"]:
                sim.update()
            check_eq(agent.state()["high_seq"], s2["acked_seq"],
                     "%s: wrote exactly the %d lost events: local high seq "
                     "= hub watermark" % (what, lost))
        else:
            for _ in range(100):
                sim.sale()
            for _ in range(10):
                sim.update()
            sim.delete()
    finally:
        sim.close()
    keys = bstest.pending_keys(agent.db)
    check(len(keys) > 0, "%s: %d keys changed after the restore"
          % (what, len(keys)))

    s3 = sync(agent, hub)
    check_new_log(agent, hub, lid0, what)
    bstest.compare_keys(agent.db, pg, bid, keys)
    bstest.check_all_synced(agent.db)
    bstest.check_only_marker(agent.db)
    wm = {w[0]: w[1] for w in hub.watermarks(code)}
    check_eq(wm[s3["log_id"]], s3["acked_seq"], "%s: watermark of the new "
             "log = agent acked_seq" % what)


def scenario_lost_ack(env, pg, hub):
    what = "lost ACK"
    code = "rc"
    key = hub.branch_add(code)
    agent = env.agent(code, code, key, hub.url, busy_timeout_ms=60000,
                      max_batch_events=10000, max_batch_bytes=16777216)
    c = sqlite3.connect(agent.db)
    c.execute("PRAGMA journal_mode = WAL")
    c.close()
    agent.init()
    bstest.possim_run(agent.db, sales=150, seed=21)
    s0 = agent.state()
    check(s0["pending"] > 0, "%s: %d events pending" % (what, s0["pending"]))

    lock = sqlite3.connect(agent.db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # readers go on (WAL); writers wait
    try:
        agent.start()

        def committed():
            return any(w[0] == s0["log_id"] and w[1] == s0["high_seq"]
                       for w in hub.watermarks(code))
        bstest.wait_until(committed, 60, "the hub to commit the batch",
                          alive=[agent.proc, hub.proc])
        check(agent.alive(), "%s: agent is blocked on the ACK write" % what)
        agent.kill()
        acked = dict(lock.execute("SELECT name, value FROM "
                                  "_branchsync_meta"))["acked_seq"]
        check_eq(int(acked), s0["acked_seq"], "%s: the agent was killed "
                 "before it recorded the ACK" % what)
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    agent.start()
    agent.wait_drained(timeout=60, hub=hub)
    bstest.check_replicated(pg, hub, agent)
    check_eq(agent.meta().get("log_id"), s0["log_id"],
             "%s: the agent kept its log_id" % what)
    check_eq(len(hub.watermarks(code)), 1, "%s: the hub holds one watermark "
             "row for the branch" % what)
    check("AGENT-LOG-RESTORED" not in agent.proc.log_text(),
          "%s: no AGENT-LOG-RESTORED in the agent log" % what)
    agent.stop()


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    hub.start()
    scenario_restore(env, pg, hub, "ra", hard=False)
    scenario_restore(env, pg, hub, "rb", hard=True)
    scenario_lost_ack(env, pg, hub)
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
