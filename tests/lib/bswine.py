"""bswine: a throwaway wine prefix for the tests of the Windows build.

Wine(env) makes a fresh prefix under the test's folder (wineboot; the
first start of a prefix takes 10-20 s, which is logged), keeps its
wineserver running for the whole test (-p: persistent) and ends it at
cleanup (wineserver -k, this prefix only). The wineserver must outlive
each command: when it exits, the service manager (services.exe) and every
service go with it, killed rather than stopped, and the next command's
start of services.exe starts the automatic services again.

run() runs a Windows program in the prefix; win_path() turns a Linux path
into the prefix's Z: path; program_data() is the prefix's ProgramData
folder; service() reads the state of a service with "sc query".

The loader is BS_WINE (ctest sets it), else wine64 next to Debian's
/usr/lib/wine/wineserver or on PATH; without one the test is skipped.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

from bsbase import Failure, Skip, log, scaled
from bsproc import free_port


def read_text(path):
    """The text of a file ("" while it does not exist), e.g. a log."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class Timer:
    """Logs how long each step took, for the report."""

    def __init__(self):
        self.t = time.monotonic()

    def lap(self, what):
        now = time.monotonic()
        log("time: %s: %.1f s" % (what, now - self.t))
        self.t = now


def write_agent_ini(wine, path, pos, key, http_port=0, head="", extra=""):
    """An agent.ini for branch b1 with the example's up tables, the POS
    file pos as the prefix sees it and a hub nobody listens on (the
    agent runs without one); head and extra go before and after [agent]'s
    keys."""
    with open(path, "w") as f:
        f.write("%s[agent]\nbranch = b1\nkey = %s\ndatabase = %s\n"
                "hub = tcp://127.0.0.1:%d\nhttp_port = %d\n%s"
                "[table transactions]\n[table transaction_items]\n"
                "[table payments]\n"
                % (head, key, wine.win_path(pos), free_port(), http_port,
                   extra))


def text(data):
    """Output of a Windows program as text, with \\n line ends."""
    return data.decode("utf-8", "replace").replace("\r\n", "\n")


def find_loader():
    for cand in (os.environ.get("BS_WINE"), "/usr/lib/wine/wine64",
                 shutil.which("wine64"), shutil.which("wine")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class Wine:
    """A wine prefix of one test, with its wineserver kept running."""

    def __init__(self, env, name="wine"):
        self.loader = find_loader()
        if self.loader is None:
            raise Skip("wine is not installed (apt-get install wine64)")
        server = os.path.join(os.path.dirname(self.loader), "wineserver")
        self.server = server if os.access(server, os.X_OK) else \
            shutil.which("wineserver")
        if self.server is None:
            raise Skip("wineserver not found beside %s" % self.loader)
        self.prefix = os.path.join(env.dir, name)
        self.env = dict(os.environ, WINEPREFIX=self.prefix, WINEDEBUG="-all",
                        # no Mono or Gecko download prompts
                        WINEDLLOVERRIDES="mscoree,mshtml=")
        self.env.pop("DISPLAY", None)
        env.add_cleanup(self.close)
        t0 = time.monotonic()
        r = self.run(["wineboot", "--init"], timeout=300)
        if r.returncode != 0:
            raise Failure("wineboot --init exited %d: %s"
                          % (r.returncode, r.stderr))
        # Let that server end with the prefix made: under a persistent one,
        # wineboot leaves a second services.exe behind, and "sc" would ask
        # one or the other. The persistent server (it forks and stays)
        # then keeps the one services.exe, and the services, alive
        # between commands.
        subprocess.run([self.server, "-w"], env=self.env, timeout=120)
        subprocess.run([self.server, "-p"], env=self.env, check=True,
                       timeout=60)
        self.boot_seconds = time.monotonic() - t0
        log("wine prefix %s made in %.1f s" % (self.prefix,
                                               self.boot_seconds))

    def run(self, argv, timeout=120):
        """Runs argv (a Windows program and its arguments) in the prefix.

        Returns a CompletedProcess with text output, \\r\\n made \\n. The
        output goes through files, not pipes: the processes a command
        starts (services.exe, on the first one) inherit its output and
        outlive it, and a pipe would stay open as long as they run."""
        with tempfile.TemporaryFile() as out, \
                tempfile.TemporaryFile() as err:
            try:
                r = subprocess.run([self.loader] + list(argv), env=self.env,
                                   stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=err, timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                raise Failure("wine %s did not finish within %d s"
                              % (" ".join(argv), timeout))
            out.seek(0)
            err.seek(0)
            r.stdout = text(out.read())
            r.stderr = text(err.read())
        return r

    def check_run(self, argv, timeout=120):
        r = self.run(argv, timeout)
        if r.returncode != 0:
            raise Failure("wine %s exited %d\nstdout: %s\nstderr: %s"
                          % (" ".join(argv), r.returncode, r.stdout,
                             r.stderr))
        return r

    @staticmethod
    def win_path(path):
        """The Z: path (wine's view of /) of a Linux path."""
        return "Z:" + os.path.abspath(path).replace("/", "\\")

    def drive_c(self, *parts):
        return os.path.join(self.prefix, "drive_c", *parts)

    def program_data(self, *parts):
        return self.drive_c("ProgramData", *parts)

    def service(self, name):
        """(state, win32 exit code, service exit code) from "sc query",
        e.g. ("RUNNING", 0, 0); None when there is no such service."""
        r = self.run(["sc", "query", name])
        m = re.search(r"STATE\s*:\s*\d+\s+(\w+)", r.stdout)
        if r.returncode != 0 or m is None:
            return None
        codes = [int(x) for x in re.findall(r"EXIT_CODE\s*:\s*(\d+)",
                                            r.stdout)]
        return (m.group(1),) + tuple(codes[:2])

    def wait_service(self, name, state, timeout=60):
        """Waits until service name is in state; returns service()."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            s = self.service(name)
            if s is not None and s[0] == state:
                return s
            if time.monotonic() >= deadline:
                raise Failure("timed out after %d s waiting for service "
                              "%s to be %s (it is %s)"
                              % (timeout, name, state, s))
            time.sleep(0.3)

    def close(self):
        """Ends every process of this prefix (and only of this prefix)."""
        subprocess.run([self.server, "-k"], env=self.env, timeout=60)
        subprocess.run([self.server, "-w"], env=self.env, timeout=60)
