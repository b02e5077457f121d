"""test_auth_flood: a flood of unauthenticated requests of the maximum
size costs the hub neither memory nor database queries, while an honest
branch keeps draining; an address that keeps failing is shut out.

A real hub (max_message_bytes 3 MiB, 2 workers) on a real PostgreSQL
with pg_stat_statements; an honest agent drains a backlog while the POS
simulator keeps selling. Five attackers (tests/lib/bssp.py, one
connection each) send FLOOD (24) requests each, twice over, every one a
PUSH of 10,000 events of 250 small values, about 2.6 MB (the size of the
request that raised the hub's VmHWM from 10 to 94 MB before requests
were authenticated from their envelope):

  unknown     signed for its connection, for a branch the hub does not
              know;
  wrong key   signed for its connection with a wrong key, for a branch
              that exists, and for the honest branch's code;
  plain       version 1, the honest branch's code and a wrong key in
              clear (refused before its body is read);
  unsigned    never signed for its connection (asks for a nonce every
              time).

Checks and prints, before the flood and after each round: the hub's
VmHWM, and the
statements the database ran (all of them, and those that read
branchsync.branch or branchsync.till, which the hub used to run once
per request to authenticate it). VmHWM grows by less than the requests
nng may buffer at once (two per connection, one per worker) plus 16 MiB,
the second round adds less than one request to it, and no statement
looks a credential up for the flood; every flood request is refused (an ERROR,
never an ACK); the honest agent's acked_seq moves during the flood and
everything replicates.

Then the shut-out: with auth_fail_max 5 and auth_fail_window_s 3, an
attacker's connection is closed at its 5th failure, a new connection
from the same address is closed before its first request (HUB-AUTH-BLOCK,
branchsync_hub_auth_blocked_total), the honest agent's connection, which
authenticated, keeps draining, and after the window the address may
connect again.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire as W  # noqa: E402
from bssp import SP, Closed  # noqa: E402
from bstest import check, check_eq, log  # noqa: E402

MAX_BYTES = 3 * 1024 * 1024
FLOOD = int(os.environ.get("BS_FLOOD", "24"))
EVENTS = 10000
LOG = "9" * 32
# A wide table of small values: decoded, each 1-byte value takes a
# 24-byte proto_value, the shape that made one request cost the old hub
# 30 times its size.
TABLES = [("payments", ["c%d" % i for i in range(250)], 1)]


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def statements(pg):
    """(all statements, credential lookups) run so far, the test's own
    queries of pg_stat_statements left out."""
    rows = pg.psql(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(calls) FILTER "
        "(WHERE query ~ '(FROM|JOIN) branchsync\\.(branch|till)\\y'), 0) "
        "FROM pg_stat_statements WHERE query !~ 'pg_stat_statements'")
    return int(rows[0][0]), int(rows[0][1])


def big_push(code, key):
    """A PUSH of EVENTS events of 250 small values, about 2.6 MB."""
    ev = [(i, i, 0, W.OP_UPSERT, [i % 100] * 250)
          for i in range(1, EVENTS + 1)]
    return W.push(code, key, LOG, TABLES, ev)


class Attacker(threading.Thread):
    """Sends FLOOD requests of one kind on one connection (a new one when
    the hub closes it); counts the answers."""

    def __init__(self, port, kind, req):
        super().__init__(daemon=True)
        self.port, self.kind, self.req = port, kind, req
        self.answers = {}
        self.error = None

    def one(self, conn):
        if self.kind == "plain":
            return W.decode(conn.request(self.plain))
        if self.kind == "unsigned":
            return W.decode(conn.request(self.req.seal([], 1)))
        if self.kind == "unknown":
            return conn.signer.send(self.req)
        return conn.signer.send(self.req, key="f" * 64)

    def run(self):
        self.plain = self.req.plain()
        conn = None
        try:
            for _ in range(FLOOD):
                try:
                    conn = conn or SP(self.port, timeout=60)
                    t, body = self.one(conn)
                    k = (W.TYPE_NAMES.get(t, t), body.get("code"))
                except Closed:
                    conn, k = None, ("closed", None)
                self.answers[k] = self.answers.get(k, 0) + 1
        except Exception as e:  # reported by the test, never swallowed
            self.error = repr(e)
        if conn:
            conn.close()


def attack(hub, kinds):
    """One round: every attacker sends FLOOD requests; returns them."""
    attackers = [Attacker(hub.port, k, r) for k, r in kinds]
    for a in attackers:
        a.start()
    for a in attackers:
        a.join(bstest.scaled(600))
        check(not a.is_alive(), "the %s attacker finished" % a.kind)
    check_eq([a.error for a in attackers], [None] * len(attackers),
             "every attacker ran to its end")
    return attackers


def flood(env, pg, hub, agent):
    kinds = [("unknown", big_push("nobody", "e" * 64)),
             ("wrong key", big_push("evil", "e" * 64)),
             ("wrong key", big_push("good", "e" * 64)),
             ("plain", big_push("good", "e" * 64)),
             ("unsigned", big_push("good", "e" * 64))]
    size = len(kinds[0][1].seal([b"n" * 16], 1))
    check(2_500_000 < size < MAX_BYTES, "each flood request is %d bytes, "
          "near max_message_bytes" % size)
    hwm = [vm_hwm_kib(hub.proc.p.pid)]
    q = [statements(pg)]
    acked = [agent.state()["acked_seq"]]
    t0 = time.monotonic()
    rounds = []
    for _ in range(2):
        rounds.append(attack(hub, kinds))
        hwm.append(vm_hwm_kib(hub.proc.p.pid))
        q.append(statements(pg))
        acked.append(agent.state()["acked_seq"])
    secs = time.monotonic() - t0
    n = sum(sum(a.answers.values()) for r in rounds for a in r)
    log("flood: %d requests of %d bytes (%.0f MB) in %.1f s, two rounds"
        % (n, size, n * size / 1e6, secs))
    for a in rounds[0] + rounds[1]:
        log("  %-9s %s" % (a.kind, a.answers))
    log("hub VmHWM before the flood %d KiB, after round 1 %d KiB (+%d), "
        "after round 2 %d KiB (+%d)" % (hwm[0], hwm[1], hwm[1] - hwm[0],
                                        hwm[2], hwm[2] - hwm[1]))
    log("database statements before the flood %d, after %d (+%d, the "
        "honest agent's); credential lookups before %d, after %d (+%d)"
        % (q[0][0], q[2][0], q[2][0] - q[0][0], q[0][1], q[2][1],
           q[2][1] - q[0][1]))
    log("honest agent's acked_seq: %d before, %d after round 1, %d after "
        "round 2" % tuple(acked))
    check_eq(n, 2 * len(kinds) * FLOOD,
             "every flood request was answered or closed")
    answered = {k for r in rounds for a in r for k in a.answers}
    check(all(t in ("error", "closed") for t, _ in answered),
          "every flood request was refused (an ERROR, or the connection "
          "closed): none applied", answered)
    # nng may hold, per connection, a request read and waiting for a
    # worker and the next one being read; a worker holds one more.
    bound = (2 * len(kinds) + 2) * size // 1024 + 16 * 1024
    check(hwm[2] - hwm[0] < bound, "the hub's VmHWM grew by %d KiB, less "
          "than the requests nng may buffer (2 per connection, %d "
          "connections, and one per worker) plus 16 MiB: %d KiB"
          % (hwm[2] - hwm[0], len(kinds), bound))
    check(hwm[2] - hwm[1] < size // 1024 + 4096, "the second round, as "
          "long as the first, added less than one request plus 4 MiB "
          "(+%d KiB): the memory does not grow with the flood"
          % (hwm[2] - hwm[1]))
    check(q[2][1] - q[0][1] <= 3, "no credential was looked up in the "
          "database for the flood (%d lookups: key cache refreshes and "
          "backlog samples at most) for %d requests"
          % (q[2][1] - q[0][1], n))
    check(acked[1] > acked[0] and acked[2] > acked[1], "the honest agent "
          "kept draining during both rounds (acked_seq %d -> %d -> %d)"
          % tuple(acked))
    check_eq(pg.psql("SELECT count(*) FROM branchsync.watermark WHERE "
                     "log_id = %s", (LOG,))[0][0], 0,
             "nothing of the flood applied (no watermark of its log)")


def shut_out(env, pg, hub, agent, k_good):
    check_eq(hub.stop(), 0, "hub stops")
    hub.settings.update(auth_fail_max=5, auth_fail_window_s=3)
    hub.write_config()
    hub.start()
    acked = agent.state()["acked_seq"]
    writer = bstest.start_writer(env, agent, sales=60, seed=44, rate=10,
                                 name="possim2")
    bstest.wait_until(lambda: agent.state()["acked_seq"] > acked, 30,
                      "the honest agent to reconnect",
                      alive=[agent.proc, hub.proc])
    c = SP(hub.port)
    got = []
    try:
        for _ in range(10):
            t, body = c.signer.send(W.hello("good", "e" * 64, LOG))
            got.append(body.get("code"))
    except Closed:
        got.append("closed")
    log("an attacker's wrong keys on one connection: %s" % got)
    check_eq(got, [W.E_AUTH] * 4 + ["closed"], "the 5th failure closes "
             "the connection, unanswered")
    # nng completes the SP handshake, then the hub closes the pipe before
    # the socket sees it: the first request finds the connection closed.
    try:
        c = SP(hub.port)
        c.signer.send(W.hello("good", k_good, LOG))
        refused = False
        c.close()
    except Closed:
        refused = True
    check(refused, "a new connection from that address is closed at once, "
          "even one that would have signed with the right key")
    acked = agent.state()["acked_seq"]
    bstest.wait_until(lambda: agent.state()["acked_seq"] > acked, 30,
                      "the honest agent to go on while its address is shut "
                      "out", alive=[agent.proc, hub.proc])
    check(True, "the honest agent's connection, authenticated before, "
          "keeps draining")
    text = hub.proc.log_text()
    check("HUB-AUTH-BLOCK" in text, "HUB-AUTH-BLOCK logged")
    prom = bstest.parse_prom(hub.http_get("/metrics")[2])
    blocked = prom.get(("branchsync_hub_auth_blocked_total", ""), 0)
    check(blocked >= 2, "branchsync_hub_auth_blocked_total counts the "
          "closed connections (%d)" % blocked)
    time.sleep(3.5)
    t, _ = W.request(bstest.binary("bs-rawclient"), hub.url,
                     W.hello("good", k_good, LOG))
    check_eq(t, W.WELCOME, "after auth_fail_window_s the address may "
             "connect again")
    writer.wait()
    agent.wait_drained(hub=hub)
    bstest.check_replicated(pg, hub, agent)


def main(env):
    pg = env.postgres(settings={
        "shared_preload_libraries": "pg_stat_statements"})
    pg.psql("CREATE EXTENSION pg_stat_statements")
    hub = env.hub(pg, workers=2, extra={
        "max_message_bytes": MAX_BYTES, "auth_fail_max": 1000000})
    # ASan's quarantine would hold freed buffers: not the hub's memory.
    hub.proc.env["ASAN_OPTIONS"] = "quarantine_size_mb=16"
    bstest.setup_center(pg, hub)
    k_good = hub.branch_add("good")
    hub.branch_add("evil")
    hub.start()
    agent = env.agent("pos", "good", k_good, hub.url, max_batch_events=20)
    agent.init()
    bstest.possim_run(agent.db, sales=100, seed=3)
    agent.start()
    writer = bstest.start_writer(env, agent, sales=100000, seed=4, rate=10)
    bstest.wait_until(lambda: agent.state()["acked_seq"] > 0, 30,
                      "the honest agent to start draining",
                      alive=[agent.proc, hub.proc])
    flood(env, pg, hub, agent)
    writer.proc.stop()
    agent.wait_drained(hub=hub)
    bstest.check_replicated(pg, hub, agent)
    shut_out(env, pg, hub, agent, k_good)
    check_eq(agent.stop(), 0, "the agent stops")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
