"""test_branch_column: POS tables with a branch column of their own.

A finance sidecar's tables carry a text branch_id ('JKT-01') in every row,
next to UUID text keys, integer money and ISO text timestamps. Two ways to
keep it at the center, both through a real agent, hub and PostgreSQL:

  fin_a  the center keeps branch_id integer for branchsync; the hub's
         "columns = branch_id:branch_code, amt:amount" stores the POS's
         branch_id as branch_code and its amt as amount. The center also
         has columns the branch never sends: status (with a DEFAULT) and
         approved_by (nullable): an insert gets the default and NULL, an
         update from the POS leaves values set at the center alone.
  fin_b  the center keeps the POS's branch_id text as it is;
         "branch_column = origin_branch" puts branchsync's id there.
         conflict = last_writer_wins on updated_at.

Checks: the center rows' exact values (uuid, money, timestamptz, the
branch's id and code), updates and deletes arrive, every POS row ends with
is_synced = 1, and no event is rejected. Then raw PUSHes: a batch that
takes the slow path still maps the columns; an older fin_b row is a
conflict whose server row leaves out origin_branch, not branch_id; an
event naming the branch column is rejected ("set by the hub"); an event
whose key is NULL is rejected with 'key column "id" is NULL' and recorded
in branchsync.reject.
"""
import datetime
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire as W  # noqa: E402
from bstest import check, check_eq  # noqa: E402

POS_SQL = """
CREATE TABLE fin_a(id TEXT PRIMARY KEY, branch_id TEXT NOT NULL,
  amt INTEGER NOT NULL, booked_at TEXT NOT NULL, note TEXT,
  is_synced INTEGER NOT NULL DEFAULT 0);
CREATE TABLE fin_b(id TEXT PRIMARY KEY, branch_id TEXT NOT NULL,
  amount INTEGER NOT NULL, booked_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  is_synced INTEGER NOT NULL DEFAULT 0);
"""

CENTER_SQL = """
CREATE TABLE fin_a(branch_id integer NOT NULL, id uuid NOT NULL,
  branch_code text NOT NULL, amount bigint NOT NULL,
  booked_at timestamptz NOT NULL, note text,
  status text NOT NULL DEFAULT 'new', approved_by text,
  PRIMARY KEY (branch_id, id));
CREATE TABLE fin_b(origin_branch integer NOT NULL, id uuid NOT NULL,
  branch_id text NOT NULL, amount bigint NOT NULL,
  booked_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  PRIMARY KEY (origin_branch, id));
"""

HUB_TABLES = {
    "fin_a": {"columns": "branch_id:branch_code, amt:amount"},
    "fin_b": {"branch_column": "origin_branch",
              "conflict": "last_writer_wins", "conflict_column": "updated_at"},
}

CODE = "JKT-01"
WIB = datetime.timezone(datetime.timedelta(hours=7))


def ts(day, hh, mm):
    """('2026-12-07T10:15:00+07:00', the same as an aware datetime)."""
    d = datetime.datetime(2026, 12, day, hh, mm, tzinfo=WIB)
    return d.isoformat(), d


def ids(n, seed):
    return [str(uuid.UUID(int=(seed << 64) + i + 1, version=4))
            for i in range(n)]


def pos_exec(path, sql, params=()):
    c = bstest.sqlite_connect(path)
    try:
        c.execute(sql, params)
    finally:
        c.close()


def center_a(pg, bid):
    return {r[0]: tuple(r[1:]) for r in pg.psql(
        "SELECT id::text, branch_code, amount, booked_at, note, status,"
        " approved_by FROM fin_a WHERE branch_id = %s", (bid,))}


def center_b(pg, bid):
    return {r[0]: tuple(r[1:]) for r in pg.psql(
        "SELECT id::text, branch_id, amount, booked_at, updated_at"
        " FROM fin_b WHERE origin_branch = %s", (bid,))}


