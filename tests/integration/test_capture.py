"""test_capture: change capture by the triggers of "branchsync-agent init".

No agent process runs and no hub exists: the POS keeps writing with plain
python sqlite3, and every write must leave exactly the expected rows in
_branchsync_log (table, op, key). Covers insert, update, delete, a
composite key, a key change (delete of the old key + update of the new),
an is_synced-only update (not captured), INSERT OR REPLACE, UPSERT,
multi-row statements, rollback, the agent's guard table, a table that
gained a column (init refreshes its trigger), tables dropped from the
config, bad configs (nothing changed), and that init run twice changes
nothing.
"""
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

T, I, P = "transactions", "transaction_items", "payments"
INS, UPD, DEL = 1, 2, 3


def schema(db):
    c = sqlite3.connect(db)
    try:
        return sorted(c.execute("SELECT type, name, tbl_name, sql FROM "
                                "sqlite_master"))
    finally:
        c.close()


class Log:
    """Reads the log rows written since the last call."""

    def __init__(self, db):
        self.c = sqlite3.connect(db, isolation_level=None)
        self.last = self.c.execute(
            "SELECT coalesce(max(seq), 0) FROM _branchsync_log").fetchone()[0]
        self.tags = set()

    def new(self):
        rows = self.c.execute(
            "SELECT seq, tbl, op, k, typeof(k), tag, typeof(tag), err FROM "
            "_branchsync_log WHERE seq > ? ORDER BY seq",
            (self.last,)).fetchall()
        out = []
        for seq, tbl, op, k, ktype, tag, tagtype, err in rows:
            if seq <= self.last:
                raise bstest.Failure("seq %d not increasing" % seq)
            if tagtype != "integer" or err is not None:
                raise bstest.Failure("log row %d: tag %r (%s), err %r"
                                     % (seq, tag, tagtype, err))
            self.tags.add(tag)
            self.last = seq
            out.append((tbl, op, k, ktype))
        return out

    def expect(self, what, want):
        """want: [(tbl, op, k)]; k int for a one-column key (stored as an
        integer), text json_array for a composite key."""
        got = self.new()
        want = [(t, op, k, "integer" if isinstance(k, int) else "text")
                for t, op, k in want]
        check_eq(got, want, "log after " + what)


