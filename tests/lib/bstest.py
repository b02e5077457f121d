"""bstest: the harness of branchsync's integration tests.

Everything here is real: a throwaway PostgreSQL cluster (initdb into a
temporary folder, unix socket only, stopped at exit), the real
branchsync-hub and branchsync-agent binaries as subprocesses, real SQLite
POS files. Network traffic stays on loopback.

A test script looks like:

    import bstest
    def main(env):
        pg = env.postgres()
        hub = env.hub(pg)
        ...
        bstest.check(a == b, "what was checked")
    bstest.run(main)

Exit codes: 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE). On failure
the tails of the hub, agent and PostgreSQL logs are printed. Set
BS_KEEP_TMP=1 to keep the temporary folders for a post-mortem.

Binaries come from BS_BUILD_DIR (ctest sets it), else <source>/build.
Only the standard library, psycopg2 and msgpack are used; run with the
system python3 (/usr/bin/python3), which has python3-psycopg2.
"""

import atexit
import ctypes
import datetime
import decimal
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("BS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(HERE))
BUILD_DIR = os.environ.get("BS_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
KEEP_TMP = os.environ.get("BS_KEEP_TMP") == "1"

# Where each binary lives inside the build folder.
_BINARIES = {
    "branchsync-agent": "agent",
    "branchsync-hub": "hub",
    "bs-rawclient": "tests",
}

UPSTREAM_TABLES = ("transactions", "transaction_items", "payments")

# Master data of the example schema that flows down, with its scope at the
# center: "all" (every branch gets every row) or the column of the center
# table that holds branchsync.branch.id.
DOWN_TABLES = {"products": "all", "branch_prices": "branch_id",
               "stock_allocations": "branch_id"}


# Sanitized builds run several times slower: their tests set BS_TIME_SCALE
# (tests/CMakeLists.txt) and every wait below is stretched by it. The
# scenarios' own figures (events, kills, seeds) stay the same.
TIME_SCALE = max(1.0, float(os.environ.get("BS_TIME_SCALE", "1") or 1))


def scaled(seconds):
    """seconds stretched by BS_TIME_SCALE, for waits on our processes."""
    return seconds * TIME_SCALE


class Skip(Exception):
    """Raised to skip a test (exit 77): a prerequisite is missing."""


class Failure(AssertionError):
    """A check failed."""


# ---------------------------------------------------------------- basics

def log(msg):
    print(msg, flush=True)


def check(cond, what, detail=""):
    """Assert cond; print "ok: what" when it holds, fail with detail else."""
    if not cond:
        raise Failure("check failed: %s%s" % (what,
                                              (": " + str(detail)) if detail != "" else ""))
    log("ok: " + what)


def check_eq(got, want, what):
    """Assert got == want, showing both when they differ."""
    if got != want:
        raise Failure("check failed: %s: got %r, want %r" % (what, got, want))
    shown = repr(got)
    if len(shown) > 100:
        shown = shown[:97] + "..."
    log("ok: %s (%s)" % (what, shown))


def binary(name):
    """Path of a built binary; fails clearly if it is not built."""
    path = os.path.join(BUILD_DIR, _BINARIES[name], name)
    if not os.access(path, os.X_OK):
        raise Failure("%s not found at %s: build the project first "
                      "(or set BS_BUILD_DIR)" % (name, path))
    return path


def source_file(*parts):
    return os.path.join(SOURCE_DIR, *parts)


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
            raise Failure("timed out after %g s waiting for %s"
                          % (timeout, what))
        time.sleep(interval)


def _tail(path, lines=40):
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


# -------------------------------------------------------------- process

class Proc:
    """A long-running subprocess (hub or agent) with stderr to a log file."""

    def __init__(self, name, argv, logpath):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.p = None

    def start(self):
        if self.alive():
            raise Failure("%s already running" % self.name)
        logf = open(self.logpath, "ab")
        logf.write(("--- start %s\n" % " ".join(self.argv)).encode())
        logf.flush()
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                  stdout=logf, stderr=logf,
                                  preexec_fn=_pdeathsig)
        logf.close()

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def returncode(self):
        return None if self.p is None else self.p.poll()

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status (0 = clean stop)."""
        if self.p is None:
            return None
        if self.p.poll() is None:
            timeout = scaled(timeout)
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise Failure("%s did not stop within %d s of SIGTERM"
                              % (self.name, timeout))
        return self.p.returncode

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.p.kill()
        if self.p is not None:
            self.p.wait()

    def log_text(self):
        try:
            with open(self.logpath, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# One sample line of the Prometheus text format: name{labels} value.
PROM_SAMPLE = r'^([a-zA-Z_:][a-zA-Z0-9_:]*)' \
    r'(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"' \
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})?' \
    r' (\S+)$'


def parse_prom(text):
    """{(name, labels text or ""): float} of a Prometheus text page
    (version 0.0.4); raises Failure on a line that is neither a comment
    nor a sample."""
    import re
    sample = re.compile(PROM_SAMPLE)
    out = {}
    for line in text.splitlines():
        if line == "" or line.startswith("#"):
            continue
        m = sample.match(line)
        if m is None:
            raise Failure("not a Prometheus sample line: %r" % line)
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


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


def _check_run(argv, timeout=60, cwd=None):
    r = run_cmd(argv, timeout, cwd=cwd)
    if r.returncode != 0:
        raise Failure("%s exited %d\nstdout: %s\nstderr: %s"
                      % (" ".join(argv), r.returncode, r.stdout, r.stderr))
    return r


# ------------------------------------------------------------ PostgreSQL

def pg_bindir():
    """Folder with initdb/pg_ctl: pg_config --bindir, else the newest
    /usr/lib/postgresql/*/bin; None when PostgreSQL is not installed."""
    cands = []
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0:
            cands.append(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass

    def ver(p):
        try:
            return int(p.split(os.sep)[-2])
        except ValueError:
            return 0
    cands += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=ver,
                    reverse=True)
    for d in cands:
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    return None


class Postgres:
    """A throwaway PostgreSQL cluster on a unix socket in a temp folder.

    Started with fsync=off, synchronous_commit=off and
    full_page_writes=off: the tests want speed, not durability of the test
    cluster across a machine crash. fsync=off survives a process crash
    (kill() below: the OS keeps the written pages), synchronous_commit=off
    does NOT: a commit is reported before its WAL leaves PostgreSQL's
    shared memory, so a crash loses the last acknowledged transactions
    (the agent then sees AGENT-HUB-BEHIND). Tests that crash PostgreSQL
    pass crash_safe=True (synchronous_commit on, fsync still off).
    durable=True keeps PostgreSQL's defaults, for benchmarks; base is the
    folder to make the cluster in.
    """

    DBNAME = "branchsync"
    USER = "postgres"

    def __init__(self, env=None, durable=False, base=None, crash_safe=False):
        self.durable = durable
        self.crash_safe = crash_safe
        if importlib.util.find_spec("psycopg2") is None:
            raise Skip("python3-psycopg2 not installed")
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise Skip("initdb not found (PostgreSQL server not installed)")
        self.as_root = os.getuid() == 0
        self.dir = tempfile.mkdtemp(prefix="bs-pg-", dir=base)
        os.chmod(self.dir, 0o755)  # traversable by the postgres user
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise Skip("running as root but there is no user \"postgres\"")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.logpath = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.running = False
        self.conninfo = "host=%s port=%d dbname=%s user=%s" % (
            self.dir, self.port, self.DBNAME, self.USER)
        atexit.register(self.close)
        if env is not None:
            env.add_log("postgres", self.logpath)
        self._initdb()
        self.start()
        self._createdb()

    def _as_pg(self, argv):
        if self.as_root:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            return [runuser, "-u", "postgres", "--"] + argv
        return argv

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    def _initdb(self):
        _check_run(self._as_pg([self._bin("initdb"), "-D", self.data, "-U",
                                self.USER, "-A", "trust", "-E", "UTF8",
                                "--no-sync", "--locale=C"]), timeout=120,
                   cwd=self.dir)

    def start(self):
        opts = "-k %s -c listen_addresses='' -p %d" % (self.dir, self.port)
        if not self.durable:
            opts += " -c fsync=off -c full_page_writes=off"
            if not self.crash_safe:
                opts += " -c synchronous_commit=off"
        _check_run(self._as_pg([self._bin("pg_ctl"), "-D", self.data, "-l",
                                self.logpath, "-o", opts, "-w", "-t", "60",
                                "start"]), timeout=90, cwd=self.dir)
        self.running = True

    def _createdb(self):
        import psycopg2
        c = psycopg2.connect(self.conninfo.replace(
            "dbname=%s" % self.DBNAME, "dbname=postgres"))
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("CREATE DATABASE " + self.DBNAME)
        c.close()

    def stop(self):
        """pg_ctl stop -m fast."""
        if self.running:
            r = run_cmd(self._as_pg([self._bin("pg_ctl"), "-D", self.data,
                                     "-m", "fast", "-w", "-t", "60",
                                     "stop"]), timeout=90, cwd=self.dir)
            self.running = False
            if r.returncode != 0:
                raise Failure("pg_ctl stop failed: %s" % r.stderr)

    def postmaster_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def kill(self):
        """SIGKILL the postmaster (a crash); its backends exit on their own."""
        pid = self.postmaster_pid()
        os.kill(pid, signal.SIGKILL)
        self.running = False
        wait_until(lambda: _proc_state(pid) in (None, "Z"), 30,
                   "the killed postmaster to die")
        # A dead but unreaped postmaster (its parent is init, which may be
        # slow to reap in a container) still "exists" for the lock file
        # check; the lock file is stale now, so remove it like a reboot
        # would. Then give the orphaned backends a moment to notice.
        if _proc_state(pid) == "Z":
            try:
                os.unlink(os.path.join(self.data, "postmaster.pid"))
            except FileNotFoundError:
                pass
        time.sleep(0.5)

    def restart(self):
        if self.running:
            self.stop()
        # Right after kill() a backend may still hold the shared memory
        # segment; the postmaster then refuses to start. Retry briefly.
        for attempt in range(10):
            try:
                self.start()
                return
            except Failure:
                if attempt == 9:
                    raise
                time.sleep(1)

    def connect(self):
        import psycopg2
        c = psycopg2.connect(self.conninfo)
        c.autocommit = True
        return c

    def psql(self, sql, params=None):
        """Run SQL; returns all rows of the last statement (or [])."""
        c = self.connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            c.close()

    def apply_file(self, path):
        with open(path) as f:
            self.psql(f.read())

    def close(self):
        try:
            self.stop()
        except Exception as e:  # at exit: report, keep cleaning
            log("warning: could not stop PostgreSQL: %s" % e)
        if not KEEP_TMP:
            shutil.rmtree(self.dir, ignore_errors=True)


def _proc_state(pid):
    """State letter of a process ("R", "S", "Z", ...) or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


# ------------------------------------------------------------------ hub

class Hub:
    """branchsync-hub with its own hub.ini, log file and listen port."""

    def __init__(self, env, pg, name="hub", tables=UPSTREAM_TABLES,
                 workers=2, port=None, log_level="info", extra=None,
                 down_tables=None, publish=False, http_listen=None,
                 behind_events=None, behind_seconds=None,
                 silent_seconds=None, sample_interval_s=None,
                 scheme="tcp"):
        """tables: names of the up tables, or {name: {key: value}} with
        extra keys per table (e.g. conflict = insert_only).
        down_tables: {name: scope} (scope "all" or a column of the
        target) or {name: {"scope": ..., "target": ...}}, written as
        direction = down sections. publish: True picks a free port for
        the nudge publisher (self.publish_url), a string is the URL.
        http_listen: the operator HTTP listener, by default 127.0.0.1 and
        a free port (self.http_port); "" turns it off (http_port 0).
        behind_events, behind_seconds, silent_seconds, sample_interval_s:
        written to [hub] when given (extra may set any key too).
        scheme: of self.url (the listen URL), e.g. "tls+tcp" (extra then
        sets tls_cert and tls_key)."""
        self.env = env
        self.pg = pg
        self.name = name
        self.port = port or free_port()
        self.url = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.ini = os.path.join(env.dir, name + ".ini")
        self.logpath = os.path.join(env.dir, name + ".log")
        self.tables = tables
        self.down_tables = dict(down_tables or {})
        self.settings = {"listen": self.url, "postgres": pg.conninfo,
                         "workers": workers, "log_level": log_level}
        if http_listen is None:
            http_listen = "127.0.0.1:%d" % free_port()
        self.settings["http_listen"] = http_listen
        for k, v in (("behind_events", behind_events),
                     ("behind_seconds", behind_seconds),
                     ("silent_seconds", silent_seconds),
                     ("sample_interval_s", sample_interval_s)):
            if v is not None:
                self.settings[k] = v
        self.publish_url = None
        if publish:
            self.publish_url = publish if isinstance(publish, str) else \
                "tcp://127.0.0.1:%d" % free_port()
            self.settings["publish"] = self.publish_url
        self.settings.update(extra or {})
        self.proc = Proc(name, [binary("branchsync-hub"), "run", "-c",
                                self.ini], self.logpath)
        env.add_log(name, self.logpath)
        env.add_cleanup(self.proc.kill)
        self.write_config()

    def write_config(self):
        lines = ["; written by tests/lib/bstest.py", "[hub]"]
        lines += ["%s = %s" % kv for kv in self.settings.items()]
        for t in self.tables:
            lines += ["", "[table %s]" % t]
            # tables may map a name to extra keys (conflict = ...).
            if isinstance(self.tables, dict) and self.tables[t]:
                lines += ["%s = %s" % kv for kv in self.tables[t].items()]
        for t, spec in self.down_tables.items():
            if isinstance(spec, str):
                spec = {"scope": spec}
            lines += ["", "[table %s]" % t, "direction = down"]
            lines += ["%s = %s" % kv for kv in spec.items()]
        with open(self.ini, "w") as f:
            f.write("\n".join(lines) + "\n")

    def cli(self, *args, timeout=60):
        return run_cmd([binary("branchsync-hub")] + list(args)
                       + ["-c", self.ini], timeout)

    def migrate(self):
        r = self.cli("migrate")
        if r.returncode != 0:
            raise Failure("branchsync-hub migrate exited %d: %s"
                          % (r.returncode, r.stderr.strip()))

    def branch_add(self, code):
        """Adds a branch; returns the 64-hex-digit key it printed."""
        r = run_cmd([binary("branchsync-hub"), "branch", "add", code, "-c",
                     self.ini])
        if r.returncode != 0:
            raise Failure("branch add %s exited %d: %s"
                          % (code, r.returncode, r.stderr.strip()))
        key = r.stdout.strip()
        if len(key) != 64 or any(ch not in "0123456789abcdef"
                                 for ch in key.lower()):
            raise Failure("branch add %s printed %r, want 64 hex digits"
                          % (code, r.stdout))
        return key

    def branch_id(self, code):
        rows = self.pg.psql("SELECT id FROM branchsync.branch WHERE code = %s",
                            (code,))
        if not rows:
            raise Failure("branch %r not in branchsync.branch" % code)
        return rows[0][0]

    def watermarks(self, code):
        """[(log_id, seq, tag)] of the branch, sorted."""
        return sorted(self.pg.psql(
            "SELECT w.log_id, w.seq, w.tag FROM branchsync.watermark w "
            "JOIN branchsync.branch b ON b.id = w.branch_id WHERE b.code = %s",
            (code,)))

    @property
    def http_port(self):
        """The operator HTTP listener's port, 0 when it is off."""
        listen = str(self.settings.get("http_listen") or "")
        return int(listen.rsplit(":", 1)[1]) if ":" in listen else 0

    def http_get(self, path, timeout=10):
        """GET path from the operator HTTP listener (127.0.0.1). Returns
        (status, headers, body): headers look names up case-insensitively
        (headers["content-type"]), body is text (UTF-8). An HTTP error
        status is returned, not raised; a connection failure raises
        OSError (urllib.error.URLError)."""
        import urllib.error
        import urllib.request
        url = "http://127.0.0.1:%d%s" % (self.http_port, path)
        # No proxy, whatever the environment says: the hub is local.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=scaled(timeout)) as r:
                return r.status, r.headers, r.read().decode("utf-8",
                                                            "replace")
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read().decode("utf-8",
                                                          "replace")

    def start(self, wait=True):
        self.proc.start()
        if wait:
            wait_until(lambda: port_open(self.port), 30,
                       "%s to listen on %s" % (self.name, self.url),
                       alive=[self.proc])

    def stop(self):
        rc = self.proc.stop()
        if rc not in (0, None):
            raise Failure("%s exited %s on SIGTERM, want 0" % (self.name, rc))
        return rc

    def kill(self):
        self.proc.kill()

    def restart(self):
        self.stop()
        self.start()

    def status(self, *args, want=(0, 2)):
        """Output of "branchsync-hub status" (args e.g. "--json"). Exit 0
        means every enabled branch is ok, 2 that some are behind, silent
        or never seen: both are accepted unless want says otherwise."""
        r = self.cli("status", *args)
        if r.returncode not in want:
            raise Failure("branchsync-hub status exited %d: %s"
                          % (r.returncode, r.stderr.strip()))
        return r.stdout

    def status_json(self):
        """"branchsync-hub status --json" parsed (the /api/status object);
        {"branches": [...]} indexed by code in ["by_code"]."""
        import json
        st = json.loads(self.status("--json"))
        st["by_code"] = {b["code"]: b for b in st.get("branches", [])}
        return st


def setup_center(pg, hub):
    """Applies deploy/center/retail.sql and runs branchsync-hub migrate."""
    pg.apply_file(source_file("deploy", "center", "retail.sql"))
    hub.migrate()


# ---------------------------------------------------------------- agent

def create_pos(path):
    """A new POS SQLite file with the example schema (deploy/pos)."""
    with open(source_file("deploy", "pos", "retail.sql")) as f:
        sql = f.read()
    c = sqlite3.connect(path)
    c.executescript(sql)
    c.close()


class Agent:
    """branchsync-agent with its own agent.ini, POS file and log file."""

    def __init__(self, env, name, branch, key, hubs, db=None,
                 tables=UPSTREAM_TABLES, create=True, down_tables=(),
                 **settings):
        """tables: names of the up tables, or {name: {key: value}} with
        extra keys per table (e.g. exclude = password).
        down_tables: names of tables written as direction = down
        sections (a name may map to a dict of extra keys, e.g. key).
        Each agent gets a free http_port for its status listener unless
        settings name one (http_port=0 turns it off)."""
        self.env = env
        self.name = name
        self.branch = branch
        self.db = db or os.path.join(env.dir, name + ".db")
        self.ini = os.path.join(env.dir, name + ".ini")
        self.logpath = os.path.join(env.dir, name + ".log")
        self.tables = tables
        self.down_tables = down_tables
        if isinstance(hubs, str):
            hubs = [hubs]
        self.settings = {"branch": branch, "key": key, "database": self.db,
                         "hub": ", ".join(hubs), "poll_ms": 50,
                         "request_timeout_ms": 5000, "backoff_min_ms": 50,
                         "backoff_max_ms": 1000, "log_level": "info",
                         "http_port": free_port()}
        self.settings.update(settings)
        self.proc = Proc(name, [binary("branchsync-agent"), "run", "-c",
                                self.ini], self.logpath)
        env.add_log(name, self.logpath)
        env.add_cleanup(self.proc.kill)
        if create and not os.path.exists(self.db):
            create_pos(self.db)
        self.write_config()

    def write_config(self, **changes):
        self.settings.update(changes)
        lines = ["; written by tests/lib/bstest.py", "[agent]"]
        lines += ["%s = %s" % kv for kv in self.settings.items()]
        for t in self.tables:
            lines += ["", "[table %s]" % t]
            if isinstance(self.tables, dict) and self.tables[t]:
                lines += ["%s = %s" % kv for kv in self.tables[t].items()]
        down = self.down_tables
        for t in down:
            lines += ["", "[table %s]" % t, "direction = down"]
            if isinstance(down, dict) and down[t]:
                lines += ["%s = %s" % kv for kv in down[t].items()]
        with open(self.ini, "w") as f:
            f.write("\n".join(lines) + "\n")

    def cli(self, *args, timeout=60):
        return run_cmd([binary("branchsync-agent")] + list(args)
                       + ["-c", self.ini], timeout)

    def init(self, *extra):
        r = self.cli("init", *extra)
        if r.returncode != 0:
            raise Failure("branchsync-agent init exited %d: %s"
                          % (r.returncode, r.stderr.strip()))
        return r

    def start(self):
        self.proc.start()

    def stop(self):
        rc = self.proc.stop()
        if rc not in (0, None):
            raise Failure("%s exited %s on SIGTERM, want 0" % (self.name, rc))
        return rc

    def kill(self):
        self.proc.kill()

    def alive(self):
        return self.proc.alive()

    @property
    def http_port(self):
        """The status listener's port (0: off)."""
        return int(self.settings.get("http_port") or 0)

    def http_get(self, path, timeout=10, headers=False):
        """GET path from the agent's status listener on 127.0.0.1.
        Returns (status, body text), or (status, body, {header: value})
        with headers=True (names in lower case); an HTTP error status is
        returned, not raised. A connection failure raises OSError."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                       timeout=scaled(timeout))
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read().decode("utf-8", "replace")
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()
        return (r.status, body, hdrs) if headers else (r.status, body)

    def status_json(self):
        """`branchsync-agent status --json` as a dict; it must exit 0."""
        import json
        r = self.cli("status", "--json")
        if r.returncode != 0:
            raise Failure("status --json exited %d: %s"
                          % (r.returncode, r.stderr.strip()))
        return json.loads(r.stdout)

    def meta(self):
        return pos_meta(self.db)

    def state(self):
        return log_state(self.db)

    def wait_drained(self, timeout=240, hub=None):
        """Waits until nothing is pending in the POS file's log."""
        alive = [self.proc] + ([hub.proc] if hub else [])

        def drained():
            st = log_state(self.db)
            return st if st["pending"] == 0 else None
        return wait_until(drained, timeout, "%s to drain its log"
                          % self.name, interval=0.2, alive=alive)


# ------------------------------------------------------ SQLite helpers

def sqlite_connect(path, timeout=30):
    c = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    return c


def pos_meta(path):
    c = sqlite_connect(path)
    try:
        return dict(c.execute("SELECT name, value FROM _branchsync_meta"))
    finally:
        c.close()


def log_state(path):
    """Counts in the POS file's log: pending (seq > acked_seq, err NULL),
    rejected, rows, high_seq, plus acked_seq and log_id from the meta."""
    c = sqlite_connect(path)
    try:
        c.execute("BEGIN")
        meta = dict(c.execute("SELECT name, value FROM _branchsync_meta"))
        acked = int(meta.get("acked_seq") or 0)
        rows, high = c.execute(
            "SELECT count(*), coalesce(max(seq), 0) FROM _branchsync_log"
        ).fetchone()
        pending = c.execute(
            "SELECT count(*) FROM _branchsync_log WHERE seq > ? "
            "AND err IS NULL", (acked,)).fetchone()[0]
        rejected = c.execute(
            "SELECT count(*) FROM _branchsync_log WHERE err IS NOT NULL"
        ).fetchone()[0]
        c.execute("COMMIT")
    finally:
        c.close()
    return {"acked_seq": acked, "high_seq": high, "rows": rows,
            "pending": pending, "rejected": rejected,
            "log_id": meta.get("log_id"), "meta": meta}


def sqlite_columns(path, table):
    """Column names of a POS table in declared order, without is_synced."""
    c = sqlite_connect(path)
    try:
        cols = [r[1] for r in c.execute('PRAGMA table_info("%s")'
                                        % table.replace('"', '""'))]
    finally:
        c.close()
    return [x for x in cols if x != "is_synced"]


def _qi(name):
    return '"' + name.replace('"', '""') + '"'


def _sort_key(row):
    return tuple((0, "") if v is None else (1, type(v).__name__, v)
                 for v in row)


def sqlite_rows(path, table, cols=None):
    """All rows of a POS table as a sorted list of tuples."""
    cols = cols or sqlite_columns(path, table)
    c = sqlite_connect(path)
    try:
        rows = [tuple(r) for r in c.execute(
            "SELECT %s FROM %s" % (", ".join(map(_qi, cols)), _qi(table)))]
    finally:
        c.close()
    return sorted(rows, key=_sort_key)


def _pg_norm(v):
    if isinstance(v, datetime.datetime):
        s = v.strftime("%Y-%m-%d %H:%M:%S")
        return s + (".%06d" % v.microsecond if v.microsecond else "")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, bool):
        return int(v)
    return v


def pg_rows(pg, table, cols, branch_id, schema="public"):
    """Rows of a center table for one branch, normalized to compare with
    SQLite: timestamps as 'YYYY-MM-DD HH:MM:SS' text, numerics as int."""
    sql = "SELECT %s FROM %s.%s WHERE branch_id = %%s" % (
        ", ".join(map(_qi, cols)), _qi(schema), _qi(table))
    rows = [tuple(_pg_norm(v) for v in r)
            for r in pg.psql(sql, (branch_id,))]
    return sorted(rows, key=_sort_key)


def compare_table(path, pg, table, branch_id):
    """Checks that a POS table and its center copy for branch_id hold the
    same rows, column by column, each exactly once. Returns the count."""
    cols = sqlite_columns(path, table)
    a = sqlite_rows(path, table, cols)
    b = pg_rows(pg, table, cols, branch_id)
    if a != b:
        sa, sb = set(a), set(b)
        only_pos = sorted(sa - sb, key=_sort_key)[:5]
        only_pg = sorted(sb - sa, key=_sort_key)[:5]
        raise Failure(
            "table %s differs (POS %d rows, center %d rows for branch_id %d)"
            "\n  columns: %s\n  only in POS (first 5): %s\n  only in center"
            " (first 5): %s" % (table, len(a), len(b), branch_id, cols,
                                only_pos, only_pg))
    keycols = pg_key_columns(pg, table)
    dups = pg.psql("SELECT count(*) FROM (SELECT 1 FROM public.%s WHERE "
                   "branch_id = %%s GROUP BY %s HAVING count(*) > 1) d"
                   % (_qi(table), ", ".join(map(_qi, keycols))),
                   (branch_id,))[0][0]
    check_eq(dups, 0, "%s: no key appears twice at the center" % table)
    log("ok: %s: %d rows equal column by column (%s)"
        % (table, len(a), ", ".join(cols)))
    return len(a)


def pg_key_columns(pg, table):
    rows = pg.psql(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
        "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE "
        "i.indrelid = %s::regclass AND i.indisprimary ORDER BY "
        "array_position(i.indkey::int2[], a.attnum)", ("public." + table,))
    return [r[0] for r in rows]


def check_all_synced(path, tables=UPSTREAM_TABLES):
    c = sqlite_connect(path)
    try:
        for t in tables:
            n = c.execute("SELECT count(*) FROM %s WHERE is_synced IS NOT 1"
                          % _qi(t)).fetchone()[0]
            check_eq(n, 0, "%s: every POS row has is_synced = 1" % t)
    finally:
        c.close()


def check_only_marker(path):
    """After a full drain the log holds exactly the marker row: the last
    acknowledged entry, so max(seq) never goes back."""
    st = log_state(path)
    check_eq(st["pending"], 0, "no pending events in _branchsync_log")
    if st["rejected"]:
        log("rejected entries: %r" % sqlite_all(
            path, "SELECT seq, tbl, op, k, err FROM _branchsync_log "
            "WHERE err IS NOT NULL ORDER BY seq LIMIT 20"))
    check_eq(st["rejected"], 0, "no rejected events in _branchsync_log")
    check_eq(st["rows"], 1, "_branchsync_log holds only the marker row")
    check_eq(st["high_seq"], st["acked_seq"],
             "the marker row is the last acknowledged seq")
    return st


def sqlite_copy(src, dst):
    """Consistent copy of a SQLite file (the backup API), like a backup
    tool would take; also used to put a backup back in place."""
    a = sqlite3.connect(src, timeout=30)
    b = sqlite3.connect(dst, timeout=30)
    try:
        a.backup(b)
    finally:
        b.close()
        a.close()


def pending_keys(path):
    """{(table, key tuple)} of the log entries not yet acknowledged."""
    import json
    st = log_state(path)
    c = sqlite_connect(path)
    try:
        rows = c.execute("SELECT tbl, k FROM _branchsync_log WHERE seq > ?",
                         (st["acked_seq"],)).fetchall()
    finally:
        c.close()
    out = set()
    for tbl, k in rows:
        if isinstance(k, str) and k.startswith("["):
            out.add((tbl, tuple(json.loads(k))))
        else:
            out.add((tbl, (k,)))
    return out


def compare_keys(path, pg, branch_id, keys):
    """For each (table, key): the POS row and the center row are equal,
    or both absent. Returns the number of keys checked."""
    by_table = {}
    for tbl, key in keys:
        by_table.setdefault(tbl, []).append(key)
    for tbl, klist in sorted(by_table.items()):
        cols = sqlite_columns(path, tbl)
        kcols = [x for x in pg_key_columns(pg, tbl) if x != "branch_id"]
        where = " AND ".join("%s = ?" % _qi(x) for x in kcols)
        c = sqlite_connect(path)
        bad = []
        try:
            for key in klist:
                a = c.execute("SELECT %s FROM %s WHERE %s" % (
                    ", ".join(map(_qi, cols)), _qi(tbl), where),
                    key).fetchall()
                b = pg.psql("SELECT %s FROM public.%s WHERE branch_id = %%s "
                            "AND %s" % (", ".join(map(_qi, cols)), _qi(tbl),
                                        where.replace("?", "%s")),
                            (branch_id,) + tuple(key))
                b = [tuple(_pg_norm(v) for v in r) for r in b]
                a = [tuple(r) for r in a]
                if a != b:
                    bad.append((key, a, b))
        finally:
            c.close()
        if bad:
            raise Failure("%s: %d of %d keys differ between POS and center;"
                          " first: key %r POS %r center %r"
                          % (tbl, len(bad), len(klist), *bad[0]))
        log("ok: %s: %d changed keys equal at the center" % (tbl, len(klist)))
    return len(keys)


def check_replicated(pg, hub, agent, tables=UPSTREAM_TABLES):
    """The end state after a full drain: every POS row at the center for
    this branch, column by column, once; every POS row is_synced = 1; the
    log holds only its marker; the hub's watermark for the current log_id
    is the agent's acked_seq."""
    bid = hub.branch_id(agent.branch)
    total = 0
    for t in tables:
        total += compare_table(agent.db, pg, t, bid)
    check_all_synced(agent.db, tables)
    st = check_only_marker(agent.db)
    wm = {lid: seq for lid, seq, _ in hub.watermarks(agent.branch)}
    check_eq(wm.get(st["log_id"]), st["acked_seq"],
             "hub watermark of the current log_id = agent acked_seq")
    return total


# ----------------------------------------------------------- downstream

def pg_columns(pg, table, schema="public"):
    """Column names of a center table in declared order."""
    return [r[0] for r in pg.psql(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        ("%s.%s" % (_qi(schema), _qi(table)),))]


def down_columns(path, pg, table, scope=None):
    """The columns a POS table and its center table both have (POS order),
    without is_synced and the scope column."""
    scope = DOWN_TABLES.get(table, "all") if scope is None else scope
    center = set(pg_columns(pg, table)) - {scope}
    return [c for c in sqlite_columns(path, table) if c in center]


_T_SEEN = set()


def _pos_norm(v, table=None, col=None):
    # to_jsonb() writes a timestamp as 2024-03-01T08:00:00; the POS writes
    # 2024-03-01 08:00:00. Both denote the same instant, and SQLite's date
    # functions read both; compare them as the same value (logged once).
    if isinstance(v, str) and len(v) >= 19 and v[10] == "T" and \
            v[4] == "-" and v[7] == "-" and v[13] == ":" and v[16] == ":":
        if (table, col) not in _T_SEEN:
            _T_SEEN.add((table, col))
            log("note: %s.%s arrived in ISO form with 'T' (%r)"
                % (table, col, v))
        return v[:10] + " " + v[11:]
    return v


def down_rows(path, pg, table, branch_id, scope=None, cols=None,
              where_pos="", where_pg=""):
    """(POS rows, center rows for branch_id) of a down table over the
    columns both have, each a sorted list of normalized tuples."""
    scope = DOWN_TABLES.get(table, "all") if scope is None else scope
    cols = cols or down_columns(path, pg, table, scope)
    c = sqlite_connect(path)
    try:
        a = [tuple(_pos_norm(v, table, col) for v, col in zip(r, cols))
             for r in c.execute("SELECT %s FROM %s %s" % (
                 ", ".join(map(_qi, cols)), _qi(table), where_pos))]
    finally:
        c.close()
    conds = ([] if scope == "all" else
             ["%s = %d" % (_qi(scope), int(branch_id))])
    if where_pg:
        conds.append(where_pg)
    sql = "SELECT %s FROM public.%s %s" % (
        ", ".join(map(_qi, cols)), _qi(table),
        ("WHERE " + " AND ".join(conds)) if conds else "")
    b = [tuple(_pg_norm(v) for v in r) for r in pg.psql(sql)]
    return sorted(a, key=_sort_key), sorted(b, key=_sort_key)


def compare_down(path, pg, table, branch_id, scope=None, quiet=False,
                 **kw):
    """Checks that a POS table holds exactly the center's rows of a down
    table for branch_id, column by column over the columns both have.
    Returns the row count."""
    scope = DOWN_TABLES.get(table, "all") if scope is None else scope
    cols = down_columns(path, pg, table, scope)
    a, b = down_rows(path, pg, table, branch_id, scope, cols, **kw)
    if a != b:
        sa, sb = set(a), set(b)
        raise Failure(
            "down table %s differs (POS %d rows, center %d rows for branch "
            "%d, scope %s)\n  columns: %s\n  only in POS (first 5): %s\n"
            "  only in center (first 5): %s"
            % (table, len(a), len(b), branch_id, scope, cols,
               sorted(sa - sb, key=_sort_key)[:5],
               sorted(sb - sa, key=_sort_key)[:5]))
    if not quiet:
        log("ok: %s: %d rows equal to the center's column by column (%s)"
            % (table, len(a), ", ".join(cols)))
    return len(a)


def down_converged(path, pg, branch_id, tables=None):
    """True when every down table of the POS equals the center's rows."""
    for t in (tables or DOWN_TABLES):
        a, b = down_rows(path, pg, t, branch_id)
        if a != b:
            return False
    return True


def wait_down_converged(agent, pg, branch_id, tables=None, timeout=60,
                        alive=(), interval=0.2):
    """Waits until the agent's POS file holds the center's rows of every
    down table, then checks them once more with a report."""
    tables = tables or list(DOWN_TABLES)
    wait_until(lambda: down_converged(agent.db, pg, branch_id, tables),
               timeout, "%s to converge on %s" % (agent.name,
                                                  ", ".join(tables)),
               interval=interval, alive=[agent.proc] + list(alive))
    return sum(compare_down(agent.db, pg, t, branch_id) for t in tables)


def feed_count(pg, branch_id=None):
    """(rows, max id) of branchsync.change visible to branch_id (its own
    scope plus scope 0); all rows when branch_id is None."""
    if branch_id is None:
        return tuple(pg.psql("SELECT count(*), coalesce(max(id), 0) FROM "
                             "branchsync.change")[0])
    return tuple(pg.psql("SELECT count(*), coalesce(max(id), 0) FROM "
                         "branchsync.change WHERE scope IN (0, %s)",
                         (branch_id,))[0])


def down_center(env, publish=True, tables=UPSTREAM_TABLES,
                down_tables=None, start=True, **hubkw):
    """PostgreSQL with the example center schema, a hub with the upstream
    and downstream tables of the example (nudges on by default), migrated
    and started. Returns (pg, hub)."""
    pg = env.postgres()
    hub = env.hub(pg, tables=tables, publish=publish,
                  down_tables=DOWN_TABLES if down_tables is None
                  else down_tables, **hubkw)
    setup_center(pg, hub)
    if start:
        hub.start()
    return pg, hub


def down_agent(env, hub, code, name=None, start=True, nudge=True,
               down_tables=None, **kw):
    """Adds branch code at the hub and an agent for it with the example's
    down tables, nudged by the hub's publisher; init, and start unless
    start is False. Returns (agent, branch id)."""
    key = hub.branch_add(code)
    if nudge and hub.publish_url:
        kw.setdefault("nudge", hub.publish_url)
    a = env.agent(name or code, code, key, hub.url,
                  down_tables=list(DOWN_TABLES) if down_tables is None
                  else down_tables, **kw)
    a.init()
    if start:
        a.start()
    return a, hub.branch_id(code)


def seed_products(pg, first, last, price_base=100):
    """Inserts chain-wide products first..last at the center (one
    statement); timestamps are whole seconds from 2024-03-01 08:00."""
    pg.psql("INSERT INTO public.products(id, name, sku, barcode, price, "
            "cost_price, category, is_active, created_at, updated_at) "
            "SELECT g, 'Product ' || g, 'SKU-' || g, lpad(g::text, 13, '0'),"
            " %s + g %% 900, 50 + g %% 400, 'cat' || (g %% 10), 1, "
            "timestamp '2024-03-01 08:00:00' + g * interval '1 second', "
            "timestamp '2024-03-01 08:00:00' + g * interval '1 second' "
            "FROM generate_series(%s, %s) g", (price_base, first, last))


def seed_branch_rows(pg, table, branch_id, first, last, value):
    """branch_prices or stock_allocations rows (branch_id, product
    first..last, value + product id)."""
    col = "price" if table == "branch_prices" else "qty"
    pg.psql("INSERT INTO public.%s(branch_id, product_id, %s) SELECT %%s, "
            "g, %%s + g FROM generate_series(%%s, %%s) g" % (_qi(table), col),
            (branch_id, value, first, last))


def sqlite_one(path, sql, params=()):
    """First row of a query on a POS file (None when there is none)."""
    c = sqlite_connect(path)
    try:
        return c.execute(sql, params).fetchone()
    finally:
        c.close()


def sqlite_all(path, sql, params=()):
    """Every row of a query on a POS file."""
    c = sqlite_connect(path)
    try:
        return c.execute(sql, params).fetchall()
    finally:
        c.close()


def possim_run(db, **kw):
    """Runs the POS simulator (tests/lib/possim.py) in this process."""
    import possim
    st = possim.simulate(db, **kw)
    log("possim: %s" % st)
    return st


# ------------------------------------------------------- fault harness

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


def hub_totals(pg, code):
    """(applied_total, rejected_total) of a branch in branch_status."""
    rows = pg.psql("SELECT s.applied_total, s.rejected_total FROM "
                   "branchsync.branch_status s JOIN branchsync.branch b ON "
                   "b.id = s.branch_id WHERE b.code = %s", (code,))
    return tuple(rows[0]) if rows else (0, 0)


def check_synced_rows(path, pg, branch_id, tables=UPSTREAM_TABLES):
    """Every POS row with is_synced = 1 is at the center with equal values
    (DESIGN invariant 8); holds at any moment, not only after a drain.
    Returns the number of rows checked."""
    n = 0
    for t in tables:
        cols = sqlite_columns(path, t)
        c = sqlite_connect(path)
        try:
            rows = [tuple(r) for r in c.execute(
                "SELECT %s FROM %s WHERE is_synced = 1" % (
                    ", ".join(map(_qi, cols)), _qi(t)))]
        finally:
            c.close()
        center = set(pg_rows(pg, t, cols, branch_id))
        missing = [r for r in rows if r not in center]
        if missing:
            raise Failure("%s: %d of %d rows with is_synced = 1 are not at "
                          "the center with equal values; first: %r"
                          % (t, len(missing), len(rows), missing[0]))
        n += len(rows)
    log("ok: %d rows with is_synced = 1 are at the center, equal" % n)
    return n


def check_stock(path, pg, branch_id):
    """The central stock moved by this branch's sales equals minus the sum
    of the POS's sale lines per product (no allocations were made, so
    stock_allocations.qty is exactly the sum of the deltas the
    transaction_items triggers applied). A line applied twice as an
    insert, or lost, would show here."""
    c = sqlite_connect(path)
    try:
        pos = {pid: -q for pid, q in c.execute(
            "SELECT product_id, sum(qty) FROM transaction_items "
            "GROUP BY product_id") if q}
    finally:
        c.close()
    center = {pid: int(q) for pid, q in pg.psql(
        "SELECT product_id, qty FROM public.stock_allocations WHERE "
        "branch_id = %s AND qty <> 0", (branch_id,))}
    check_eq(center, pos, "central stock = minus the POS's sold quantities "
             "per product")


def check_invariants(pg, hub, agents, base=None, stock=True):
    """The fault scenarios' invariant checker, after a full drain.

    For each agent (its POS file against PostgreSQL, branch from its
    credential):
    1. every POS row is at the center exactly once with equal values, no
       center row is extra, no key appears twice (compare_table);
    2. every POS row is_synced = 1 (after a drain; check_synced_rows is
       the form that holds at any time);
    3. the log holds only its marker and the hub's watermark for the
       current log_id equals the agent's acked_seq; order: the center's
       final row state equals the POS's for every key, which a reordered
       apply of two writes of one key would break;
    4. nothing applied twice: the hub counts applied_total (and
       rejected_total) in the same transaction that moves the watermark,
       only for events above the watermark it locked. The log's seqs are
       dense (AUTOINCREMENT; a rolled-back POS write rolls the counter
       back too), so for a log that started at seq base (acked_seq when
       the hub first saw it, 0 for a new POS file) the events are exactly
       base+1 .. high_seq, and applied_total + rejected_total must equal
       high_seq - base = watermark - base. Any event applied twice would
       make the total larger, any lost one smaller;
    5. central stock = minus the POS's sold quantities (check_stock).
    Returns {"events": total events, "rows": rows compared}.
    """
    base = base or {}
    events = rows = 0
    for a in agents:
        bid = hub.branch_id(a.branch)
        for t in UPSTREAM_TABLES:
            rows += compare_table(a.db, pg, t, bid)
        check_all_synced(a.db)
        st = check_only_marker(a.db)
        wm = {lid: seq for lid, seq, _ in hub.watermarks(a.branch)}
        check_eq(wm.get(st["log_id"]), st["acked_seq"],
                 "%s: hub watermark of the current log_id = agent "
                 "acked_seq" % a.name)
        check_eq(len(wm), 1, "%s: one log_id at the hub" % a.name)
        applied, rejected = hub_totals(pg, a.branch)
        b = base.get(a.name, 0)
        check_eq(applied + rejected, st["high_seq"] - b,
                 "%s: hub applied_total + rejected_total = events in the "
                 "log (high_seq %d - base %d): nothing applied twice, "
                 "nothing lost" % (a.name, st["high_seq"], b))
        if stock:
            check_stock(a.db, pg, bid)
        events += st["high_seq"] - b
    return {"events": events, "rows": rows}


def tally(pg, hub, agent, base=0):
    """Counts without failing, for the scenario reports: events (in the
    log), rows (POS rows of the upstream tables), lost (POS rows not at
    the center with equal values, plus events the hub never counted),
    duplicated (center rows beyond one per key, plus events the hub
    counted beyond the log)."""
    bid = hub.branch_id(agent.branch)
    st = log_state(agent.db)
    events = st["high_seq"] - base
    applied, rejected = hub_totals(pg, agent.branch)
    rows = lost = dup = 0
    for t in UPSTREAM_TABLES:
        cols = sqlite_columns(agent.db, t)
        a = sqlite_rows(agent.db, t, cols)
        b = pg_rows(pg, t, cols, bid)
        rows += len(a)
        bset = set(b)
        lost += sum(1 for r in a if r not in bset)
        dup += len(b) - len(bset)
    counted = applied + rejected
    lost += max(0, events - counted)
    dup += max(0, counted - events)
    return {"events": events, "rows": rows, "lost": lost,
            "duplicated": dup}


def report(scenario, **figures):
    """Prints the one line docs/reliability.md and tests/bench/soak.py
    read: RESULT scenario key=value ..."""
    log("RESULT %s %s" % (scenario, " ".join(
        "%s=%s" % kv for kv in figures.items())))


# ----------------------------------------------------------------- env

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
            log(_tail(path))

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
