"""bsenv: one test run and its exit code.

Env holds the test's temporary folder, the logs to print on failure and
the cleanups to run at the end, and makes its PostgreSQL, hubs and
agents; run(main) runs a test's main(env) and exits 0 (pass), 1 (fail)
or 77 (skip).
"""

import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

from bsbase import KEEP_TMP, SKIP, Skip, log
from bsdaemons import Agent, Hub
from bspg import Postgres
from bsproc import tail


class Env:
    """One test run: a temp folder, registered logs and cleanups."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="bs-%s-" % name)
        self.logs = []
        self.cleanups = []
        self.pgs = []

    def add_log(self, label, path):
        self.logs.append((label, path))

    def add_cleanup(self, fn):
        self.cleanups.append(fn)

    def postgres(self, **kw):
        pg = Postgres(self, **kw)
        self.pgs.append(pg)
        return pg

    def hub(self, pg, **kw):
        return Hub(self, pg, **kw)

    def agent(self, name, branch, key, hubs, **kw):
        return Agent(self, name, branch, key, hubs, **kw)

    def dump_logs(self):
        for label, path in self.logs:
            log("----- last lines of %s log (%s) -----" % (label, path))
            log(tail(path))

    def close(self, failed):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                log("warning: cleanup: %s" % e)
        for pg in self.pgs:
            pg.close()
        if KEEP_TMP:
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run(main, name=None):
    """Runs main(env); exits 0 pass, 1 fail, 77 skip."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    signal.signal(signal.SIGTERM, _on_signal)
    t0 = time.monotonic()
    env = None
    code = 1
    try:
        env = Env(name)
        main(env)
        code = 0
    except Skip as e:
        log("SKIP: %s" % e)
        code = SKIP
    except BaseException as e:  # noqa: B902 -- report everything, then exit 1
        traceback.print_exc(file=sys.stdout)
        log("FAIL: %s" % e)
        if env is not None:
            env.dump_logs()
    finally:
        if env is not None:
            env.close(code == 1)
    dt = time.monotonic() - t0
    log("%s: %s in %.1f s" % (name, {0: "PASS", 1: "FAIL", SKIP: "SKIP"}
                              [code], dt))
    sys.stdout.flush()
    sys.exit(code)
