"""test_hostile: hostile traffic against a live hub (issue 6).

A real hub (max_value_bytes 4096; auth_fail_max high enough that no
address is shut out: test_auth_flood covers that) on a real PostgreSQL
serves an honest agent with a backlog of sales while attackers, speaking
the SP-over-TCP framing nng uses (tcp://, tests/lib/bssp.py), send in
parallel:

  garbage      random bytes instead of the SP handshake, and random bytes
               as requests after a correct handshake;
  truncated    every prefix of a valid PUSH, signed for its connection;
  wrong shape  valid msgpack that is not a request: scalars, wrong types,
               deep nesting, unknown message types, other versions,
               version 1 requests (the key in clear), version 2 envelopes
               and auth maps of every wrong shape, and bodies of every
               wrong shape in requests signed with the attackers' own key
               (so that the body decoder sees them);
  huge         declared lengths far beyond the data: an SP frame of 2^62
               bytes, msgpack str32/array32/map32/bin32 headers of 4 G in
               envelopes and in signed bodies; a value over
               max_value_bytes;
  churn        1,000 connections opened and dropped, at every stage;
  replay       the honest branch's batch under another branch's key, and
               another branch's code with the honest key.

Then hostile names and values from an authenticated branch ("sqlx"), in
one PUSH: a table or column name carrying quotes and SQL, a text value
with a NUL byte, invalid UTF-8, 1e300 and NaN for a bigint,
SQL text for a timestamp. Each of those events is REJECTED with a reason
and applies nothing, while the events around them apply; a text value
full of quotes and semicolons is stored verbatim (values are parameters);
every table is intact. Names that are not UTF-8 or hold control
characters (log_id, table, column, branch code) get a final protocol
error (retry = false): PostgreSQL would refuse them in every statement.

Every request gets an ERROR reply or its connection is closed; the hub
stays up, its memory bounded (VmRSS grows by less than 64 MiB); the
honest agent drains everything during the attack (check_replicated);
nothing is applied for the attackers' branch; auth failures are counted
in /metrics and HUB-AUTH-FAIL stays within its rate limit.
"""
import os
import random
import socket
import struct
import sys
import threading

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire as W  # noqa: E402
import possim  # noqa: E402
from bssp import SP, SP_REQ, Closed  # noqa: E402
from bstest import check, check_eq, log  # noqa: E402

SEED = 6
CHURN = 1000
LOG = "f" * 32


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.bad = []

    def add(self, what, outcome):
        with self.lock:
            self.counts[(what, outcome)] = \
                self.counts.get((what, outcome), 0) + 1

    def fail(self, msg):
        with self.lock:
            self.bad.append(msg)


def answer(port, conn, body, what, tally, want_code=None):
    """Sends body on conn (reconnecting when the hub closed it): raw
    bytes as they are, a bswire.Request signed for the connection. The
    hub must answer ERROR (with want_code when given) or close. Returns
    the connection to use next."""
    try:
        if conn is None:
            conn = SP(port)
        if isinstance(body, W.Request):
            t, reply = conn.signer.send(body)
        else:
            t, reply = W.decode(conn.request(body))
    except Closed:
        if conn is not None:
            conn.close()
        tally.add(what, "closed")
        return None
    except ValueError as e:
        tally.fail("%s: reply is not a message (%s)" % (what, e))
        return conn
    if t != W.ERROR:
        tally.fail("%s: got %s, want ERROR" % (what, W.TYPE_NAMES.get(t, t)))
    elif want_code is not None and reply.get("code") != want_code:
        tally.fail("%s: error code %s, want %s (%s)"
                   % (what, reply.get("code"), want_code,
                      reply.get("message")))
    elif not reply.get("message"):
        tally.fail("%s: ERROR without a message" % what)
    tally.add(what, "error")
    return conn


def signed(code, key, body, mtype=W.PUSH):
    """A request whose body bytes are body, signed with key when sent:
    the hub authenticates it, then decodes the body."""
    return W.Request(mtype, code, key, None, body=body)


