"""test_nudge_topics: the nudge publisher names no branch.

Anyone can connect to the hub's pub socket and read every topic (pub0
filters at the subscriber). A raw SP subscriber of our own reads them all
while master data changes for branch "shop-north" (which has a till) and
for every branch:
1. no message holds a branch code;
2. the branch's change is published once per credential, as
   "b:" + the first 16 bytes of HMAC-SHA256(SHA-256(key), "bs2nb") in
   hex: one topic for the branch's key and one for its till's, which this
   test computes from the keys; a change for every branch is "*";
3. an agent of the branch, subscribed to its own tag, still gets the
   change at once (its pull interval is an hour).
"""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

CODE = "shop-north"


def tag(key, kind=b"b"):
    s = hashlib.sha256(key.encode()).digest()
    return b"%s:%s\n" % (kind, hmac.new(s, b"bs2n" + kind,
                                        hashlib.sha256).digest()[:16]
                         .hex().encode())


class RawSub:
    """An SP sub0 peer over TCP that reads every message the hub sends."""

    def __init__(self, url):
        host, port = url.split("://")[1].rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=10)
        self.s.sendall(b"\x00SP\x00\x00\x21\x00\x00")  # sub0
        head = self.recv(8)
        check(head[:4] == b"\x00SP\x00" and head[4:6] == b"\x00\x20",
              "the publisher speaks pub0", head)
        self.s.settimeout(0.2)
        self.msgs = []

    def recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise OSError("closed")
            b += c
        return b

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                n = struct.unpack(">Q", self.recv(8))[0]
                self.s.settimeout(5)
                self.msgs.append(self.recv(n))
                self.s.settimeout(0.2)
            except socket.timeout:
                pass
        return self.msgs


def main(env):
    pg, hub = bstest.down_center(env)
    key = hub.branch_add(CODE)
    hub.branch_add("shop-south")
    r = hub.cli("till", "add", CODE, "pc1")
    check(r.returncode == 0, "till add", r.stderr)
    till_key = r.stdout.strip()
    bid = hub.branch_id(CODE)
    bstest.seed_products(pg, 1, 5)
    agent = env.agent("pos", CODE, key, hub.url, nudge=hub.publish_url,
                      pull_interval_ms=3600000,
                      down_tables=list(bstest.DOWN_TABLES))
    agent.init()
    agent.start()
    bstest.wait_down_converged(agent, pg, bid, timeout=60,
                               alive=[hub.proc, agent.proc])

    sub = RawSub(hub.publish_url)
    time.sleep(0.5)
    pg.psql("INSERT INTO public.branch_prices(branch_id, product_id, price)"
            " VALUES (%s, 1, 777)", (bid,))
    pg.psql("UPDATE public.products SET price = price + 1 WHERE id = 2")
    msgs = sub.drain(3)
    bstest.log("topics seen: %r" % msgs)
    check(msgs, "the publisher sent topics")
    check(not any(c.encode() in m for m in msgs
                  for c in (CODE, "shop-south")),
          "no topic holds a branch code")
    branch_topics = {m for m in msgs if m.startswith(b"b:")}
    check_eq(branch_topics, {tag(key), tag(till_key)},
             "the branch's change went to the tag of each of its keys")
    check(b"*\n" in msgs, "a change for every branch is \"*\"")
    bstest.wait_until(lambda: bstest.sqlite_one(
        agent.db, "SELECT price FROM branch_prices WHERE product_id = 1")
        == (777,), 10, "the agent to apply the nudged change",
        alive=[agent.proc])
    check(True, "the agent, subscribed to its tag, pulled the change at "
          "once (pull interval 1 h)")
    check_eq(agent.stop(), 0, "agent exits 0")
    check_eq(hub.stop(), 0, "hub exits 0")


bstest.run(main)
