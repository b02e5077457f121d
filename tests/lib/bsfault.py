"""bsfault: the shared harness of the fault scenarios (test_fault_*.py).

FaultRun is the set-up and the end every scenario shares: PostgreSQL,
its hub(s), branch b1 with one agent, a backlog of sales written before
the agent starts and the POS simulator writing sales while the scenario
injects its faults; at the end the drain, the invariant checks
(bsinvariants.check_invariants) and the RESULT line that
tests/bench/soak.py reads. A scenario reads:

    f = bsfault.FaultRun(env, "hub_kill", SEED, backlog=1500,
                         live_sales=1200, live_rate=40,
                         max_batch_events=25)
    for i in ...:
        f.wait_progress("before kill %d" % i)
        f.hub.kill()
        ...
    f.drain()
    f.finish(kills=KILLS)

PosWriter runs the POS simulator as its own process; proxy puts a
faultproxy between agent and hub.
"""

import os
import random
import sqlite3
import subprocess
import sys

from bsbase import HERE, Failure, check_eq, log, scaled
from bsdaemons import setup_center
from bsinvariants import check_invariants, report, tally
from bspos import possim_run, poswrite_argv
from bsproc import Proc, wait_until


class PosWriter:
    """The POS simulator (tests/lib/possim.py) as a separate process that
    writes sales into a POS file while the test injects faults: at most
    `rate` sales per second, at most `sales` sales, at most `duration`
    seconds (every bound holds, the first one reached ends it).

    tool="bs-poswrite" writes with bs-poswrite instead, a program of the
    platform under test (bspos.poswrite_argv): sales only, so no duration,
    updates or deletes."""

    def __init__(self, env, db, sales, seed, rate=None, duration=None,
                 update_fraction=0.1, delete_fraction=0.02, name="possim",
                 tool="possim"):
        self.db = db
        self.logpath = os.path.join(env.dir, name + ".log")
        if tool == "bs-poswrite":
            if duration:
                raise ValueError("bs-poswrite has no duration bound")
            argv = poswrite_argv(db, sales, seed, rate)
        else:
            argv = [sys.executable, os.path.join(HERE, "possim.py"), "--db",
                    db, "--sales", str(sales), "--seed", str(seed),
                    "--update-fraction", str(update_fraction),
                    "--delete-fraction", str(delete_fraction)]
            if rate:
                argv += ["--rate", str(rate)]
            if duration:
                argv += ["--duration", str(duration)]
        self.proc = Proc(name, argv, self.logpath)
        self.stats = None
        env.add_log(name, self.logpath)
        env.add_cleanup(self.proc.kill)

    def start(self):
        self.proc.start()
        return self

    def running(self):
        return self.proc.alive()

    def wait(self, timeout=300):
        """Waits for the simulator to finish; returns its counts."""
        import json
        try:
            self.proc.p.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("%s did not finish within %d s"
                          % (self.proc.name, timeout))
        rc = self.proc.returncode()
        text = self.proc.log_text().strip().splitlines()
        if rc != 0 or not text:
            raise Failure("%s exited %s: %s" % (self.proc.name, rc,
                                                "\n".join(text[-5:])))
        self.stats = json.loads(text[-1])
        log("%s: %s" % (self.proc.name, self.stats))
        return self.stats


def start_writer(env, agent, sales, seed, rate, **kw):
    """A PosWriter on the agent's POS file, started."""
    return PosWriter(env, agent.db, sales, seed, rate, **kw).start()


def proxy(env, target_port, record=False):
    """A faultproxy.FaultProxy to 127.0.0.1:target_port, closed at the
    end of the test (record: keep every byte forwarded)."""
    import faultproxy
    px = faultproxy.FaultProxy(target_port, record=record)
    env.add_cleanup(px.close)
    return px


