"""test_auth: what travels between agent and hub, and what a captured or
forged message is worth (protocol version 2, docs/security.md).

A real hub on a real PostgreSQL; agents dial it through a loopback TCP
proxy that records every byte both ways (tests/lib/faultproxy.py,
record=True): what an eavesdropper on the path sees.

1. Keys never travel: an agent with a branch key and one with a till key
   drain their sales and pull master data through the proxy; neither
   key's text, nor its SHA-256 (the secret the hub stores, raw or as
   hex), appears anywhere in the recorded bytes, while everything
   replicates.
2. A captured request is worth nothing: every request recorded (HELLO,
   PUSH, PULL) sent again as it is, each on a new connection, is answered
   ERROR PROTO_ENONCE and changes nothing (watermarks, rows, pull
   cursors). A PUSH of new events signed for connection A: on connection
   B it is refused (ENONCE) and applies nothing; on A it applies; the
   same bytes again on A are refused (its counter is not above the last
   one) and apply nothing twice; with one byte of its body changed it is
   refused (MAC).
3. A forged answer is worth nothing: a man in the middle drops the
   agent's PUSHes and answers them itself with ACKs claiming the batch
   (a random MAC, no MAC, a version 1 ACK). The agent refuses every one
   (AGENT-HUB-ERROR "failed authentication", "version 1"), keeps its
   events pending and marks nothing synced; once the man in the middle
   lets requests through, it drains.
4. Version 1, the key in clear: a HELLO and a PUSH of an old agent are
   refused by default with a version 1 ERROR PROTO_EVERSION (an old agent
   reads it) naming accept_plain_keys, nothing is applied, HUB-PLAIN-KEY
   is logged and branchsync_hub_plain_requests_total counts them. With
   accept_plain_keys = true (an upgrade) they are served, a wrong key is
   still refused, and HUB-PLAIN-KEY warns that the key travels in clear.
5. A tcp:// listener other hosts can reach is warned about
   (HUB-PLAIN-LISTEN), a loopback one is not.

Prints the bytes recorded, the requests replayed and the answers forged.
"""
import hashlib
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire as W  # noqa: E402
from bssp import SP, Relay, frames  # noqa: E402
from bstest import check, check_eq, log  # noqa: E402

SALES = 60
LOG2 = "ab" * 16
TX = [("transactions", ["id", "total_cost", "customer_name", "created_at"],
       1)]


def secrets_of(key):
    """What must not appear on the wire for key: its text (as printed,
    and in upper case), its bytes, its SHA-256 raw and as hex."""
    s = hashlib.sha256(key.encode()).digest()
    return [key.encode(), key.upper().encode(), bytes.fromhex(key), s,
            s.hex().encode(), s.hex().upper().encode()]


def state(pg):
    """Everything a replayed request could change."""
    return (pg.psql("SELECT branch_id, log_id, seq, tag FROM "
                    "branchsync.watermark ORDER BY 1, 2"),
            pg.psql("SELECT count(*), coalesce(sum(total_cost), 0) FROM "
                    "public.transactions"),
            pg.psql("SELECT branch_id, till_id, pull_cursor, "
                    "applied_total FROM branchsync.branch_status "
                    "ORDER BY 1, 2"))


