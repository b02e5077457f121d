"""test_fault_sites: a crash at the exact points the invariants hinge on.

The fault sites of a -DBS_FAULTS=ON build (proto/util/fault.h) end a
process with status 86 at the nth hit of a named point, as a kill -9
there would; BS_FAULT=<site>:<n> arms one. Skipped with binaries that have
no sites (their --version does not say "with fault sites").

1. hub_after_commit:3: the hub commits the 3rd PUSH and dies before its
   ACK leaves. The hub's watermark is past the agent's acked seq: the
   lost-ACK window. Restarted without the fault, the agent says HELLO,
   trusts the watermark by its tag (no AGENT-LOG-RESTORED), and every row
   arrives exactly once (check_invariants).
2. agent_after_ack:2: the agent dies with the 2nd ACK in hand, before the
   POS file records it; the same window from the other side. Restarted,
   the same end state.
3. agent_before_changes_apply:1: the agent dies with its first CHANGES page
   in hand, before applying it: nothing of it is in the POS file and the
   cursor stayed. Restarted, master data converges.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

FAULT_EXIT = 86


def exited_at_fault(proc, site, n, what):
    bstest.wait_until(lambda: not proc.alive(), 60,
                      "%s to end at fault site %s" % (what, site))
    check_eq(proc.returncode(), FAULT_EXIT, "%s ended by the fault site"
             % what)
    check("FAULT %s hit %d" % (site, n) in proc.log_text(),
          "%s logged the fault site" % what)
    proc.env = {}


def watermark(hub):
    return max((w[1] for w in hub.watermarks("b1")), default=0)


def upstream(env):
    pg, hub = bstest.down_center(env, publish=False, down_tables={},
                                 start=False)
    hub.proc.env = {"BS_FAULT": "hub_after_commit:3"}
    hub.start()
    key = hub.branch_add("b1")
    agent = env.agent("pos", "b1", key, hub.url, max_batch_events=25)
    agent.init()
    bstest.possim_run(agent.db, sales=150, seed=11)
    agent.start()
    exited_at_fault(hub.proc, "hub_after_commit", 3, "the hub")
    check(watermark(hub) > agent.state()["acked_seq"],
          "the hub committed a batch the agent has no ACK for",
          (watermark(hub), agent.state()["acked_seq"]))
    hub.start()
    agent.wait_drained(hub=hub)
    bstest.check_invariants(pg, hub, [agent])
    check("AGENT-LOG-RESTORED" not in agent.proc.log_text(),
          "the agent trusted the hub's watermark after the lost ACK")

    agent.stop()
    agent.proc.env = {"BS_FAULT": "agent_after_ack:2"}
    bstest.possim_run(agent.db, sales=150, seed=12)
    agent.start()
    exited_at_fault(agent.proc, "agent_after_ack", 2, "the agent")
    check(watermark(hub) > agent.state()["acked_seq"],
          "the POS file does not record the ACK the agent died with",
          (watermark(hub), agent.state()["acked_seq"]))
    agent.start()
    agent.wait_drained(hub=hub)
    bstest.check_invariants(pg, hub, [agent])
    check("AGENT-LOG-RESTORED" not in agent.proc.log_text(),
          "and again no restored log")
    agent.stop()
    hub.stop()


def downstream(env):
    pg, hub = bstest.down_center(env)
    bstest.seed_products(pg, 1, 300)
    agent, bid = bstest.down_agent(env, hub, "b2", start=False,
                                   max_pull_rows=100)
    agent.proc.env = {"BS_FAULT": "agent_before_changes_apply:1"}
    agent.start()
    exited_at_fault(agent.proc, "agent_before_changes_apply", 1,
                    "the agent")
    check_eq(bstest.sqlite_one(agent.db, "SELECT count(*) FROM products")[0],
             0, "nothing of the page it died with is in the POS file")
    check_eq(str(agent.meta().get("down_cursor")), "0",
             "the down cursor stayed")
    agent.start()
    bstest.wait_down_converged(agent, pg, bid, ["products"], timeout=60,
                               alive=[hub.proc])
    agent.stop()
    hub.stop()


def main(env):
    r = bstest.run_cmd([bstest.binary("branchsync-hub"), "--version"])
    r2 = bstest.run_cmd([bstest.binary("branchsync-agent"), "--version"])
    if "with fault sites" not in r.stdout + r2.stdout:
        raise bstest.Skip("the binaries have no fault sites (build with "
                          "-DBS_FAULTS=ON)")
    upstream(env)
    downstream(env)


bstest.run(main)