def write_pos(agent, a_ids, b_ids):
    """Three rows per table; returns the center rows they must become."""
    want_a, want_b = {}, {}
    for i, k in enumerate(a_ids):
        t, d = ts(7, 10, 15 + i)
        pos_exec(agent.db, "INSERT INTO fin_a(id, branch_id, amt, booked_at,"
                 " note) VALUES (?, ?, ?, ?, ?)",
                 (k, CODE, 1500000 + i, t, "note %d" % i))
        want_a[k] = (CODE, 1500000 + i, d, "note %d" % i, "new", None)
    for i, k in enumerate(b_ids):
        t, d = ts(7, 11, i)
        pos_exec(agent.db, "INSERT INTO fin_b(id, branch_id, amount,"
                 " booked_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                 (k, CODE, 9000000000 + i, t, t))
        want_b[k] = (CODE, 9000000000 + i, d, d)
    return want_a, want_b


def live(env, pg, hub, agent, bid):
    """Inserts, an update around a center-side change, deletes."""
    a_ids, b_ids = ids(3, 1), ids(3, 2)
    want_a, want_b = write_pos(agent, a_ids, b_ids)
    agent.wait_drained(timeout=60, hub=hub)
    check_eq(center_a(pg, bid), want_a, "fin_a: rows at the center, POS "
             "branch_id as branch_code, amt as amount, status 'new' by "
             "default and approved_by NULL")
    check_eq(center_b(pg, bid), want_b, "fin_b: rows at the center under "
             "origin_branch, with the POS's text branch_id as it is")

    a0, b0 = a_ids[0], b_ids[0]
    pg.psql("UPDATE fin_a SET status = 'approved', approved_by = 'ana'"
            " WHERE id = %s", (a0,))
    t, d = ts(8, 9, 0)
    pos_exec(agent.db, "UPDATE fin_a SET amt = 1750000, booked_at = ?"
             " WHERE id = ?", (t, a0))
    pos_exec(agent.db, "UPDATE fin_b SET amount = 42, updated_at = ?"
             " WHERE id = ?", (t, b0))
    pos_exec(agent.db, "DELETE FROM fin_a WHERE id = ?", (a_ids[2],))
    pos_exec(agent.db, "DELETE FROM fin_b WHERE id = ?", (b_ids[2],))
    agent.wait_drained(timeout=60, hub=hub)
    want_a[a0] = (CODE, 1750000, d, "note 0", "approved", "ana")
    want_b[b0] = (CODE, 42, want_b[b0][2], d)
    del want_a[a_ids[2]], want_b[b_ids[2]]
    check_eq(center_a(pg, bid), want_a, "fin_a: the update arrived and "
             "left status and approved_by as the center set them; the "
             "delete arrived")
    check_eq(center_b(pg, bid), want_b, "fin_b: the update and the delete "
             "arrived")
    bstest.check_all_synced(agent.db, ("fin_a", "fin_b"))
    check_eq(pg.psql("SELECT count(*) FROM branchsync.reject")[0][0], 0,
             "no event was rejected")
    return want_a, want_b


def raw_pushes(pg, hub, key, bid, want_a, want_b):
    rawclient = bstest.binary("bs-rawclient")
    log_id = "0123456789abcdef0123456789abcdef"
    a_tbl = ("fin_a", ["id", "branch_id", "amt", "booked_at"], 1)
    b_tbl = ("fin_b", ["id", "branch_id", "amount", "booked_at",
                       "updated_at"], 1)

    def push(tables, events, what):
        t, body = W.request(rawclient, hub.url,
                            W.push(CODE, key, log_id, tables, events))
        check_eq(t, W.ACK, "%s: answered with ACK" % what)
        return {o[0]: o for o in body.get("outcomes", [])}

    t, _ = W.request(rawclient, hub.url, W.hello(CODE, key, log_id, 0))
    check_eq(t, W.WELCOME, "raw HELLO answered with WELCOME")

    # slow path: a bad amount fails the set-based upsert
    k_ok, k_bad = ids(2, 3)
    t1, d1 = ts(9, 8, 30)
    out = push([a_tbl], [(1, 1, 0, W.OP_UPSERT, [k_ok, CODE, 5, t1]),
                         (2, 2, 0, W.OP_UPSERT, [k_bad, CODE, "x", t1])],
               "slow path")
    check(2 in out and out[2][1] == W.OUT_REJECTED and 1 not in out,
          "slow path: only the bad event is rejected", out)
    want_a[k_ok] = (CODE, 5, d1, None, "new", None)
    check_eq(center_a(pg, bid), want_a, "slow path: the good event is "
             "stored with its columns renamed, defaults for the rest")
    rej = pg.psql("SELECT row FROM branchsync.reject WHERE seq = 2")
    check(len(rej) == 1 and "amount" in rej[0][0]
          and "branch_code" in rej[0][0] and "amt" not in rej[0][0],
          "a reject's row names the center's columns", rej)

    # last_writer_wins on fin_b: an older row is a conflict
    b0 = next(k for k in want_b if want_b[k][1] == 42)
    old, _ = ts(1, 0, 0)
    out = push([b_tbl], [(3, 3, 0, W.OP_UPSERT, [b0, CODE, 7, old, old])],
               "older fin_b row")
    check(3 in out and out[3][1] == W.OUT_CONFLICT, "an older fin_b row is "
          "a conflict", out)
    rows = pg.psql("SELECT server_row, local_row FROM branchsync.conflict"
                   " WHERE seq = 3")
    check(len(rows) == 1 and "origin_branch" not in rows[0][0]
          and rows[0][0].get("branch_id") == CODE
          and rows[0][0].get("amount") == 42
          and rows[0][1].get("amount") == 7,
          "the conflict's server row leaves out origin_branch and keeps "
          "the POS's branch_id", rows)
    check_eq(center_b(pg, bid), want_b, "fin_b: the server row was kept")

    # the branch column itself may not be sent
    k_x, k_n = ids(2, 4)
    out = push([("fin_b", ["id", "origin_branch", "amount", "booked_at",
                           "updated_at"], 1)],
               [(4, 4, 0, W.OP_UPSERT, [k_x, 99, 1, t1, t1])],
               "branch column sent")
    check(4 in out and out[4][1] == W.OUT_REJECTED
          and out[4][2] == 'column "origin_branch" is set by the hub',
          "an event naming the branch column is rejected", out)

    # a NULL key
    out = push([b_tbl], [(5, 5, 0, W.OP_UPSERT, [None, CODE, 1, t1, t1]),
                         (6, 6, 0, W.OP_DELETE, [None]),
                         (7, 7, 0, W.OP_UPSERT, [k_n, CODE, 1, t1, t1])],
               "NULL key")
    for seq in (5, 6):
        check(seq in out and out[seq][1] == W.OUT_REJECTED
              and out[seq][2] == 'key column "id" is NULL',
              "seq %d with a NULL key is rejected: key column \"id\" is "
              "NULL" % seq, out)
    check(7 not in out, "the event after them is applied", out)
    rej = pg.psql("SELECT seq, tbl, reason FROM branchsync.reject"
                  " WHERE seq IN (5, 6) ORDER BY seq")
    check_eq(rej, [(5, "fin_b", 'key column "id" is NULL'),
                   (6, "fin_b", 'key column "id" is NULL')],
             "NULL-key events are recorded in branchsync.reject")
    check_eq(len(center_b(pg, bid)), len(want_b) + 1,
             "fin_b: only the event with a key was stored")


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, tables=HUB_TABLES)
    pg.psql(CENTER_SQL)
    hub.migrate()
    key = hub.branch_add(CODE)
    bid = hub.branch_id(CODE)
    db = os.path.join(env.dir, "fin.db")
    c = bstest.sqlite_connect(db)
    c.executescript(POS_SQL)
    c.close()
    agent = env.agent("pos", CODE, key, hub.url, db=db,
                      tables=("fin_a", "fin_b"))
    agent.init()
    hub.start()
    agent.start()
    want_a, want_b = live(env, pg, hub, agent, bid)
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    raw_pushes(pg, hub, key, bid, want_a, want_b)
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
