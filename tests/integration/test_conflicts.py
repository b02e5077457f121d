"""test_conflicts: per-table conflict policies and their resolution
(issue 4, conflicts).

Head office already holds rows under keys the branch then sends.
1. insert_only (transactions): a branch row whose key exists at the
   center with different content -> branchsync.conflict 'data_mismatch'
   with both rows, the server row kept, the agent's entry done but the
   POS row keeps is_synced = 0; a row identical to the center's -> a
   'duplicate' conflict born resolved (keep_server by branchsync, not
   open, not in conflicts list), is_synced = 1, and the same again when
   the POS rewrites it with equal values; a new key -> applied; a later
   update of a row the branch inserted is a conflict too (insert-only
   means no updates).
2. a unique violation on a constraint other than the primary key (a
   unique index on (branch_id, customer_name) at the center) ->
   conflict 'constraint_violation', not a reject.
3. last_writer_wins by updated_at: an incoming row older than the
   center's loses (conflict recorded, server row kept); a newer one wins
   (center updated, no conflict).
4. `branchsync-hub conflicts resolve ID keep_local|keep_server|merge
   --by NAME`: keep_local writes the branch's row, keep_server keeps the
   center's, merge overlays the branch row's non-null columns on the
   server row; each records resolution, resolved_at and resolved_by;
   resolving twice is an error; `conflicts list` shows open ones.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

COLS = ("id", "store_id", "user_id", "total_cost", "payment_type",
        "payment_method", "received_amount", "change_amount",
        "customer_name", "payment_status", "created_at", "updated_at", "tax")


def txn(tid, total, status="paid", customer=None,
        ts="2024-03-02 10:00:00"):
    return (tid, 1, 1, total, "sale", "card", total, 0, customer, status, ts,
            ts, 0)


def pos_write(db, rows, update=False):
    c = bstest.sqlite_connect(db)
    try:
        c.execute("BEGIN IMMEDIATE")
        for r in rows:
            if update:
                c.execute("UPDATE transactions SET %s WHERE id = ?" % ", ".join(
                    "%s = ?" % k for k in COLS[1:]), r[1:] + r[:1])
            else:
                c.execute("INSERT INTO transactions(%s) VALUES (%s)" % (
                    ", ".join(COLS), ", ".join("?" * len(COLS))), r)
        c.execute("COMMIT")
    finally:
        c.close()


def center_write(pg, bid, rows):
    for r in rows:
        pg.psql("INSERT INTO public.transactions(branch_id, %s) VALUES "
                "(%%s, %s)" % (", ".join(COLS), ", ".join(["%s"] * len(COLS))),
                (bid,) + r)


def center_row(pg, bid, tid):
    rows = bstest.pg_rows(pg, "transactions", list(COLS), bid)
    return [r for r in rows if r[0] == tid]


def synced(db, tid):
    return bstest.sqlite_one(db, "SELECT is_synced FROM transactions WHERE "
                                 "id = ?", (tid,))[0]


def conflicts(pg):
    """{key id: (id, type, server_row, local_row, resolution, by)}, the
    newest per key."""
    out = {}
    for r in pg.psql("SELECT id, key, type, server_row, local_row, "
                     "resolution, resolved_by, resolved_at FROM "
                     "branchsync.conflict ORDER BY id"):
        out[r[1][0]] = r
    return out


def check_duplicate(c, total, what):
    """c (a conflicts() value) is a duplicate of a row with total_cost
    total, recorded already resolved: server row kept, by branchsync."""
    check_eq(c[2], "duplicate", "%s: type duplicate" % what)
    check_eq((c[3]["total_cost"], c[4]["total_cost"]), (total, total),
             "%s: both versions recorded, equal" % what)
    check(c[5] == "keep_server" and c[6] == "branchsync"
          and c[7] is not None, "%s: born resolved (keep_server by "
          "branchsync)" % what, c[5:])


def drained(agent, hub):
    bstest.wait_until(lambda: agent.state()["pending"] == 0, 60,
                      "the agent to drain", interval=0.1,
                      alive=[agent.proc, hub.proc])


def resolve(hub, cid, how, by):
    return hub.cli("conflicts", "resolve", str(cid), how, "--by", by)


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, tables={"transactions": {"conflict": "insert_only"},
                              "transaction_items": {}, "payments": {}})
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    bid = hub.branch_id("b1")
    agent = env.agent("pos", "b1", key, hub.url, heartbeat_ms=1000)
    agent.init()

    # 1. insert_only
    center_write(pg, bid, [txn(1, 999, "server", "HQ"), txn(2, 500)])
    pos_write(agent.db, [txn(1, 1234), txn(2, 500), txn(3, 700)])
    hub.start()
    agent.start()
    drained(agent, hub)
    cf = conflicts(pg)
    check_eq(sorted(cf), [1, 2], "insert_only: conflicts for keys [1] "
             "and [2]")
    c1 = cf[1]
    check_duplicate(cf[2], 500, "insert_only: the identical row")
    check_eq(c1[2], "data_mismatch", "insert_only: type data_mismatch")
    check_eq((c1[3]["total_cost"], c1[4]["total_cost"]), (999, 1234),
             "insert_only: both versions recorded (server 999, local 1234)")
    check_eq(center_row(pg, bid, 1), [txn(1, 999, "server", "HQ")],
             "insert_only: the server row is kept")
    check_eq([synced(agent.db, i) for i in (1, 2, 3)], [0, 1, 1],
             "is_synced: conflicting row 0, identical and new rows 1")
    check_eq(agent.state()["rejected"], 0, "a conflict is not a reject")
    check_eq(center_row(pg, bid, 3), [txn(3, 700)], "the new row applied")
    first = cf[2][0]
    pos_write(agent.db, [txn(2, 500)], update=True)
    drained(agent, hub)
    bstest.wait_until(lambda: conflicts(pg)[2][0] != first, 10,
                      "a second duplicate conflict for key [2]")
    check_duplicate(conflicts(pg)[2], 500, "insert_only: the POS rewrote "
                    "the row with equal values")
    check_eq(synced(agent.db, 2), 1, "duplicate: the rewritten row is "
             "is_synced = 1")
    check_eq(center_row(pg, bid, 2), [txn(2, 500)], "duplicate: the center "
             "row unchanged")
    pos_write(agent.db, [txn(3, 777, "refunded", ts="2024-03-02 11:00:00")],
              update=True)
    drained(agent, hub)
    bstest.wait_until(lambda: 3 in conflicts(pg), 10, "the update conflict")
    check_eq(conflicts(pg)[3][2], "data_mismatch", "insert_only: an update "
             "of an existing row is a data_mismatch conflict")
    check_eq(center_row(pg, bid, 3), [txn(3, 700)], "insert_only: the "
             "server row kept on update")
    r = hub.cli("conflicts", "list", "--branch", "b1")
    check_eq(r.returncode, 0, "conflicts list exits 0")
    check_eq(len([ln for ln in r.stdout.splitlines() if "b1" in ln]), 2,
             "conflicts list shows the 2 open conflicts")

    # 4a. keep_local and keep_server
    r = resolve(hub, c1[0], "keep_local", "alice")
    check_eq(r.returncode, 0, "resolve keep_local exits 0")
    check_eq(center_row(pg, bid, 1), [txn(1, 1234)], "keep_local: the "
             "center row is the branch's now")
    c1 = conflicts(pg)[1]
    check(c1[5] == "keep_local" and c1[6] == "alice" and c1[7] is not None,
          "keep_local recorded with when and by whom", c1[5:])
    r = resolve(hub, c1[0], "keep_server", "alice")
    check(r.returncode != 0 and r.stderr.strip(), "resolving twice is an "
          "error", r.stderr.strip())
    c3 = conflicts(pg)[3]
    r = resolve(hub, c3[0], "keep_server", "bob")
    check_eq(r.returncode, 0, "resolve keep_server exits 0")
    check_eq(center_row(pg, bid, 3), [txn(3, 700)], "keep_server: the "
             "center row unchanged")
    c3 = conflicts(pg)[3]
    check(c3[5] == "keep_server" and c3[6] == "bob" and c3[7] is not None,
          "keep_server recorded with when and by whom", c3[5:])

    # 2. constraint_violation on a unique index other than the key
    pg.psql("CREATE UNIQUE INDEX bs_customer ON public.transactions"
            "(branch_id, customer_name)")
    center_write(pg, bid, [txn(10, 100, customer="Unique Ursula")])
    pos_write(agent.db, [txn(11, 200, customer="Unique Ursula")])
    drained(agent, hub)
    bstest.wait_until(lambda: 11 in conflicts(pg), 10,
                      "the constraint conflict")
    check_eq(conflicts(pg)[11][2], "constraint_violation",
             "a unique violation on another constraint is a "
             "constraint_violation conflict")
    check_eq(agent.state()["rejected"], 0, "... and not a reject")
    check_eq(synced(agent.db, 11), 0, "... the POS row keeps is_synced = 0")
    pg.psql("DROP INDEX public.bs_customer")

    # 3. last_writer_wins by updated_at
    hub.stop()
    hub.tables = {"transactions": {"conflict": "last_writer_wins",
                                   "conflict_column": "updated_at"},
                  "transaction_items": {}, "payments": {}}
    hub.write_config()
    server4 = txn(4, 400, "server", "HQ", ts="2024-03-05 09:00:00")
    center_write(pg, bid, [server4,
                           txn(5, 500, "server", ts="2024-03-01 09:00:00")])
    hub.start()
    pos_write(agent.db, [txn(4, 444, ts="2024-03-02 09:00:00"),
                         txn(5, 555, ts="2024-03-03 09:00:00")])
    drained(agent, hub)
    bstest.wait_until(lambda: 4 in conflicts(pg), 10, "the lww conflict")
    cf = conflicts(pg)
    check_eq(cf[4][2], "data_mismatch", "lww: an older incoming row is a "
             "data_mismatch conflict")
    check(5 not in cf, "lww: a newer incoming row is no conflict")
    check_eq(center_row(pg, bid, 4), [server4], "lww: the newer server row "
             "kept")
    check_eq(center_row(pg, bid, 5), [txn(5, 555, ts="2024-03-03 09:00:00")],
             "lww: the newer branch row won")
    check_eq([synced(agent.db, i) for i in (4, 5)], [0, 1],
             "lww: is_synced 0 for the loser, 1 for the winner")

    # 4b. merge: server row overlaid with the local row's non-null columns
    r = resolve(hub, cf[4][0], "merge", "carol")
    check_eq(r.returncode, 0, "resolve merge exits 0")
    want = list(txn(4, 444, ts="2024-03-02 09:00:00"))
    want[COLS.index("customer_name")] = "HQ"  # NULL at the branch
    check_eq(center_row(pg, bid, 4), [tuple(want)], "merge: branch values, "
             "the server's where the branch has NULL")
    c4 = conflicts(pg)[4]
    check(c4[5] == "merge" and c4[6] == "carol" and c4[7] is not None,
          "merge recorded with when and by whom", c4[5:])
    r = hub.cli("conflicts", "list", "--branch", "b1")
    open_ids = {str(c[0]) for k, c in conflicts(pg).items() if c[5] is None}
    check_eq(len([ln for ln in r.stdout.splitlines() if "b1" in ln]),
             len(open_ids), "conflicts list shows only the open ones")
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
