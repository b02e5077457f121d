"""bsproc: processes, commands, ports and waits of the test harness.

Proc runs a long-lived subprocess (a hub, an agent, the POS simulator)
with its output in a log file and SIGKILL if the test process dies;
run_cmd runs a command to completion; binary() finds a built executable
and command() gives the argv that runs it (behind BS_AGENT_RUNNER for the
platform under test); peak_rss_kb reads a process's peak memory; free_port/port_open deal with loopback TCP ports; wait_until polls a
condition within a time scaled by BS_TIME_SCALE.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time

from bsbase import (AGENT_EXE_SUFFIX, AGENT_RUNNER, AGENT_STOP_SIGNAL,
                    AGENT_TTY, BUILD_DIR, HUB_BUILD_DIR, Failure, scaled)


# Where each binary lives inside its build folder, and whether it is a
# program of the platform under test (True: BS_BUILD_DIR, run behind
# BS_AGENT_RUNNER) or of the build machine (False: BS_HUB_BUILD_DIR).
_BINARIES = {
    "branchsync-agent": ("agent", True),
    "bs-poswrite": ("tests", True),
    "branchsync-hub": ("hub", False),
    "bs-rawclient": ("tests", False),
}


def binary(name):
    """Path of a built binary; fails clearly if it is not built."""
    subdir, target = _BINARIES[name]
    if target:
        path = os.path.join(BUILD_DIR, subdir, name + AGENT_EXE_SUFFIX)
        var = "BS_BUILD_DIR"
    else:
        path = os.path.join(HUB_BUILD_DIR, subdir, name)
        var = "BS_HUB_BUILD_DIR"
    if not os.access(path, os.X_OK):
        raise Failure("%s not found at %s: build the project first "
                      "(or set %s)" % (name, path, var))
    return path


def command(name):
    """The argv that runs a built binary: its path, behind BS_AGENT_RUNNER
    when it is a program of the platform under test."""
    return (AGENT_RUNNER if _BINARIES[name][1] else []) + [binary(name)]


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, what, interval=0.1, alive=()):
    """Poll pred() until it returns a true value, which is returned.

    Fails after timeout seconds with "timed out after N s waiting for
    <what>", or at once when one of the processes in alive has exited.
    """
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        for p in alive:
            if not p.alive():
                raise Failure("%s exited (status %s) while waiting for %s"
                              % (p.name, p.returncode(), what))
        if time.monotonic() >= deadline:
            raise Failure("timed out after %g s waiting for %s%s"
                          % (timeout, what, stacks(alive)))
        time.sleep(interval)


def stacks(procs):
    """The threads' stacks of each running process in procs, for a
    timeout's message: where a daemon waits tells why nothing happened.
    Empty without gdb (or when it cannot attach)."""
    gdb = shutil.which("gdb")
    out = ""
    for p in procs if gdb else ():
        if not p.alive() or p.p is None:
            continue
        try:
            r = subprocess.run([gdb, "-p", str(p.p.pid), "-batch", "-nx",
                                "-ex", "thread apply all bt"],
                               capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        bt = [ln for ln in r.stdout.splitlines()
              if ln.startswith(("Thread ", "#"))]
        if bt:
            out += "\n--- stacks of %s (pid %d):\n%s" % (
                p.name, p.p.pid, "\n".join(bt))
    return out


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()[-64 * 1024:]
    except OSError as e:
        return "(cannot read: %s)" % e
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def _pdeathsig():
    """preexec_fn: the child gets SIGKILL if the test process dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Proc:
    """A long-running subprocess (hub or agent) with stderr to a log file."""

    def __init__(self, name, argv, logpath, target=False):
        """target: a program of the platform under test, stopped with
        BS_AGENT_STOP_SIGNAL and given a terminal with BS_AGENT_TTY."""
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.p = None
        self.stop_signal = signal.SIGTERM
        self.tty = False
        if target:
            self.stop_signal = getattr(signal, "SIG" + AGENT_STOP_SIGNAL)
            self.tty = AGENT_TTY
        self.pty = None
        # Extra environment of the next start(), e.g. {"BS_FAULT": ...}.
        self.env = {}

    def start(self):
        if self.alive():
            raise Failure("%s already running" % self.name)
        logf = open(self.logpath, "ab")
        logf.write(("--- start %s\n" % " ".join(self.argv)).encode())
        logf.flush()
        env = dict(os.environ, **self.env) if self.env else None
        stdin = subprocess.DEVNULL
        if self.tty:
            import pty
            self.close_pty()
            self.pty = pty.openpty()
            stdin = self.pty[1]
        self.p = subprocess.Popen(self.argv, stdin=stdin,
                                  stdout=logf, stderr=logf, env=env,
                                  preexec_fn=_pdeathsig)
        logf.close()

    def close_pty(self):
        if self.pty is not None:
            for fd in self.pty:
                os.close(fd)
            self.pty = None

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def returncode(self):
        return None if self.p is None else self.p.poll()

    def peak_rss_kb(self):
        """VmHWM of the running process (peak_rss_kb), None if stopped."""
        return peak_rss_kb(self.p.pid) if self.alive() else None

    def stop(self, timeout=30):
        """SIGTERM (or the platform's stop signal) and wait; returns the
        exit status (0 = clean stop)."""
        if self.p is None:
            return None
        if self.p.poll() is None:
            timeout = scaled(timeout)
            self.p.send_signal(self.stop_signal)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise Failure("%s did not stop within %d s of %s"
                              % (self.name, timeout,
                                 signal.Signals(self.stop_signal).name))
        self.close_pty()
        return self.p.returncode

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.p.kill()
        if self.p is not None:
            self.p.wait()
        self.close_pty()

    def log_text(self):
        try:
            with open(self.logpath, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def run_cmd(argv, timeout=60, input=None, cwd=None):
    """Run a command to completion; returns CompletedProcess (text)."""
    kw = {"input": input} if input is not None else {
        "stdin": subprocess.DEVNULL}
    timeout = scaled(timeout)
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, **kw)
    except subprocess.TimeoutExpired:
        raise Failure("%s did not finish within %d s" % (" ".join(argv),
                                                         timeout))


def check_run(argv, timeout=60, cwd=None):
    r = run_cmd(argv, timeout, cwd=cwd)
    if r.returncode != 0:
        raise Failure("%s exited %d\nstdout: %s\nstderr: %s"
                      % (" ".join(argv), r.returncode, r.stdout, r.stderr))
    return r


def peak_rss_kb(pid):
    """Peak resident set size (VmHWM, KiB) of a running process, or None.
    For a program behind BS_AGENT_RUNNER it is the runner's (an emulator
    holds the program and itself): an upper bound of the program's."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_state(pid):
    """State letter of a process ("R", "S", "Z", ...) or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def cpu_s(pid):
    """CPU seconds (user + system) a running process has used; 0 if it
    is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_cpu_s(pg):
    """CPU seconds of a PostgreSQL: its postmaster and every process it
    runs now, plus what its exited children used. A difference of two
    readings is what it spent in between."""
    pm = pg.postmaster_pid()
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(d) == pm or int(fields[1]) == pm:
            total += cpu_s(int(d))
    with open("/proc/%d/stat" % pm) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return total + (int(fields[13]) + int(fields[14])) \
        / os.sysconf("SC_CLK_TCK")
