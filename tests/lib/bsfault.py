"""bsfault: the shared harness of the fault scenarios (test_fault_*.py).

PosWriter runs the POS simulator as its own process while faults are
injected; proxy puts a faultproxy between agent and hub.
"""

import os
import subprocess
import sys

from bsbase import HERE, Failure, log, scaled
from bsproc import Proc


class PosWriter:
    """The POS simulator (tests/lib/possim.py) as a separate process that
    writes sales into a POS file while the test injects faults: at most
    `rate` sales per second, at most `sales` sales, at most `duration`
    seconds (every bound holds, the first one reached ends it)."""

    def __init__(self, env, db, sales, seed, rate=None, duration=None,
                 update_fraction=0.1, delete_fraction=0.02, name="possim"):
        self.db = db
        self.logpath = os.path.join(env.dir, name + ".log")
        argv = [sys.executable, os.path.join(HERE, "possim.py"), "--db", db,
                "--sales", str(sales), "--seed", str(seed),
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
            raise Failure("possim did not finish within %d s" % timeout)
        rc = self.proc.returncode()
        text = self.proc.log_text().strip().splitlines()
        if rc != 0 or not text:
            raise Failure("possim exited %s: %s" % (rc, "\n".join(text[-5:])))
        self.stats = json.loads(text[-1])
        log("possim: %s" % self.stats)
        return self.stats


def start_writer(env, agent, sales, seed, rate, **kw):
    """A PosWriter on the agent's POS file, started."""
    return PosWriter(env, agent.db, sales, seed, rate, **kw).start()


def proxy(env, target_port):
    """A faultproxy.FaultProxy to 127.0.0.1:target_port, closed at the
    end of the test."""
    import faultproxy
    px = faultproxy.FaultProxy(target_port)
    env.add_cleanup(px.close)
    return px

