"""test_agent_status: what an operator sees of one branch (issue 5, agent).

1. no hub: an agent with pending sales and no hub listening. Its status
   (`status --json`) shows the pending events, queue_bytes > 0,
   hub_reachable false and the last error; GET /status on its listener
   has the same keys and values; GET /metrics is Prometheus text (every
   sample line `name{labels} value`) with
   branchsync_agent_queue_events{branch="b1"} equal to the pending count
   and branchsync_agent_hub_up 0; other paths are 404;
2. the listener is bound to 127.0.0.1 only: /proc/net/tcp lists it on
   127.0.0.1 and a connection to 127.0.0.2 (another loopback address)
   is refused;
3. hub back: the agent drains; hub_reachable true, queue 0, last_ack set,
   in the HTTP and the CLI status (meta rows written at the transition);
   more sales drain without rewriting the hub_state meta rows (no write
   per batch);
4. http_port = 0: the agent runs and listens on no TCP port;
5. port in use: `run` stops at startup with exit 1 and an error naming
   http_port.
"""
import json
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                    r'(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})?'
                    r' (\S+)$')
# Values that must agree between the CLI and the listener at one moment.
SAME = ("branch", "till", "database", "log_id", "version", "acked_seq",
        "high_seq", "pending_events", "rejected_events", "retry_events", "last_ack",
        "hub_reachable", "hub_state_since", "down_cursor")


def http_status(a, quiet=False):
    """GET /status as a dict; with quiet (for polling) no "ok" line, and
    None while the listener is not up yet."""
    try:
        code, body = a.http_get("/status")
    except OSError:
        if quiet:
            return None
        raise
    if quiet and code != 200:
        raise bstest.Failure("GET /status answered %d: %s" % (code, body))
    if not quiet:
        check_eq(code, 200, "GET /status answers 200")
    return json.loads(body)