def eavesdrop(env, pg, hub):
    """1: two agents through a recording proxy. Returns the proxy and the
    keys."""
    px = bstest.proxy(env, hub.port, record=True)
    k1 = hub.branch_add("b1")
    hub.branch_add("b2")
    r = hub.cli("till", "add", "b2", "pc1")
    check(r.returncode == 0, "till add b2 pc1", r.stderr)
    k2 = r.stdout.strip()
    bstest.seed_products(pg, 1, 30)
    down = list(bstest.DOWN_TABLES)
    a1 = env.agent("pos1", "b1", k1, px.url, down_tables=down)
    a2 = env.agent("pos2", "b2", k2, px.url, till="pc1", down_tables=down)
    for i, a in enumerate((a1, a2)):
        a.init()
        bstest.possim_run(a.db, sales=SALES, seed=11 + i)
        a.start()
    for a in (a1, a2):
        a.wait_drained(hub=hub)
        bstest.check_replicated(pg, hub, a)
        bstest.wait_down_converged(a, pg, hub.branch_id(a.branch),
                                   tables=["products"], alive=[hub.proc])
    check(True, "both agents drained their sales and pulled products "
          "through the recording proxy")
    for a in (a1, a2):
        check_eq(a.stop(), 0, "%s stops" % a.name)
    rec = px.captured()
    c2s = sum(len(c) for c, _ in rec)
    s2c = sum(len(s) for _, s in rec)
    log("recorded %d connections: %d bytes agent -> hub, %d bytes hub -> "
        "agent" % (len(rec), c2s, s2c))
    check(c2s > 10000 and s2c > 1000, "the proxy recorded the traffic")
    wire = b"".join(c + s for c, s in rec)
    for who, key in (("the branch key", k1), ("the till key", k2)):
        leaks = [i for i, b in enumerate(secrets_of(key)) if b in wire]
        check_eq(leaks, [], "%s appears nowhere on the wire: not as text, "
                 "bytes or SHA-256" % who)
    check(b"\xa3key" not in wire, "no request carries a \"key\" field")
    return px, k1, k2


def replay_captured(pg, hub, px):
    """2, first half: every recorded request again, each on a new
    connection."""
    raw = bstest.binary("bs-rawclient")
    reqs, unsigned = [], 0
    for c2s, _ in px.captured():
        for m in frames(c2s):
            v, t, auth, _, _ = W.decode_env(m)
            unsigned += v != W.VERSION or "mac" not in auth
            reqs.append((t, m))
    check_eq(unsigned, 0, "every recorded request is version 2 and signed")
    kinds = {W.TYPE_NAMES[t]: sum(1 for x, _ in reqs if x == t)
             for t in (W.HELLO, W.PUSH, W.PULL)}
    check(all(kinds.values()), "HELLO, PUSH and PULL were recorded", kinds)
    before = state(pg)
    rng = random.Random(5)
    picked = reqs if len(reqs) <= 150 else rng.sample(reqs, 150)
    answers = {}
    for t, m in picked:
        rt, body = W.request(raw, hub.url, m)
        key = (rt, body.get("code"))
        answers[key] = answers.get(key, 0) + 1
    log("replayed %d of %d recorded requests (%s): answers %s"
        % (len(picked), len(reqs), kinds, answers))
    check_eq(list(answers), [(W.ERROR, W.E_NONCE)], "every replayed "
             "request is refused: not signed for its connection")
    check_eq(state(pg), before, "the replays changed nothing")


def replay_signed(pg, hub, key):
    """2, second half: a PUSH signed for connection A, elsewhere and
    again."""
    a, b = SP(hub.port), SP(hub.port)
    t, _ = a.signer.send(W.hello("b1", key, LOG2, 0))
    check_eq(t, W.WELCOME, "connection A: HELLO signed for its nonce")
    push = W.push("b1", key, LOG2, TX,
                  [(1, 7, 0, W.OP_UPSERT, [991001, 4242, "replay", None])])
    a.signer.ctr += 1
    raw = push.seal(a.signer.nonces, a.signer.ctr)

    def applied():
        return pg.psql("SELECT count(*) FROM public.transactions WHERE "
                       "id = 991001")[0][0]
    t, body = W.decode(b.request(raw))
    check_eq((t, body.get("code")), (W.ERROR, W.E_NONCE),
             "the PUSH signed for A, sent on B: refused, sign for B")
    check_eq(applied(), 0, "and not applied")
    t, body = W.decode(a.request(raw))
    check_eq((t, body.get("applied")), (W.ACK, 1), "the same bytes on A: "
             "applied")
    before = state(pg)
    t, body = W.decode(a.request(raw))
    check(t == W.ERROR and body.get("code") == W.E_AUTH
          and "replayed" in body.get("message", ""),
          "the same bytes on A again: refused, its counter is not above "
          "the last one", body)
    check_eq((applied(), state(pg)), (1, before), "nothing applied twice")
    a.signer.ctr += 1
    raw = bytearray(push.seal(a.signer.nonces, a.signer.ctr))
    raw[-3] ^= 0x01  # inside the body bin
    t, body = W.decode(a.request(bytes(raw)))
    check_eq((t, body.get("code"), body.get("message")),
             (W.ERROR, W.E_AUTH, "authentication failed"),
             "a signed PUSH with one byte of its body changed: refused")
    check_eq(state(pg), before, "and nothing applied")
    a.close()
    b.close()