def main(env):
    agent = env.agent("pos", "b1", "0" * 64, "tcp://127.0.0.1:9")
    db = agent.db
    pos = sqlite3.connect(db, isolation_level=None)
    x = pos.execute

    before = schema(db)
    agent.init()
    after1 = schema(db)
    names = {r[1] for r in after1}
    for obj in ("_branchsync_log", "_branchsync_meta", "_branchsync_guard"):
        check(obj in names, "init created " + obj)
    trig = sorted(r[1] for r in after1 if r[0] == "trigger")
    want_trig = sorted("_branchsync_%s_%s" % (t, k) for t in (T, I, P)
                       for k in ("ins", "upd", "del"))
    check_eq(trig, want_trig, "init created one trigger per op per table")
    check(not any(r[2] == "products" for r in after1 if r[0] == "trigger"),
          "no trigger on products (not configured)")
    meta = agent.meta()
    check_eq(str(meta.get("schema")), "2", "meta schema")
    lid = str(meta.get("log_id", ""))
    check(len(lid) == 32 and all(ch in "0123456789abcdef" for ch in lid),
          "meta log_id is 32 hex digits", lid)
    check_eq(int(meta.get("acked_seq", -1)), 0, "meta acked_seq starts at 0")
    check(set(before) <= set(after1), "init kept the POS objects")

    agent.init()
    check_eq(schema(db), after1, "init run twice: sqlite_master unchanged")
    check_eq(agent.meta(), meta, "init run twice: meta unchanged")

    log = Log(db)
    check_eq(log.new(), [], "log empty after init")

    # one-column key
    x("INSERT INTO transactions(id, total_cost, payment_status, is_synced) "
      "VALUES (1, 100, 'open', 1)")
    log.expect("insert", [(T, INS, 1)])
    check_eq(x("SELECT is_synced FROM transactions WHERE id = 1").fetchone(),
             (0,), "insert with is_synced = 1 is reset to 0 by the trigger")
    x("UPDATE transactions SET payment_status = 'paid' WHERE id = 1")
    log.expect("update", [(T, UPD, 1)])
    x("UPDATE transactions SET is_synced = 1 WHERE id = 1")
    log.expect("is_synced-only update", [])
    check_eq(x("SELECT is_synced FROM transactions WHERE id = 1").fetchone(),
             (1,), "is_synced-only update kept is_synced = 1")
    x("UPDATE transactions SET total_cost = total_cost WHERE id = 1")
    log.expect("update to the same value", [(T, UPD, 1)])
    check_eq(x("SELECT is_synced FROM transactions WHERE id = 1").fetchone(),
             (0,), "a captured update resets is_synced to 0")
    x("UPDATE transactions SET id = 2 WHERE id = 1")
    log.expect("key change 1 -> 2", [(T, DEL, 1), (T, UPD, 2)])
    x("DELETE FROM transactions WHERE id = 2")
    log.expect("delete", [(T, DEL, 2)])

    # composite key
    x("INSERT INTO payments(transaction_id, line_no, method, amount) "
      "VALUES (7, 1, 'cash', 500)")
    log.expect("composite insert", [(P, INS, "[7,1]")])
    x("UPDATE payments SET amount = 600 WHERE transaction_id = 7")
    log.expect("composite update", [(P, UPD, "[7,1]")])
    x("UPDATE payments SET line_no = 2 WHERE transaction_id = 7")
    log.expect("composite key change", [(P, DEL, "[7,1]"), (P, UPD, "[7,2]")])
    x("DELETE FROM payments WHERE transaction_id = 7 AND line_no = 2")
    log.expect("composite delete", [(P, DEL, "[7,2]")])
    x("INSERT INTO payments(transaction_id, line_no, method, amount) "
      "VALUES (8, 1, 'card', 1), (8, 2, 'cash', 2)")
    log.expect("composite multi-row insert", [(P, INS, "[8,1]"),
                                              (P, INS, "[8,2]")])

    # INSERT OR REPLACE and UPSERT
    x("INSERT OR REPLACE INTO transactions(id, total_cost) VALUES (5, 10)")
    log.expect("INSERT OR REPLACE (new row)", [(T, INS, 5)])
    x("INSERT OR REPLACE INTO transactions(id, total_cost) VALUES (5, 11)")
    log.expect("INSERT OR REPLACE (existing row)", [(T, INS, 5)])
    x("INSERT INTO transactions(id, total_cost) VALUES (5, 12) "
      "ON CONFLICT(id) DO UPDATE SET total_cost = excluded.total_cost")
    log.expect("UPSERT of an existing row", [(T, UPD, 5)])
    check_eq(x("SELECT total_cost, is_synced FROM transactions WHERE id = 5")
             .fetchone(), (12, 0), "row 5 holds the last written values")

    # multi-row statements, transactions, rollback
    x("INSERT INTO transaction_items(id, transaction_id, qty, price, "
      "subtotal) VALUES (10, 5, 1, 4, 4), (11, 5, 2, 4, 8), (12, 5, 1, 1, 1)")
    log.expect("multi-row insert", [(I, INS, 10), (I, INS, 11),
                                    (I, INS, 12)])
    x("UPDATE transaction_items SET qty = qty + 1")
    log.expect("multi-row update", [(I, UPD, 10), (I, UPD, 11),
                                    (I, UPD, 12)])
    x("BEGIN")
    x("INSERT INTO transaction_items(id, transaction_id, qty, price, "
      "subtotal) VALUES (13, 5, 1, 1, 1)")
    x("DELETE FROM transaction_items WHERE id = 13")
    x("COMMIT")
    log.expect("insert + delete in one transaction", [(I, INS, 13),
                                                      (I, DEL, 13)])
    x("BEGIN")
    x("INSERT INTO transactions(id, total_cost) VALUES (99, 1)")
    x("ROLLBACK")
    log.expect("rolled-back insert", [])

    # the agent's own writes (guard row present) are not captured
    x("BEGIN")
    x("INSERT INTO _branchsync_guard(x) VALUES (1)")
    x("INSERT INTO transactions(id, total_cost) VALUES (50, 1)")
    x("UPDATE transactions SET total_cost = 2 WHERE id = 50")
    x("DELETE FROM _branchsync_guard")
    x("COMMIT")
    log.expect("writes inside the guard", [])
    x("UPDATE transactions SET total_cost = 3 WHERE id = 50")
    log.expect("write after the guard is gone", [(T, UPD, 50)])

    # a table that gained a column: init refreshes its UPDATE trigger
    x("ALTER TABLE transactions ADD COLUMN note TEXT")
    agent.init()
    upd = x("SELECT sql FROM sqlite_master WHERE name = "
            "'_branchsync_transactions_upd'").fetchone()[0]
    check("note" in upd, "init refreshed the update trigger of a table that "
          "gained a column")
    x("UPDATE transactions SET note = 'hello' WHERE id = 5")
    log.expect("update of the new column", [(T, UPD, 5)])
    s = schema(db)
    agent.init()
    check_eq(schema(db), s, "init after the refresh changes nothing")

    # a table dropped from the config loses its triggers; added back: again
    agent.tables = (T, I)
    agent.write_config()
    agent.init()
    left = sorted(r[1] for r in schema(db) if r[0] == "trigger")
    check(not any(n.startswith("_branchsync_payments_") for n in left),
          "triggers of a table no longer configured are dropped", left)
    x("INSERT INTO payments(transaction_id, line_no, method, amount) "
      "VALUES (9, 1, 'cash', 1)")
    log.expect("insert into an unconfigured table", [])
    agent.tables = (T, I, P)
    agent.write_config()
    agent.init()
    check_eq(schema(db), s, "configured again: the same triggers as before")

    # bad configs: clear error, exit 1, nothing changed
    x("CREATE TABLE notes(a INTEGER, b TEXT)")
    s = schema(db)
    for tables, what, word in (((T, "no_such_table"), "a missing table",
                                "no_such_table"),
                               ((T, "notes"), "a table without a key",
                                "notes")):
        agent.tables = tables
        agent.write_config()
        r = agent.cli("init")
        check_eq(r.returncode, 1, "init with %s: exit status" % what)
        check("branchsync-agent: error:" in r.stderr and word in r.stderr,
              "init with %s: error names the table" % what, r.stderr)
        check_eq(schema(db), s, "init with %s changed nothing" % what)
    agent.tables = (T, I, P)
    agent.write_config()

    check_eq(len(log.tags), log.last, "every log row has its own tag")
    rows = x("SELECT count(*) FROM _branchsync_log").fetchone()[0]
    check_eq(rows, log.last, "no log row went missing")

    r = agent.cli("status", "--json")
    check_eq(r.returncode, 0, "agent status --json: exit status")
    try:
        st = json.loads(r.stdout)
    except ValueError:
        raise bstest.Failure("status --json is not JSON: %r" % r.stdout)
    check(isinstance(st, dict) and lid in json.dumps(st),
          "agent status --json is one object naming the log_id", r.stdout)

    check_eq(x("SELECT id, total_cost FROM transactions ORDER BY id")
             .fetchall(), [(5, 12), (50, 3)],
             "the POS writes all worked with no agent running")
    pos.close()


bstest.run(main)
