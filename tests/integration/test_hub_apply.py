"""test_hub_apply: the hub's apply of PUSH batches, driven over the wire.

A real hub and PostgreSQL; messages built in Python (tests/lib/bswire.py)
and sent with tests/tools/bs-rawclient. Checks: HELLO returns the
watermark and tag; a batch is applied once (the same PUSH again only
counts duplicates and changes nothing); overlapping batches apply each
event once; the last event per key wins inside a batch; wrong key or
unknown branch -> ERROR EAUTH with nothing applied; a non-increasing seq
-> ERROR EPROTO with nothing applied; two branches with the same integer
ids -> both rows kept under their own branch_id; an unknown table or
column -> the event is rejected and recorded, the watermark moves on;
garbage (other versions, a version 1 request, a signed body that is not
a map or not msgpack) gets an ERROR and does not kill the hub; SIGTERM
stops it with status 0.
"""
import os
import sys

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire as W  # noqa: E402
from bstest import check, check_eq  # noqa: E402

T, P = "transactions", "payments"
TCOLS = ["id", "store_id", "user_id", "total_cost", "payment_type",
         "payment_method", "received_amount", "change_amount",
         "customer_name", "payment_status", "created_at", "updated_at", "tax"]
PCOLS = ["transaction_id", "line_no", "method", "amount"]
TABLES = [(T, TCOLS, 1), (P, PCOLS, 2)]
TS = "2024-03-01 10:%02d:00"