def parse_metrics(text):
    """{(name, labels text): float} of a Prometheus text page; fails on
    a line that is neither a comment nor a sample."""
    out = {}
    for line in text.splitlines():
        if line == "" or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m is None:
            raise bstest.Failure("not a Prometheus sample line: %r" % line)
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def listening(pid):
    """[(ip, port)] of the TCP sockets process pid listens on."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            if col[3] != "0A" or col[9] not in inodes:  # 0A = LISTEN
                continue
            addr, port = col[1].split(":")
            if len(addr) == 8:
                ip = socket.inet_ntop(socket.AF_INET,
                                      bytes.fromhex(addr)[::-1])
            else:
                ip = "ipv6:" + addr
            out.append((ip, int(port, 16)))
    return out


def no_hub(a):
    """Part 1: pending events and no hub."""
    pending = a.state()["pending"]
    bstest.wait_until(lambda: (http_status(a, True) or {}).get(
        "hub_reachable") is False, 30, "the agent to find no hub",
        alive=[a.proc])
    st = a.status_json()
    check_eq(st["pending_events"], pending, "status --json: pending_events "
             "= the log's pending count")
    check(st["queue_bytes"] > 0, "status --json: queue_bytes > 0",
          st["queue_bytes"])
    check_eq(st["hub_reachable"], False, "status --json: hub_reachable false")
    check(isinstance(st["last_error"], str) and "hub" in st["last_error"],
          "status --json: last_error says why", st["last_error"])
    check(isinstance(st["hub_state_since"], int), "status --json: "
          "hub_state_since set", st["hub_state_since"])
    check_eq(st["last_ack"], None, "status --json: never acknowledged")
    hs = http_status(a)
    check_eq(sorted(hs), sorted(st), "GET /status has the keys of status "
             "--json")
    check_eq({k: hs[k] for k in SAME}, {k: st[k] for k in SAME},
             "GET /status and status --json agree")
    check(hs["queue_bytes"] > 0 and hs["last_error"], "GET /status: "
          "queue_bytes and last_error set")
    text = bstest.run_cmd([bstest.binary("branchsync-agent"), "status",
                           "-c", a.ini]).stdout
    check("unreachable" in text and "queue_bytes:" in text,
          "status (text) says the hub is unreachable", text)

    code, body, hdr = a.http_get("/metrics", headers=True)
    check_eq(code, 200, "GET /metrics answers 200")
    check(hdr.get("content-type", "").startswith("text/plain"),
          "GET /metrics is text/plain", hdr)
    m = parse_metrics(body)
    br = '{branch="%s"}' % a.branch
    check_eq(m.get(("branchsync_agent_queue_events", br)), float(pending),
             "branchsync_agent_queue_events = pending")
    check_eq(m.get(("branchsync_agent_hub_up", br)), 0.0,
             "branchsync_agent_hub_up = 0")
    check(("branchsync_agent_last_ack_timestamp_seconds", br) not in m,
          "no last_ack sample before the first ACK")
    check(m.get(("branchsync_agent_queue_bytes", br), 0) > 0,
          "branchsync_agent_queue_bytes > 0")
    info = [k for k in m if k[0] == "branchsync_agent_info"]
    check(len(info) == 1 and hs["log_id"] in info[0][1]
          and 'branch="b1"' in info[0][1], "branchsync_agent_info names "
          "branch and log_id", info)
    for name in ("oldest_pending_seconds", "rejected_events", "stalled",
                 "outbox_warning", "down_cursor"):
        check(("branchsync_agent_" + name, br) in m,
              "metrics have branchsync_agent_%s" % name)
    check_eq(a.http_get("/nope")[0], 404, "an unknown path is 404")


def loopback_only(a):
    """Part 2: bound to 127.0.0.1 only."""
    socks = listening(a.proc.p.pid)
    check_eq(socks, [("127.0.0.1", a.http_port)], "the agent listens on "
             "127.0.0.1:http_port and nothing else")
    try:
        with socket.create_connection(("127.0.0.2", a.http_port),
                                      timeout=2):
            refused = False
    except OSError:
        refused = True
    check(refused, "a connection to 127.0.0.2:http_port is refused")


def hub_back(a, hub):
    """Part 3: the hub comes; the queue drains."""
    hub.start()
    a.wait_drained(timeout=60, hub=hub)

    def up():
        s = http_status(a, True) or {}
        return s if s.get("hub_reachable") and s.get("last_ack") else None
    hs = bstest.wait_until(up, 30, "GET /status to show the hub up",
                           alive=[a.proc, hub.proc])
    check_eq(hs["pending_events"], 0, "GET /status: queue empty")
    st = a.status_json()
    check_eq((st["hub_reachable"], st["pending_events"]), (True, 0),
             "status --json: hub reachable, queue empty")
    check(isinstance(st["last_ack"], int), "status --json: last_ack set",
          st["last_ack"])
    meta = a.meta()
    check_eq(meta.get("hub_state"), "up", "meta hub_state = up")
    since = meta.get("hub_state_since")
    check_eq(st["hub_state_since"], since, "status --json: hub_state_since "
             "from the meta row")
    m = parse_metrics(a.http_get("/metrics")[1])
    br = '{branch="%s"}' % a.branch
    check_eq((m.get(("branchsync_agent_hub_up", br)),
              m.get(("branchsync_agent_queue_events", br))), (1.0, 0.0),
             "metrics: hub_up 1, queue 0")
    check(m.get(("branchsync_agent_last_ack_timestamp_seconds", br), 0)
          >= st["last_ack"], "metrics: last_ack timestamp")

    # A marker in the meta row survives more batches: no write per batch.
    c = bstest.sqlite_connect(a.db)
    c.execute("UPDATE _branchsync_meta SET value = 'marker' WHERE name = "
              "'hub_state_since'")
    c.close()
    possim.sales(a.db, 30, seed=2)
    a.wait_drained(timeout=60, hub=hub)
    check_eq(a.meta().get("hub_state_since"), "marker", "more batches do "
             "not rewrite the hub state meta rows")


def disabled(a):
    """Part 4: http_port = 0."""
    old = a.http_port
    a.write_config(http_port=0)
    starts = a.proc.log_text().count("AGENT-START")
    a.start()
    bstest.wait_until(lambda: a.proc.log_text().count("AGENT-START")
                      > starts, 30, "the agent to start", alive=[a.proc])
    check_eq(listening(a.proc.p.pid), [], "http_port = 0: the agent "
             "listens on no TCP port")
    check(not bstest.port_open(old), "nothing on the old http_port")
    a.stop()


def port_in_use(a):
    """Part 5: the port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        a.write_config(http_port=port)
        a.start()
        bstest.wait_until(lambda: not a.alive(), 30, "the agent to exit")
    check_eq(a.proc.returncode(), 1, "run exits 1 when http_port is taken")
    want = "could not listen on 127.0.0.1:%d (http_port)" % port
    check(want in a.proc.log_text(), "the error names the port",
          a.proc.log_text()[-500:])


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    a = env.agent("a1", "b1", key, hub.url, request_timeout_ms=1000)
    a.init()
    possim.sales(a.db, 20, seed=1)
    a.start()
    no_hub(a)
    loopback_only(a)
    hub_back(a, hub)
    check_eq(a.stop(), 0, "the agent stops with 0")
    disabled(a)
    port_in_use(a)
    hub.stop()


if __name__ == "__main__":
    bstest.run(main)