# ------------------------------------------------------------ attackers

def garbage(port, tally, rng):
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(bytes(rng.getrandbits(8) for _ in range(512)))
            s.settimeout(bstest.scaled(5))
            try:
                while s.recv(4096):
                    pass
                tally.add("garbage handshake", "closed")
            except (socket.timeout, ConnectionResetError):
                tally.add("garbage handshake", "closed")
        finally:
            s.close()
    conn = None
    for i in range(200):
        n = rng.randint(0, 300)
        body = bytes(rng.getrandbits(8) for _ in range(n))
        conn = answer(port, conn, body, "random request", tally)
    if conn:
        conn.close()


def truncated(port, tally, valid, key):
    """Every prefix of a valid PUSH: as raw bytes, and as a body signed
    for its connection (the MAC is right, the body is cut)."""
    raw = valid.seal([], 1)
    conn = None
    step = max(1, len(raw) // 150)
    for n in range(0, len(raw) - 1, step):
        conn = answer(port, conn, raw[:n], "truncated PUSH", tally)
    step = max(1, len(valid.body) // 100)
    for n in range(0, len(valid.body) - 1, step):
        conn = answer(port, conn, signed("evil", key, valid.body[:n]),
                      "signed truncated body", tally, want_code=W.E_PROTO)
    if conn:
        conn.close()


def wrong_shapes(port, tally, key):
    hdr = {"log_id": LOG, "queue_events": 0, "queue_bytes": 0,
           "oldest_age_s": 0}
    plain = dict(hdr, branch="evil", key=key)
    auth = {"branch": "evil", "ctr": 1, "nonces": [], "mac": b"m" * 32}
    deep = b"\x91" * 5000 + b"\x01"  # 5,000 levels
    bodies = [
        msgpack.packb(7), msgpack.packb("hello"), msgpack.packb({}),
        msgpack.packb([]), msgpack.packb([1]), msgpack.packb([1, 3]),
        msgpack.packb([2, 1, {}]), msgpack.packb([1, 99, {}]),
        msgpack.packb([1, -1, {}]), msgpack.packb([1, 3, []]),
        msgpack.packb([3, 1, {}, b""]), msgpack.packb([-1, 1, {}, b""]),
        # version 1, the key in clear: refused before it is decoded
        msgpack.packb([1, 3, dict(plain, events="x", tables=[])]),
        msgpack.packb([1, 1, dict(plain, high_seq=0, version="x")]),
        b"\x93\x01\x03" + deep,
        # version 2 envelopes and auth maps of the wrong shape
        msgpack.packb([2, 1, {}, b"\x80"]),
        msgpack.packb([2, 99, auth, b"\x80"], use_bin_type=True),
        msgpack.packb([2, 1, auth, "\x80"], use_bin_type=True),
        msgpack.packb([2, 1, auth, b"\x80", 0], use_bin_type=True),
        msgpack.packb([2, 1, [auth], b"\x80"], use_bin_type=True),
        msgpack.packb([2, 1, dict(auth, branch="evil\n"), b"\x80"],
                      use_bin_type=True),
        msgpack.packb([2, 1, dict(auth, branch="e" * 65), b"\x80"],
                      use_bin_type=True),
        msgpack.packb([2, 1, dict(auth, mac=b"m" * 31), b"\x80"],
                      use_bin_type=True),
        msgpack.packb([2, 1, dict(auth, nonces=[b"n" * 16] * 9), b"\x80"],
                      use_bin_type=True),
        msgpack.packb([2, 1, dict(auth, nonces=[b"n" * 15]), b"\x80"],
                      use_bin_type=True),
        msgpack.packb([2, 1, dict(auth, ctr=-1), b"\x80"],
                      use_bin_type=True),
        msgpack.packb([2, 1, dict(auth, nonce=b"n" * 16), b"\x80"],
                      use_bin_type=True),
        msgpack.packb([2, 2, auth, b"\x80"], use_bin_type=True),
        b"\x94\x02\x01" + b"\x91" * 5000,
        msgpack.packb([2, 1, auth, b"\x80"], use_bin_type=True)
        + b"trailing",
        # well formed, not signed for any connection
        msgpack.packb([2, 3, auth, deep], use_bin_type=True),
        # signed with the attackers' key: the body decoder sees these
        signed("evil", key, msgpack.packb(7)),
        signed("evil", key, msgpack.packb([1, 2, 3])),
        signed("evil", key, b""),
        signed("evil", key, deep),
        signed("evil", key, msgpack.packb(dict(hdr, events="x",
                                                tables=[]))),
        signed("evil", key, msgpack.packb(dict(
            hdr, events=[[1, 1, 0, 1, "notalist"]],
            tables=[["payments", ["a"], 1]]))),
        signed("evil", key, msgpack.packb(dict(
            hdr, events=[[-5, 1, 99, 7, []]], tables=[]))),
        signed("evil", key, msgpack.packb(dict(hdr, high_seq="x",
                                                version=1)), W.HELLO),
        signed("evil", key, msgpack.packb(dict(hdr, log_id="x" * 100000,
                                                high_seq=0, version="v")),
               W.HELLO),
        signed("evil", key, msgpack.packb({1: 2, 3: 4}), W.HELLO),
        signed("evil", key, msgpack.packb(dict(hdr, high_seq=0,
                                                version="v")) + b"trail",
               W.HELLO),
    ]
    conn = None
    for _ in range(3):
        for b in bodies:
            conn = answer(port, conn, b, "wrong shape", tally)
    if conn:
        conn.close()


def huge(port, tally, key, tables):
    auth = msgpack.packb({"branch": "evil", "ctr": 1, "nonces": [],
                          "mac": b"m" * 32}, use_bin_type=True)
    bodies = [
        # str32 of 4 GiB declared, 10 bytes sent
        b"\x93\x01\x01\x81\xa6branch\xdb\xff\xff\xff\xf0" + b"x" * 10,
        # array32 / map32 of 4 G elements
        b"\x93\x01\x03\xdd\xff\xff\xff\xff\x01\x02",
        b"\x94\x02\x03\xdf\xff\xff\xff\xff" + auth,
        # the body bin32 of 4 GiB
        b"\x94\x02\x03" + auth + b"\xc6\xff\xff\xff\xff\x00",
        # in a signed body: map32, array32, str32
        signed("evil", key, b"\xdf\xff\xff\xff\xff\x01"),
        signed("evil", key, b"\x81\xa6tables\xdd\xff\xff\xff\xff\x01"),
        signed("evil", key, b"\x81\xa6log_id\xdb\xff\xff\xff\xf0xx"),
    ]
    conn = None
    for _ in range(5):
        for b in bodies:
            conn = answer(port, conn, b, "huge declared length", tally)
    # A value over max_value_bytes: refused as too big, nothing applied.
    big = W.push("evil", key, LOG, tables,
                 [(1, 1, 0, W.OP_UPSERT, [880001, 1, "x" * 5000, 1])])
    conn = answer(port, conn, big, "value over max_value_bytes", tally,
                  want_code=W.E_TOOBIG)
    if conn:
        conn.close()
    # An SP frame declaring 2^62 bytes: the hub drops the connection.
    for _ in range(5):
        c = SP(port)
        try:
            c.s.sendall(struct.pack(">Q", 1 << 62) + b"\x80\x00\x00\x01")
            c.s.settimeout(bstest.scaled(5))
            try:
                while c.s.recv(4096):
                    pass
                tally.add("2^62-byte frame", "closed")
            except (socket.timeout, ConnectionResetError):
                tally.add("2^62-byte frame", "closed")
        finally:
            c.close()


def churn(port, tally, rng, n):
    for i in range(n):
        stage = i % 4
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError as e:
            tally.fail("churn: connect failed: %s" % e)
            continue
        try:
            if stage == 1:
                s.sendall(SP_REQ[:rng.randint(1, 7)])
            elif stage == 2:
                s.sendall(SP_REQ)
            elif stage == 3:
                s.sendall(SP_REQ + struct.pack(">Q", 100) + b"\x80\x00")
        except OSError:
            pass
        finally:
            s.close()
        tally.add("churn", "dropped")


def replay(port, tally, code, key, other_code, other_key, batch_for):
    conn = None
    for i in range(10):
        # the honest branch's batch, with the attacker's key
        conn = answer(port, conn, batch_for(code, other_key),
                      "replay with the wrong key", tally,
                      want_code=W.E_AUTH)
        # the attacker's code with the honest key
        conn = answer(port, conn, batch_for(other_code, key),
                      "another code with the honest key", tally,
                      want_code=W.E_AUTH)
    if conn:
        conn.close()


def sql_injection(hub, pg, key):
    """One PUSH of hostile names and values; returns the ACK."""
    good, quote = "id ok", "x'); DROP TABLE transactions; --"
    cols = ["id", "total_cost", "customer_name", "created_at"]
    tables = [("transactions", cols, 1),
              ('transactions"; DROP TABLE payments; --', cols, 1),
              ("transactions", ["id", "total_cost",
                                "customer_name\" = 'x'; --"], 1)]
    ev = [
        (1, 1, 0, W.OP_UPSERT, [660001, 1, quote, "2024-03-02 10:00:00"]),
        (2, 2, 0, W.OP_UPSERT, [660002, 2, "a\x00b", None]),
        (3, 3, 0, W.OP_UPSERT, [660003, 3, "BADUTF8BADUTF8", None]),
        (4, 4, 0, W.OP_UPSERT, [660004, 1e300, good, None]),
        (5, 5, 0, W.OP_UPSERT, [660005, float("nan"), good, None]),
        (6, 6, 0, W.OP_UPSERT, [660006, 6, good, "1'; DROP TABLE x; --"]),
        (7, 7, 1, W.OP_UPSERT, [660007, 7, good, None]),
        (8, 8, 2, W.OP_UPSERT, [660008, 8, good]),
        (9, 9, 0, W.OP_UPSERT, [660009, 9, "y" * 4000, None]),
    ]
    raw = W.push("sqlx", key, "e" * 32, tables, ev)
    # A str (not bin) of 14 bytes that are not UTF-8.
    raw = raw.replace(b"\xaeBADUTF8BADUTF8", b"\xae" + b"\xff\xfe" * 7)
    t, body = W.request(bstest.binary("bs-rawclient"), hub.url, raw)
    check_eq(t, W.ACK, "the PUSH of hostile names and values is answered "
             "with an ACK (%s)" % body)
    rejected = {o[0]: o[2] for o in body.get("outcomes", [])
                if o[1] == W.OUT_REJECTED}
    log("rejected: %s" % rejected)
    check_eq(sorted(rejected), [2, 3, 4, 5, 6, 7, 8],
             "every hostile name and value is REJECTED, the rest applies")
    check(all(r for r in rejected.values()), "each reject says why")
    bid = hub.branch_id("sqlx")
    rows = dict(pg.psql("SELECT id, customer_name FROM transactions WHERE "
                        "branch_id = %s", (bid,)))
    check_eq(sorted(rows), [660001, 660009], "only the good events applied")
    check_eq(rows[660001], quote, "quotes and semicolons stored verbatim")
    check_eq(rows[660009], "y" * 4000, "a 4,000-character value applied")
    # An integer beyond int64 cannot even be decoded: the whole message
    # is refused, with the reason.
    t, body = W.request(bstest.binary("bs-rawclient"), hub.url, W.push(
        "sqlx", key, "e" * 32, tables[:1],
        [(10, 10, 0, W.OP_UPSERT, [660010, 2 ** 64 - 1, good, None])]))
    check(t == W.ERROR and "out of range" in body.get("message", ""),
          "an integer beyond int64 is refused with the reason", body)
    check_eq(pg.psql("SELECT count(*) FROM transactions WHERE id = 660010"
                     )[0][0], 0, "and not applied")
    check_eq(pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = "
                     "'public' AND tablename IN ('transactions', "
                     "'transaction_items', 'payments')")[0][0], 3,
             "every table is intact")


def bad_names(hub, pg, key):
    """Names that are not UTF-8, or hold control characters, are refused.

    PostgreSQL refuses invalid UTF-8 in any statement, and the log_id goes
    into every statement of a batch: such a name, if it reached the
    database, would fail the batch with a retryable error for ever. The
    decoder refuses it instead, with a reason and retry = false. A branch
    code travels in the auth map (version 2), where only letters, digits,
    "_", "-" and "." pass: the envelope decoder refuses anything else
    before the request is even authenticated.
    """
    cols = ["id", "total_cost", "customer_name", "created_at"]
    ev = [(1, 1, 0, W.OP_UPSERT, [661001, 1, "ok", None])]
    mark, bad = b"QQQQQQQQ", b"\xff\xfe" * 4
    cases = [
        ("log_id", W.push("sqlx", key, "e" * 24 + "QQQQQQQQ",
                          [("transactions", cols, 1)], ev), bad),
        ("table name", W.push("sqlx", key, "f" * 32,
                              [("tQQQQQQQQ", cols, 1)], ev), bad),
        ("column name", W.push("sqlx", key, "f" * 32,
                               [("transactions", ["id", "total_cost",
                                 "cQQQQQQQQ", "created_at"], 1)], ev), bad),
        ("branch code", W.push("sQQQQQQQQ", key, "f" * 32,
                               [("transactions", cols, 1)],
                               ev).seal([], 1), bad),
        ("newline in a column name",
         W.push("sqlx", key, "f" * 32, [("transactions", ["id",
                "total_cost", "cQQQQQQQQ", "created_at"], 1)], ev),
         b"_\n_\r_\x7f__"),
    ]
    for what, raw, repl in cases:
        check(mark in raw and len(repl) == len(mark),
              "the %s placeholder is in the message, its replacement as "
              "long" % what)
        t, body = W.request(bstest.binary("bs-rawclient"), hub.url,
                            raw.replace(mark, repl))
        msg = body.get("message", "") if t == W.ERROR else ""
        why = ("not a letter, digit",) if what == "branch code" else \
            ("UTF-8", "control character")
        check(t == W.ERROR and body.get("code") == W.E_PROTO
              and any(w in msg for w in why) and not body.get("retry"),
              "a %s that is not a clean name gets a final protocol error "
              "with the reason" % what, (t, body))
    check_eq(pg.psql("SELECT count(*) FROM transactions WHERE id = 661001"
                     )[0][0], 0, "nothing of those batches applied")
    t, body = W.request(bstest.binary("bs-rawclient"), hub.url,
                        W.push("sqlx", key, "f" * 32,
                               [("transactions", cols, 1)], ev))
    check(t == W.ACK and body.get("applied") == 1,
          "the same batch with clean names applies", (t, body))


# ----------------------------------------------------------------- main

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, workers=2, extra={"max_value_bytes": 4096,
                                        "auth_fail_max": 100000})
    bstest.setup_center(pg, hub)
    k_good = hub.branch_add("good")
    k_evil = hub.branch_add("evil")
    k_sqlx = hub.branch_add("sqlx")
    hub.start()
    rng = random.Random(SEED)
    tables = [("payments", ["transaction_id", "line_no", "method",
                            "amount"], 2)]

    def batch_for(code, key):
        return W.push(code, key, LOG, tables,
                      [(1, 1, 0, W.OP_UPSERT, [770001, 1, "cash", 3])])

    valid = batch_for("evil", k_evil)
    rss0 = rss_kib(hub.proc.p.pid)

    agent = env.agent("pos", "good", k_good, hub.url, heartbeat_ms=1000,
                      max_batch_events=20)
    agent.init()
    possim.sales(agent.db, 300, seed=1)
    pending = agent.state()["pending"]
    log("honest agent: %d events waiting" % pending)

    tally = Tally()
    port = hub.port
    jobs = [
        ("garbage", lambda: garbage(port, tally, random.Random(SEED + 1))),
        ("truncated", lambda: truncated(port, tally, valid, k_evil)),
        ("wrong shapes", lambda: wrong_shapes(port, tally, k_evil)),
        ("huge", lambda: huge(port, tally, k_evil, tables)),
        ("churn a", lambda: churn(port, tally, random.Random(SEED + 2),
                                  CHURN // 2)),
        ("churn b", lambda: churn(port, tally, random.Random(SEED + 3),
                                  CHURN // 2)),
        ("replay", lambda: replay(port, tally, "good", k_good, "evil",
                                  k_evil, batch_for)),
    ]
    errors = []

    def run(name, fn):
        try:
            fn()
        except Exception as e:  # reported below, never swallowed
            errors.append("%s: %r" % (name, e))

    threads = [threading.Thread(target=run, args=j, daemon=True)
               for j in jobs]
    agent.start()
    for t in threads:
        t.start()
    agent.wait_drained(hub=hub, timeout=240)
    check(True, "the honest agent drained %d events during the attack"
          % pending)
    for t in threads:
        t.join(bstest.scaled(300))
        check(not t.is_alive(), "an attacker finished in bounded time")
    check_eq(errors, [], "every attacker ran to its end")
    for (what, outcome), n in sorted(tally.counts.items()):
        log("  %-34s %-7s %d" % (what, outcome, n))
    check_eq(tally.bad, [], "every hostile request got an ERROR with a "
             "message or a closed connection")
    check_eq(sum(n for (w, _), n in tally.counts.items() if w == "churn"),
             CHURN, "%d connections opened and dropped" % CHURN)
    check(tally.counts.get(("value over max_value_bytes", "error")) == 1,
          "the value over max_value_bytes was refused as too big")
    check(hub.proc.alive(), "the hub survived")
    grown = rss_kib(hub.proc.p.pid) - rss0
    check(grown < 64 * 1024, "hub memory stayed bounded (VmRSS +%d KiB)"
          % grown)

    # Nothing wrong applied.
    bstest.check_replicated(pg, hub, agent)
    evil = hub.branch_id("evil")
    for t in ("transactions", "transaction_items", "payments"):
        check_eq(pg.psql("SELECT count(*) FROM %s WHERE branch_id = %%s"
                         % t, (evil,))[0][0], 0,
                 "nothing applied for the attackers' branch in " + t)
    check_eq(pg.psql("SELECT count(*) FROM payments WHERE "
                     "transaction_id IN (770001, 880001)")[0][0], 0,
             "no hostile row anywhere")

    # Still serving, auth failures counted, their log rate limited.
    check(W.request(bstest.binary("bs-rawclient"), hub.url,
                    W.hello("evil", k_evil, LOG))[0] == W.WELCOME,
          "the hub still answers an honest HELLO")
    code, _, body = hub.http_get("/metrics")
    fails = bstest.parse_prom(body).get(
        ("branchsync_hub_auth_failures_total", ""), 0)
    check(fails >= 20, "auth failures counted in /metrics (%d)" % fails)
    lines = [ln for ln in hub.proc.log_text().splitlines()
             if "HUB-AUTH-FAIL" in ln]
    check(len(lines) <= 12, "HUB-AUTH-FAIL is rate limited (%d lines for "
          "%d failures)" % (len(lines), fails))
    check_eq(agent.stop(), 0, "the agent stops")
    sql_injection(hub, pg, k_sqlx)
    bad_names(hub, pg, k_sqlx)
    check(hub.proc.alive(), "the hub survived hostile names and values")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