def tx(id_, total, status="paid", customer=None):
    ts = TS % (id_ % 60)
    return [id_, 1, 2, total, "sale", "card", total, 0, customer, status, ts,
            ts, total // 10]


def up(seq, values, table=0):
    return (seq, 1000 + seq, table, W.OP_UPSERT, values)


def dele(seq, key, table=0):
    return (seq, 1000 + seq, table, W.OP_DELETE, key)


def none(seq, key, table=0):
    return (seq, 1000 + seq, table, W.OP_NONE, key)


class Center:
    def __init__(self, pg, hub):
        self.pg = pg
        self.hub = hub

    def rows(self, code, table=T):
        bid = self.hub.branch_id(code)
        cols = TCOLS if table == T else PCOLS
        return [list(r) for r in bstest.pg_rows(self.pg, table, cols, bid)]

    def snapshot(self):
        return (self.rows("b1"), self.rows("b1", P), self.rows("b2"),
                self.rows("b2", P),
                self.pg.psql("SELECT branch_id, log_id, seq, tag FROM "
                             "branchsync.watermark ORDER BY 1, 2"))


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    k1 = hub.branch_add("b1")
    k2 = hub.branch_add("b2")
    check(k1 != k2, "branch add prints a new key per branch")
    r = bstest.run_cmd([bstest.binary("branchsync-hub"), "branch", "add",
                        "b1", "-c", hub.ini])
    check(r.returncode == 1 and "branchsync-hub: error:" in r.stderr,
          "branch add of an existing code: exit 1 with an error", r.stderr)
    hub.start()
    rawclient = bstest.binary("bs-rawclient")
    center = Center(pg, hub)
    L1 = "0123456789abcdef0123456789abcdef"
    L2 = "fedcba9876543210fedcba9876543210"

    def req(msg, want_type, what):
        t, body = W.request(rawclient, hub.url, msg)
        if t != want_type:
            raise bstest.Failure("%s: got %s %r, want %s" % (
                what, W.TYPE_NAMES.get(t, t), body,
                W.TYPE_NAMES[want_type]))
        return body

    def push(code, key, log_id, events, want=W.ACK, what="push",
             tables=TABLES):
        return req(W.push(code, key, log_id, tables, events), want, what)

    # HELLO on a new log
    wb = req(W.hello("b1", k1, L1, 0), W.WELCOME, "hello")
    check_eq((wb.get("watermark"), wb.get("tag")), (0, 0),
             "HELLO on a new log: watermark and tag are 0")
    check(wb.get("max_events", 0) > 0 and wb.get("max_bytes", 0) > 0,
          "WELCOME carries max_events and max_bytes", wb)

    # a batch, then the same batch again
    b1 = [up(1, tx(1, 100)), up(2, tx(2, 200)), up(3, tx(3, 300)),
          up(4, [1, 1, "card", 100], 1), up(5, tx(4, 400, customer="Zoë"))]
    a = push("b1", k1, L1, b1)
    check_eq((a.get("log_id"), a.get("watermark"), a.get("tag"),
              a.get("applied"), a.get("duplicates")), (L1, 5, 1005, 5, 0),
             "first PUSH: ACK log_id, watermark, tag, applied, duplicates")
    want_t = [tx(1, 100), tx(2, 200), tx(3, 300), tx(4, 400, customer="Zoë")]
    check_eq(center.rows("b1"), want_t, "first PUSH: transactions rows")
    check_eq(center.rows("b1", P), [[1, 1, "card", 100]],
             "first PUSH: payments row (composite key)")
    snap = center.snapshot()
    a = push("b1", k1, L1, b1)
    check_eq((a.get("watermark"), a.get("tag"), a.get("applied"),
              a.get("duplicates")), (5, 1005, 0, 5),
             "same PUSH again: nothing applied, all 5 counted as duplicates")
    check(not any(o[1] == W.OUT_REJECTED for o in a.get("outcomes", [])),
          "same PUSH again: no rejected outcomes", a.get("outcomes"))
    check_eq(center.snapshot(), snap, "same PUSH again: rows unchanged")

    # overlapping batch: seq 4 and 5 again, with other values
    b2 = [up(4, [1, 1, "cash", 999], 1), up(5, tx(4, 401, "voided")),
          up(6, tx(5, 500)), dele(7, [3]), up(8, tx(1, 100, "refunded"))]
    a = push("b1", k1, L1, b2)
    check_eq((a.get("watermark"), a.get("tag"), a.get("applied"),
              a.get("duplicates")), (8, 1008, 3, 2),
             "overlapping PUSH: 3 applied, 2 duplicates")
    want_t = [tx(1, 100, "refunded"), tx(2, 200),
              tx(4, 400, customer="Zoë"), tx(5, 500)]
    check_eq(center.rows("b1"), want_t, "overlapping PUSH: each event once "
             "(seq 4, 5 not re-applied; 6, 7, 8 applied)")
    check_eq(center.rows("b1", P), [[1, 1, "card", 100]],
             "overlapping PUSH: duplicate payment event not re-applied")

    # the last event per key wins inside a batch
    b3 = [up(9, tx(6, 600)), up(10, tx(6, 601, "refunded")),
          up(11, tx(7, 700)), dele(12, [7]), none(13, [8]),
          up(14, [6, 1, "card", 601], 1), up(15, [6, 2, "cash", 0], 1),
          dele(16, [6, 2], 1)]
    a = push("b1", k1, L1, b3)
    check_eq((a.get("watermark"), a.get("tag")), (16, 1016),
             "collapsing PUSH: watermark and tag of the last event")
    want_t.append(tx(6, 601, "refunded"))
    check_eq(center.rows("b1"), want_t, "collapsing PUSH: last upsert of "
             "id 6 wins, id 7 inserted then deleted is absent, NONE adds "
             "nothing")
    check_eq(center.rows("b1", P), [[1, 1, "card", 100], [6, 1, "card", 601]],
             "collapsing PUSH: composite insert then delete leaves nothing")

    wb = req(W.hello("b1", k1, L1, 16), W.WELCOME, "hello")
    check_eq((wb.get("watermark"), wb.get("tag")), (16, 1016),
             "HELLO returns the watermark and tag of the last applied event")

    # authentication
    snap = center.snapshot()
    for what, code, key in (("wrong key", "b1", k2),
                            ("unknown branch", "b9", k1),
                            ("empty key", "b1", "")):
        e = push(code, key, L1, [up(17, tx(9, 900))], W.ERROR, what)
        check_eq((e.get("code"), e.get("retry")), (W.E_AUTH, False),
                 "PUSH with %s: ERROR EAUTH, retry false" % what)
        e = req(W.hello(code, key, L1, 17), W.ERROR, "hello " + what)
        check_eq(e.get("code"), W.E_AUTH, "HELLO with %s: ERROR EAUTH" % what)
    check_eq(center.snapshot(), snap, "failed authentication applied nothing")

    # seq must increase inside a batch
    e = push("b1", k1, L1, [up(18, tx(9, 900)), up(17, tx(10, 1000))],
             W.ERROR, "non-increasing seq")
    check_eq(e.get("code"), W.E_PROTO, "PUSH with seq 18, 17: ERROR EPROTO")
    e = push("b1", k1, L1, [up(17, tx(9, 900)), up(17, tx(10, 1000))],
             W.ERROR, "repeated seq")
    check_eq(e.get("code"), W.E_PROTO, "PUSH with seq 17, 17: ERROR EPROTO")
    check_eq(center.snapshot(), snap, "rejected batches applied nothing")

    # two branches with the same integer ids (and even the same log_id)
    wb = req(W.hello("b2", k2, L1, 0), W.WELCOME, "hello b2")
    check_eq(wb.get("watermark"), 0, "b2 with b1's log_id: watermark 0 "
             "(watermarks are per branch)")
    a = push("b2", k2, L2, [up(1, tx(1, 111, customer="other")),
                            up(2, tx(2, 222)), up(3, [1, 1, "cash", 111], 1)])
    check_eq((a.get("watermark"), a.get("applied")), (3, 3), "b2 PUSH acked")
    check_eq(center.rows("b2"), [tx(1, 111, customer="other"), tx(2, 222)],
             "b2 rows stored under b2's branch_id")
    check_eq(center.rows("b2", P), [[1, 1, "cash", 111]], "b2 payment row")
    check_eq(center.rows("b1"), want_t, "b1 rows with the same ids untouched")
    n = pg.psql("SELECT count(DISTINCT branch_id) FROM transactions "
                "WHERE id = 1")[0][0]
    check_eq(n, 2, "transaction id 1 present under two branch_ids")

    # unknown table or column: rejected, recorded, watermark moves on
    bad = [("no_such_table", ["id", "x"], 1),
           (T, TCOLS + ["no_such_column"], 1)]
    a = push("b1", k1, L1, [(17, 1017, 0, W.OP_UPSERT, [1, 2]),
                            (18, 1018, 1, W.OP_UPSERT, tx(9, 900) + [1])],
             tables=bad)
    rej = [o[0] for o in a.get("outcomes", []) if o[1] == W.OUT_REJECTED]
    check_eq(rej, [17, 18], "unknown table and unknown column: both events "
             "REJECTED in the ACK")
    check_eq(a.get("watermark"), 18, "the watermark moves past rejected "
             "events")
    n = pg.psql("SELECT count(*) FROM branchsync.reject WHERE seq IN "
                "(17, 18)")[0][0]
    check_eq(n, 2, "rejected events recorded in branchsync.reject")
    check_eq(center.rows("b1"), want_t, "rejected events changed no row")

    # hostile input does not kill the hub
    hostile = {
        "garbage": b"\xc1\xc1 not msgpack at all",
        "empty": b"",
        "version 3": W.pack(W.HELLO, {"branch": "b1"}, version=3),
        "version 2 of 3 elements": W.pack(W.HELLO, {"branch": "b1"},
                                          version=2),
        "version 1 (the key in clear)": W.hello("b1", k1, L1, 18).plain(),
        "huge declared array": b"\x93\x01\x03\xdf\x7f\xff\xff\xff",
        "signed body not a map": W.Request(W.PUSH, "b1", k1, None,
                                           body=msgpack.packb([1, 2, 3])),
        "signed body not msgpack": W.Request(W.PUSH, "b1", k1, None,
                                             body=b"\xc1\xc1"),
        "nested row value": W.push("b1", k1, L1, TABLES,
                                   [(19, 1, 0, W.OP_UPSERT,
                                     [[1, 2]] + tx(9, 9)[1:])]),
        "table index out of range": W.push("b1", k1, L1, TABLES,
                                           [up(19, tx(9, 9), table=5)]),
    }
    for what, raw in hostile.items():
        try:
            t, body = W.request(rawclient, hub.url, raw, timeout_ms=3000)
            check(t == W.ERROR, "hostile input (%s): ERROR reply" % what,
                  body)
        except W.NoReply as ex:
            log_ = "hostile input (%s): no reply (%s)" % (what, ex)
            bstest.log("note: " + log_)
        check(hub.proc.alive(), "hub alive after hostile input (%s)" % what)
    check_eq(center.rows("b1"), want_t, "hostile input changed no row")
    wb = req(W.hello("b1", k1, L1, 18), W.WELCOME, "hello after hostile")
    check_eq(wb.get("watermark"), 18, "hub still answers HELLO correctly")

    out = hub.status()
    check("b1" in out and "b2" in out, "branchsync-hub status lists b1 and "
          "b2", out)
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
