"""test_capture_keys: capture never fails a POS write that SQLite accepts,
and columns kept local never leave the branch (issue "real POS schemas",
cases 2 and 3).

1. Every value SQLite accepts in a key column: NULL, INTEGER, REAL, TEXT
   (short, non-ASCII, 100 KB), BLOB, in a one-column key without type
   affinity (tk), in a TEXT PRIMARY KEY (tt) and in a composite key (ck),
   through every capture path: INSERT, INSERT ... ON CONFLICT DO UPDATE,
   INSERT OR REPLACE, UPDATE, UPDATE of the key, DELETE. Every POS
   statement succeeds. Then a real agent drains into a real hub and
   PostgreSQL: each row's final state is at the center (a BLOB key as
   PostgreSQL's \\x hex text), nothing deleted or renamed away is, every
   replicated POS row is is_synced = 1, and the events of NULL keys (which
   no center key can hold) are set aside with a reason naming the NULL,
   listed by `rejects list` at the branch and at the hub; so are TEXT keys
   that are not UTF-8 or hold a NUL. Nothing else is left in the log.
2. `exclude = password, synced_at` on users: the center never receives
   them (its default stays); an app's own `UPDATE users SET synced_at =
   ..., is_synced = 1` and a password change create no event and leave
   is_synced = 1; a real change goes up and leaves the center's password
   as it was.
"""
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

POS_SCHEMA = """
CREATE TABLE tk(id PRIMARY KEY, v, is_synced INTEGER NOT NULL DEFAULT 0);
CREATE TABLE tt(id TEXT PRIMARY KEY, v,
                is_synced INTEGER NOT NULL DEFAULT 0);
CREATE TABLE ck(a, b, v, is_synced INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (a, b));
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, password TEXT,
                   synced_at TEXT, is_synced INTEGER NOT NULL DEFAULT 0);
CREATE TABLE tn(id PRIMARY KEY, v, is_synced INTEGER NOT NULL DEFAULT 0);
"""

CENTER_SCHEMA = """
CREATE TABLE tk(branch_id integer, id text, v text,
                PRIMARY KEY (branch_id, id));
CREATE TABLE tt(branch_id integer, id text, v text,
                PRIMARY KEY (branch_id, id));
CREATE TABLE ck(branch_id integer, a text, b text, v text,
                PRIMARY KEY (branch_id, a, b));
CREATE TABLE users(branch_id integer, id bigint, name text,
                   password text DEFAULT 'unset', synced_at text,
                   PRIMARY KEY (branch_id, id));
CREATE TABLE tn(branch_id integer, id bigint, v text,
                PRIMARY KEY (branch_id, id));
"""

BIG = "k" * 100000


def center_text(v):
    """How PostgreSQL's text column shows a value the hub received."""
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    return str(v)


def derive(k, suffix):
    """Another key of the same storage class as k."""
    if isinstance(k, bytes):
        return k + suffix.encode()
    if isinstance(k, int):
        return k + 100 * (1 + "bcd".index(suffix))
    if isinstance(k, float):
        return k + 100 * (1 + "bcd".index(suffix))
    return k + suffix


def one_key_paths(x, t, k):
    """Every capture path over table t (one-column key), key class of k:
    row k ends as 'd'; row kb is renamed to kb2 and ends as 'x'; row kc
    is deleted. Returns {center key: v} of what must arrive."""
    kb, kb2, kc = derive(k, "b"), derive(k, "c"), derive(k, "d")
    stmts = [
        ("INSERT INTO %s(id, v) VALUES (?, 'a')" % t, (k,)),
        ("INSERT INTO %s(id, v) VALUES (?, 'b') ON CONFLICT(id) DO UPDATE "
         "SET v = excluded.v" % t, (k,)),
        ("INSERT OR REPLACE INTO %s(id, v) VALUES (?, 'c')" % t, (k,)),
        ("UPDATE %s SET v = 'd' WHERE id IS ?" % t, (k,)),
        ("INSERT INTO %s(id, v) VALUES (?, 'x')" % t, (kb,)),
        ("UPDATE %s SET id = ? WHERE id IS ?" % t, (kb2, kb)),
        ("INSERT INTO %s(id, v) VALUES (?, 'y')" % t, (kc,)),
        ("DELETE FROM %s WHERE id IS ?" % t, (kc,)),
    ]
    for sql, args in stmts:
        x(sql, args)
    return {center_text(k): "d", center_text(kb2): "x"}