class Forger:
    """The man in the middle's hook: answers every PUSH with a forged ACK
    claiming the whole batch, in turn with a random MAC, with no MAC and
    in version 1; lets everything else through."""

    def __init__(self):
        self.on = True
        self.forged = []

    def __call__(self, msg):
        import msgpack
        v, t, _, body, _ = W.decode_env(msg)
        if not self.on or t != W.PUSH:
            return None
        last = body["events"][-1]
        ack = {"log_id": body["log_id"], "watermark": last[0],
               "tag": last[1], "applied": len(body["events"]),
               "duplicates": 0, "outcomes": []}
        kind = len(self.forged) % 3
        self.forged.append(kind)
        if kind == 2:
            return W.pack(W.ACK, ack)
        auth = {"mac": os.urandom(32)} if kind == 0 else {}
        return msgpack.packb([W.VERSION, W.ACK, auth,
                              msgpack.packb(ack, use_bin_type=True)],
                             use_bin_type=True)


def forged_answers(env, pg, hub):
    """3: forged ACKs are refused; nothing is marked synced."""
    key = hub.branch_add("b3")
    forger = Forger()
    relay = Relay(hub.port, forger)
    env.add_cleanup(relay.close)
    agent = env.agent("pos3", "b3", key, relay.url, backoff_max_ms=200,
                      log_level="debug")
    agent.init()
    bstest.possim_run(agent.db, sales=20, seed=31)
    pending = agent.state()["pending"]
    agent.start()
    bstest.wait_until(lambda: len(forger.forged) >= 9, 60,
                      "the man in the middle to forge 9 ACKs",
                      alive=[agent.proc, hub.proc])
    st = agent.state()
    log("forged %d ACKs (%d with a random MAC, %d without a MAC, %d in "
        "version 1); the agent's log: %d pending, acked_seq %d"
        % (len(forger.forged), forger.forged.count(0),
           forger.forged.count(1), forger.forged.count(2), st["pending"],
           st["acked_seq"]))
    check_eq((st["pending"], st["acked_seq"]), (pending, 0),
             "the agent took none of the forged ACKs: every event pending")
    check_eq(bstest.sqlite_one(agent.db, "SELECT count(*) FROM "
                               "transactions WHERE is_synced = 1"), (0,),
             "no POS row marked synced")
    text = agent.proc.log_text()
    check("failed authentication" in text and "version 1" in text
          and "missing field \"mac\"" in text,
          "the agent says why it refused each kind of forged ACK")
    forger.on = False
    agent.wait_drained(hub=hub)
    bstest.check_replicated(pg, hub, agent)
    check_eq(agent.stop(), 0, "once the man in the middle lets the PUSHes "
             "through, the agent drains")