class FaultRun:
    """One fault scenario's processes, set up and started.

    PostgreSQL (crash_safe: synchronous_commit on, see bspg.Postgres),
    one hub per name in hub_names on it (self.hubs; self.hub is the
    first, which set up the center), branch b1 and its agent "pos" with
    agent_settings in its agent.ini, listing every hub's URL -- or, with
    via_proxy, the URL of a faultproxy to the first hub (self.px). wal
    puts the POS file in WAL mode before init. Then backlog sales (seed)
    go into the POS file, the hubs and the agent start, and a PosWriter
    (self.writer) writes live_sales more (seed + 1) at live_rate sales per
    second at most. self.rng is random.Random(seed) for the scenario's
    own draws; self.log_id0 is the agent's log_id after init.
    """

    def __init__(self, env, scenario, seed, backlog, live_sales, live_rate,
                 hub_names=("hub",), via_proxy=False, crash_safe=False,
                 wal=False, **agent_settings):
        self.env = env
        self.scenario = scenario
        self.seed = seed
        self.rng = random.Random(seed)
        self.pg = env.postgres(crash_safe=crash_safe)
        self.hubs = [env.hub(self.pg, name=n) for n in hub_names]
        self.hub = self.hubs[0]
        setup_center(self.pg, self.hub)
        key = self.hub.branch_add("b1")
        self.px = proxy(env, self.hub.port) if via_proxy else None
        urls = [self.px.url] if via_proxy else [h.url for h in self.hubs]
        self.agent = env.agent("pos", "b1", key, urls, **agent_settings)
        if wal:
            c = sqlite3.connect(self.agent.db)
            c.execute("PRAGMA journal_mode = WAL")
            c.close()
        self.agent.init()
        self.log_id0 = self.agent.meta().get("log_id")
        possim_run(self.agent.db, sales=backlog, seed=seed)
        for h in self.hubs:
            h.start()
        self.agent.start()
        self.writer = start_writer(env, self.agent, live_sales, seed + 1,
                                   live_rate)
        # The processes a wait fails at once on when one of them exits.
        self.alive = [self.agent.proc] + [h.proc for h in self.hubs]
        self.tally = self.inv = None

    def hub_seq(self):
        """The seq of b1's watermark at the center (0 before the first)."""
        wms = self.hub.watermarks("b1")
        return wms[0][1] if wms else 0

    def wait_progress(self, what, timeout=60, interval=0.02,
                      or_drained=False):
        """Waits until the agent's acked_seq moves past its value now (or,
        with or_drained, nothing is pending), failing at once if the agent
        or a hub exits."""
        agent = self.agent
        before = agent.state()["acked_seq"]
        if or_drained:
            def moved():
                return agent.state()["acked_seq"] > before \
                    or agent.state()["pending"] == 0
        else:
            def moved():
                return agent.state()["acked_seq"] > before
        wait_until(moved, timeout, "progress " + what, interval=interval,
                   alive=self.alive)

    def drain(self, writer_timeout=120, watch_hub=True):
        """After the faults: waits for the POS simulator to finish and the
        agent to drain its log (failing at once if the agent, or with
        watch_hub the first hub, exits), then counts lost and duplicated
        rows (self.tally) and runs the invariant checks (self.inv)."""
        self.writer.wait(timeout=writer_timeout)
        self.agent.wait_drained(timeout=120,
                                hub=self.hub if watch_hub else None)
        self.tally = tally(self.pg, self.hub, self.agent)
        self.inv = check_invariants(self.pg, self.hub, [self.agent])
        return self.inv

    def finish(self, **figures):
        """Stops the agent and the hubs (each must exit 0 on SIGTERM) and
        prints the RESULT line: the seed, the scenario's figures, then
        events, rows, lost and duplicated."""
        check_eq(self.agent.stop(), 0, "agent exits 0 on SIGTERM")
        for h in self.hubs:
            check_eq(h.stop(), 0, "%s exits 0 on SIGTERM" % h.name)
        report(self.scenario, seed=self.seed, **figures,
               events=self.inv["events"], rows=self.inv["rows"],
               lost=self.tally["lost"], duplicated=self.tally["duplicated"])