def composite_paths(x, a, b):
    """The same paths over ck's key (a, b)."""
    bb = b + "2"
    stmts = [
        ("INSERT INTO ck(a, b, v) VALUES (?, ?, 'a')", (a, b)),
        ("INSERT INTO ck(a, b, v) VALUES (?, ?, 'b') ON CONFLICT(a, b) DO "
         "UPDATE SET v = excluded.v", (a, b)),
        ("INSERT OR REPLACE INTO ck(a, b, v) VALUES (?, ?, 'c')", (a, b)),
        ("UPDATE ck SET v = 'd' WHERE a IS ? AND b IS ?", (a, b)),
        ("INSERT INTO ck(a, b, v) VALUES (?, ?, 'x')", (a, b + "r")),
        ("UPDATE ck SET b = ? WHERE a IS ? AND b IS ?", (bb, a, b + "r")),
        ("INSERT INTO ck(a, b, v) VALUES (?, ?, 'y')", (a, b + "g")),
        ("DELETE FROM ck WHERE a IS ? AND b IS ?", (a, b + "g")),
    ]
    for sql, args in stmts:
        x(sql, args)
    return {(center_text(a), b): "d", (center_text(a), bb): "x"}


def write_keys(db):
    """Runs every path, each statement in its own transaction (as a POS
    does). A statement that fails raises: the test fails there. Returns
    what must reach the center per table."""
    c = sqlite3.connect(db, isolation_level=None)
    want = {"tk": {}, "tt": {}, "ck": {}, "tn": {5: "int"}}
    try:
        x = c.execute
        for k in (7, 2.5, "abc", "\u00fc\u65e5\u672c", BIG,
                  b"\x00\xff\x10"):
            want["tk"].update(one_key_paths(x, "tk", k))
        want["tt"].update(one_key_paths(x, "tt", "t1"))
        # NULL keys: every path, then the key changes to a real one.
        for t in ("tk", "tt"):
            x("INSERT INTO %s(id, v) VALUES (NULL, 'n1')" % t)
            x("INSERT INTO %s(id, v) VALUES (NULL, 'n2') ON CONFLICT(id) DO "
              "UPDATE SET v = excluded.v" % t)
            x("INSERT OR REPLACE INTO %s(id, v) VALUES (NULL, 'n3')" % t)
            x("UPDATE %s SET v = 'n4' WHERE id IS NULL" % t)
            x("UPDATE %s SET id = 'from-null' WHERE v = 'n4' AND rowid = "
              "(SELECT min(rowid) FROM %s WHERE id IS NULL)" % (t, t))
            x("DELETE FROM %s WHERE id IS NULL AND rowid = (SELECT "
              "max(rowid) FROM %s WHERE id IS NULL)" % (t, t))
            want[t]["from-null"] = "n4"
        for a, b in ((1, "x"), (2.5, "y"), (b"\x01\x02", "z"),
                     ("t", "w")):
            want["ck"].update(composite_paths(x, a, b))
        x("INSERT INTO ck(a, b, v) VALUES (NULL, 'n', 'n1')")
        x("INSERT OR REPLACE INTO ck(a, b, v) VALUES (x'ab', NULL, 'n2')")
        # Text SQLite takes but PostgreSQL's text cannot hold: bytes that
        # are not UTF-8, and a NUL inside. Sets aside, like a NULL.
        x("INSERT INTO tt(id, v) VALUES (CAST(x'ff41' AS TEXT), 'bad')")
        x("INSERT INTO tt(id, v) VALUES (CAST(x'610062' AS TEXT), 'nul')")
        # A BLOB key where the center has a bigint: set aside too.
        x("INSERT INTO tn(id, v) VALUES (x'0102', 'blob')")
        x("INSERT INTO tn(id, v) VALUES (5, 'int')")
    finally:
        c.close()
    return want


def center_rows(pg, bid):
    got = {}
    for t in ("tk", "tt"):
        got[t] = dict(pg.psql("SELECT id, v FROM %s WHERE branch_id = %%s"
                              % t, (bid,)))
    got["tn"] = dict(pg.psql("SELECT id, v FROM tn WHERE branch_id = %s",
                             (bid,)))
    got["ck"] = {(a, b): v for a, b, v in pg.psql(
        "SELECT a, b, v FROM ck WHERE branch_id = %s", (bid,))}
    return got