def plain_requests(pg, hub, key):
    """4: version 1 requests, refused, then accepted for an upgrade."""
    raw = bstest.binary("bs-rawclient")
    log_id = "cd" * 16
    push = W.push("b1", key, log_id, TX,
                  [(1, 9, 0, W.OP_UPSERT, [992001, 1, "plain", None])])
    before = state(pg)
    for what, req in (("HELLO", W.hello("b1", key, log_id, 0)),
                      ("PUSH", push)):
        m = req.plain()
        check(key.encode() in m, "a version 1 %s carries the key" % what)
        v, t, _, body, _ = W.decode_env(W.exchange_raw(raw, hub.url, m))
        check(v == W.PLAIN and t == W.ERROR
              and body.get("code") == W.E_VERSION
              and "accept_plain_keys" in body.get("message", "")
              and not body.get("retry"),
              "a version 1 %s is refused by default, in version 1, naming "
              "accept_plain_keys" % what, (v, t, body))
    check_eq(state(pg), before, "nothing of them applied")
    check("HUB-PLAIN-KEY" in hub.proc.log_text(), "HUB-PLAIN-KEY logged")
    prom = bstest.parse_prom(hub.http_get("/metrics")[2])
    check(prom.get(("branchsync_hub_plain_requests_total", "")) >= 2,
          "branchsync_hub_plain_requests_total counts them")
    check_eq(hub.stop(), 0, "hub stops")
    hub.settings["accept_plain_keys"] = "true"
    hub.write_config()
    hub.start()
    v, t, _, body, _ = W.decode_env(W.exchange_raw(
        raw, hub.url, W.hello("b1", key, log_id, 0).plain()))
    check_eq((v, t), (W.PLAIN, W.WELCOME), "with accept_plain_keys: a "
             "version 1 HELLO is answered WELCOME, in version 1")
    v, t, _, body, _ = W.decode_env(W.exchange_raw(raw, hub.url,
                                                   push.plain()))
    check_eq((v, t, body.get("applied")), (W.PLAIN, W.ACK, 1),
             "and a version 1 PUSH is applied")
    t, body = W.decode(W.exchange_raw(raw, hub.url, W.hello(
        "b1", "0" * 64, log_id, 0).plain()))
    check_eq((t, body.get("code")), (W.ERROR, W.E_AUTH),
             "a version 1 HELLO with a wrong key is still refused")
    check("key travels in clear" in hub.proc.log_text(),
          "HUB-PLAIN-KEY warns that the branch's key travels in clear")
    t, _ = W.request(raw, hub.url, W.hello("b1", key, log_id, 0))
    check_eq(t, W.WELCOME, "version 2 keeps working beside it")


def plain_listen(env, pg, hub):
    """5: HUB-PLAIN-LISTEN for an address others reach, not loopback."""
    check("HUB-PLAIN-LISTEN" not in hub.proc.log_text(),
          "no HUB-PLAIN-LISTEN for tcp://127.0.0.1")
    other = env.hub(pg, name="hub-public")
    # 192.0.2.1 (TEST-NET-1) is nobody's address: the warning comes, then
    # the listener fails and the hub exits; nothing is exposed.
    other.settings["listen"] = "%s, tcp://192.0.2.1:%d" % (
        other.url, bstest.free_port())
    other.write_config()
    r = bstest.run_cmd([bstest.binary("branchsync-hub"), "run", "-c",
                        other.ini], timeout=60)
    check("HUB-PLAIN-LISTEN" in r.stderr and "tcp://192.0.2.1" in r.stderr
          and "tcp://127.0.0.1" not in r.stderr.split(
              "HUB-PLAIN-LISTEN")[1].split("\n")[0],
          "a tcp:// listener at a non-loopback address is warned about "
          "(HUB-PLAIN-LISTEN), the loopback one beside it is not", r.stderr)


def main(env):
    pg, hub = bstest.down_center(env, start=False)
    hub.start()
    px, k1, _ = eavesdrop(env, pg, hub)
    replay_captured(pg, hub, px)
    replay_signed(pg, hub, k1)
    forged_answers(env, pg, hub)
    plain_listen(env, pg, hub)
    plain_requests(pg, hub, k1)
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
