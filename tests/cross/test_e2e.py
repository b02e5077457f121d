"""test_e2e: an agent of another platform drains a POS file to the hub,
which is restarted twice in the middle of the drain.

A cross build runs it (tests/cross/CMakeLists.txt): the agent and the POS
writer bs-poswrite are programs of the target, run behind BS_AGENT_RUNNER
(for arm64 qemu-aarch64); PostgreSQL and the hub (from BS_HUB_BUILD_DIR)
run on the build machine. Nothing here names a platform.

1. The agent's init installs the capture triggers; a first run with no
   hub yet warns nothing about an agent.ini only its owner may read, and
   stops cleanly on the platform's stop request (SIGTERM; Ctrl+C under
   wine); bs-poswrite writes a backlog of sales while no agent runs.
2. Hub and agent start, with small batches, and agent.ini readable by
   others: AGENT-KEY-PERMS (the mode bits on Linux, the file's ACL on
   Windows, which wine derives from them); bs-poswrite writes more sales
   at a bounded rate while the agent drains.
3. With events pending, the hub gets SIGKILL and is started again; later,
   with events pending again, SIGTERM (it must exit 0) and a start.
4. Once the writer has finished and the log is drained: no row lost,
   none duplicated (tally), and every check of check_invariants: each POS
   row once at the center with equal values, is_synced = 1 for every
   row, only the marker left in the log, watermark = acked_seq, the hub's
   applied_total = the events in the log, central stock = the sales.
5. The agent's peak RSS is printed as a figure, not checked: VmHWM of its
   process, which behind an emulator is the emulator's (an upper bound).
Agent and hub exit 0 on their stop requests.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SEED = 7301
BACKLOG = 1000     # sales waiting before the agent starts
LIVE_SALES = 600   # sales written while the agent drains
LIVE_RATE = 40     # sales per second at most
BATCH = 50         # events per batch: many batches, so restarts land inside


def wait_progress(agent, hub, what):
    """Waits until the agent's acked_seq moves past its value now."""
    before = agent.state()["acked_seq"]
    bstest.wait_until(lambda: agent.state()["acked_seq"] > before, 60,
                      "progress " + what, interval=0.05,
                      alive=[agent.proc, hub.proc])


def main(env):
    runner = " ".join(bstest.AGENT_RUNNER) or "(none)"
    bstest.log("agent %s, runner %s, hub %s" % (
        bstest.binary("branchsync-agent"), runner,
        bstest.binary("branchsync-hub")))
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    agent = env.agent("pos", "b1", key, hub.url, max_batch_events=BATCH)
    agent.init()
    # The key check of the platform (mode bits; an ACL on Windows, which
    # wine derives from the mode): the ini holds the key inline. A first
    # run, with no hub yet, also shows the platform's clean stop.
    os.chmod(agent.ini, 0o600)
    agent.start()
    bstest.wait_until(lambda: "AGENT-START" in agent.proc.log_text(), 60,
                      "the agent to start", alive=[agent.proc])
    check("AGENT-KEY-PERMS" not in agent.proc.log_text(),
          "an agent.ini only its owner may read is not reported")
    check_eq(agent.stop(), 0, "the agent stops cleanly (exit 0)")
    os.chmod(agent.ini, 0o644)
    st = bstest.poswrite_run(agent.db, BACKLOG, seed=SEED)
    check_eq(st["sales"], BACKLOG, "bs-poswrite wrote the backlog")
    backlog = agent.state()["pending"]
    bstest.log("backlog: %d events pending" % backlog)

    hub.start()
    t0 = time.monotonic()
    agent.start()
    bstest.wait_until(lambda: agent.proc.log_text().count("AGENT-START")
                      == 2, 60, "the agent to start again",
                      alive=[agent.proc])
    check("AGENT-KEY-PERMS" in agent.proc.log_text(),
          "one others may read is reported (AGENT-KEY-PERMS)")
    writer = bstest.PosWriter(env, agent.db, LIVE_SALES, SEED + 1,
                              rate=LIVE_RATE, name="poswrite",
                              tool="bs-poswrite").start()

    wait_progress(agent, hub, "before the hub is killed")
    pending = [agent.state()["pending"]]
    hub.kill()
    bstest.log("hub SIGKILLed with %d events pending" % pending[-1])
    time.sleep(0.3)
    hub.start()

    wait_progress(agent, hub, "after the hub restart")
    pending.append(agent.state()["pending"])
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM in the middle of the "
             "drain (%d events pending)" % pending[-1])
    hub.start()
    check(all(p > 0 for p in pending), "both restarts hit while events "
          "were pending (%s)" % pending)

    writer.wait(timeout=120)
    agent.wait_drained(timeout=120, hub=hub)
    dt = time.monotonic() - t0
    events = agent.state()["high_seq"]
    bstest.log("drained %d events in %.1f s (%.0f events/s)"
               % (events, dt, events / max(dt, 0.001)))

    t = bstest.tally(pg, hub, agent)
    check_eq((t["lost"], t["duplicated"]), (0, 0),
             "no row lost, none duplicated (%d rows)" % t["rows"])
    inv = bstest.check_invariants(pg, hub, [agent])
    rss = agent.proc.peak_rss_kb()
    check(rss is not None, "read the agent's peak RSS")
    bstest.log("agent peak RSS while draining: %d KiB (%.1f MiB; VmHWM of "
               "the process behind runner %s)" % (rss, rss / 1024.0, runner))

    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")
    bstest.report("cross_e2e", seed=SEED, restarts=len(pending),
                  events=inv["events"], rows=inv["rows"], lost=t["lost"],
                  duplicated=t["duplicated"], seconds=round(dt, 1),
                  agent_peak_rss_kb=rss)


bstest.run(main)
