"""bspg: the throwaway PostgreSQL cluster of a test.

pg_bindir finds initdb and pg_ctl; Postgres makes a cluster in a
temporary folder (unix socket only), creates the branchsync database,
runs SQL, and can stop, crash (SIGKILL) and restart the cluster for the
fault scenarios.
"""

import atexit
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from bsbase import KEEP_TMP, Failure, Skip, log
from bsproc import check_run, free_port, proc_state, run_cmd, wait_until


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

    def __init__(self, env=None, durable=False, base=None, crash_safe=False,
                 settings=None):
        """settings: extra server settings {name: value}, e.g.
        {"shared_preload_libraries": "pg_stat_statements"}."""
        self.durable = durable
        self.crash_safe = crash_safe
        self.settings = dict(settings or {})
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
        check_run(self._as_pg([self._bin("initdb"), "-D", self.data, "-U",
                                self.USER, "-A", "trust", "-E", "UTF8",
                                "--no-sync", "--locale=C"]), timeout=120,
                   cwd=self.dir)

    def start(self):
        opts = "-k %s -c listen_addresses='' -p %d" % (self.dir, self.port)
        if not self.durable:
            opts += " -c fsync=off -c full_page_writes=off"
            if not self.crash_safe:
                opts += " -c synchronous_commit=off"
        for k, v in self.settings.items():
            opts += " -c %s=%s" % (k, v)
        check_run(self._as_pg([self._bin("pg_ctl"), "-D", self.data, "-l",
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
        wait_until(lambda: proc_state(pid) in (None, "Z"), 30,
                   "the killed postmaster to die")
        # A dead but unreaped postmaster (its parent is init, which may be
        # slow to reap in a container) still "exists" for the lock file
        # check; the lock file is stale now, so remove it like a reboot
        # would. Then give the orphaned backends a moment to notice.
        if proc_state(pid) == "Z":
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
