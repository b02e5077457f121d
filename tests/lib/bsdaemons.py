"""bsdaemons: the branchsync-hub and branchsync-agent of a test.

Hub and Agent write their own ini file (hub.ini, agent.ini) from keyword
arguments, run the daemon as a Proc with its log in the test's folder,
and wrap the command line (migrate, branch add, init, status) and the
HTTP listeners. setup_center loads the example center schema and
migrates; parse_prom reads a Prometheus text page of either daemon.
"""

import os

from bsbase import UPSTREAM_TABLES, Failure, scaled, source_file
from bsinvariants import log_state
from bspos import create_pos, pos_meta
from bsproc import (Proc, binary, command, free_port, port_open, run_cmd,
                    wait_until)


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


class Daemon:
    """What hub and agent share: self.proc (a Proc) and self.name."""

    def stop(self):
        """SIGTERM; a clean stop exits 0, anything else fails the test."""
        rc = self.proc.stop()
        if rc not in (0, None):
            raise Failure("%s exited %s on SIGTERM, want 0" % (self.name, rc))
        return rc

    def kill(self):
        self.proc.kill()

    def alive(self):
        return self.proc.alive()


class Hub(Daemon):
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
        lines = ["; written by tests/lib/bsdaemons.py", "[hub]"]
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


class Agent(Daemon):
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
        self.proc = Proc(name, command("branchsync-agent") + ["run", "-c",
                                                              self.ini],
                         self.logpath, target=True)
        env.add_log(name, self.logpath)
        env.add_cleanup(self.proc.kill)
        if create and not os.path.exists(self.db):
            create_pos(self.db)
        self.write_config()

    def write_config(self, **changes):
        self.settings.update(changes)
        lines = ["; written by tests/lib/bsdaemons.py", "[agent]"]
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
        return run_cmd(command("branchsync-agent") + list(args)
                       + ["-c", self.ini], timeout)

    def init(self, *extra):
        r = self.cli("init", *extra)
        if r.returncode != 0:
            raise Failure("branchsync-agent init exited %d: %s"
                          % (r.returncode, r.stderr.strip()))
        return r

    def start(self):
        self.proc.start()



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