def check_rejects(env, pg, hub, agent):
    """The NULL-key events: set aside at both ends, with the reason."""
    st = agent.state()
    check(st["rejected"] > 0, "NULL-key events are set aside at the branch",
          st)
    # hex(k): a key that is not UTF-8 cannot be read as Python text.
    local = bstest.sqlite_all(
        agent.db, "SELECT tbl, hex(k), k IS NULL OR instr(k, 'null') > 0, "
        "err FROM _branchsync_log WHERE err IS NOT NULL")
    odd = 0
    for tbl, khex, null_key, err in local:
        if khex in ("FF41", "610062"):
            odd += 1
            check("utf8" in err.lower() or "nul" in err.lower(),
                  "a key that is not UTF-8, or holds a NUL: the reason "
                  "says so", err)
            continue
        if tbl == "tn":
            odd += 1
            check("bigint" in err.lower(), "a BLOB key into a bigint "
                  "column: the reason names the type", err)
            continue
        check(null_key, "only NULL-key events are rejected",
              (tbl, khex, err))
        check("null" in err.lower(), "the reason names the NULL", err)
    check_eq(odd, 3, "the two text keys and the BLOB key PostgreSQL "
             "cannot hold are set aside")
    r = agent.cli("rejects", "list", "--json")
    check_eq(r.returncode, 0, "agent rejects list exits 0")
    listed = json.loads(r.stdout)
    check_eq(len(listed), len(local), "agent rejects list shows each one")
    check_eq(sorted(x["key"] for x in listed if x["table"] == "tn"),
             [[{"b": "0102"}]], "a BLOB key is listed as its hex")
    hub_rj = pg.psql("SELECT tbl, reason FROM branchsync.reject WHERE state "
                     "= 'open'")
    check_eq(len(hub_rj), len(local), "the hub holds the same rejects open")
    # Each table still holds a NULL-key row: none may pass unseen.
    check_eq(sorted({t for t, _k, _n, _e in local}), ["ck", "tk", "tn", "tt"],
             "every table with a NULL-key row has its rejects")
    r = hub.cli("rejects", "list")
    check_eq(r.returncode, 0, "hub rejects list exits 0")
    for tbl in {t for t, _k, _n, _e in local}:
        check(tbl in r.stdout, "hub rejects list names table %s" % tbl,
              r.stdout)


def check_excluded(pg, hub, agent, bid):
    db = agent.db
    c = bstest.sqlite_connect(db)
    try:
        c.execute("INSERT INTO users(id, name, password) VALUES "
                  "(1, 'ann', 'secret')")
    finally:
        c.close()
    bstest.wait_until(lambda: bstest.sqlite_one(
        db, "SELECT is_synced FROM users WHERE id = 1")[0] == 1, 60,
        "user 1 to be synced", alive=[agent.proc, hub.proc])
    check_eq(pg.psql("SELECT name, password, synced_at FROM users WHERE "
                     "branch_id = %s", (bid,)), [("ann", "unset", None)],
             "the excluded columns never reach the center (its default "
             "stays)")
    high = agent.state()["high_seq"]
    c = bstest.sqlite_connect(db)
    try:
        c.execute("UPDATE users SET synced_at = '2026-12-07T10:00:00', "
                  "is_synced = 1 WHERE id = 1")
        c.execute("UPDATE users SET password = 'other' WHERE id = 1")
    finally:
        c.close()
    check_eq(agent.state()["high_seq"], high, "a write of excluded columns "
             "only is not captured")
    check_eq(bstest.sqlite_one(db, "SELECT is_synced FROM users")[0], 1,
             "and the row stays is_synced = 1")
    pg.psql("UPDATE users SET password = 'center-set'")
    c = bstest.sqlite_connect(db)
    try:
        c.execute("UPDATE users SET name = 'bob', password = 'p3' WHERE "
                  "id = 1")
    finally:
        c.close()
    bstest.wait_until(lambda: pg.psql(
        "SELECT name FROM users WHERE branch_id = %s", (bid,))
        == [("bob",)], 60, "the rename to reach the center",
        alive=[agent.proc, hub.proc])
    check_eq(pg.psql("SELECT password, synced_at FROM users"),
             [("center-set", None)], "an update leaves the center's "
             "columns that the branch does not send as they are")


def main(env):
    pg = env.postgres()
    pg.psql(CENTER_SCHEMA)
    hub = env.hub(pg, tables=("tk", "tt", "ck", "users", "tn"))
    hub.migrate()
    key = hub.branch_add("b1")
    bid = hub.branch_id("b1")
    db = os.path.join(env.dir, "pos.db")
    c = sqlite3.connect(db)
    c.executescript(POS_SCHEMA)
    c.close()
    agent = env.agent("pos", "b1", key, hub.url, db=db,
                      tables={"tk": {}, "tt": {}, "ck": {}, "tn": {},
                              "users": {"exclude": "password, synced_at"}})
    agent.init()
    want = write_keys(db)
    hub.start()
    agent.start()
    bstest.wait_until(lambda: agent.state()["pending"] == 0, 120,
                      "the agent to drain", interval=0.2,
                      alive=[agent.proc, hub.proc])
    got = center_rows(pg, bid)
    for t in ("tk", "tt", "ck", "tn"):
        check_eq(sorted(got[t].items()), sorted(want[t].items()),
                 "table %s: every row's final state at the center, and "
                 "nothing deleted or renamed away" % t)
    for t in ("tk", "tt", "ck"):
        unsynced = bstest.sqlite_all(
            db, "SELECT count(*) FROM %s WHERE is_synced = 0 AND %s" % (
                t, "a IS NOT NULL AND b IS NOT NULL" if t == "ck"
                else "id IS NOT NULL AND hex(id) NOT IN ('FF41', "
                "'610062')"))[0][0]
        check_eq(unsynced, 0, "table %s: replicated rows are is_synced = 1"
                 % t)
    check_rejects(env, pg, hub, agent)
    check_excluded(pg, hub, agent, bid)
    agent.stop()
    hub.stop()


bstest.run(main)
