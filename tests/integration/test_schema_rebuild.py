"""test_schema_rebuild: a POS upgrade rebuilds tables while the agent runs.

A rebuild (CREATE TABLE x_new, INSERT ... SELECT, DROP TABLE x, ALTER
TABLE x_new RENAME TO x, in one transaction of the POS's own connection)
drops the capture triggers with the old table. Real PostgreSQL, hub and
agent; the POS simulator writes sales (each sale one transaction).

1. Live: while the simulator writes sales, "transactions" is rebuilt twice
   from another connection; the running agent must notice the schema
   change (AGENT-SCHEMA-CHANGED), reinstall the triggers
   (AGENT-TRIGGERS-REINSTALLED) and keep capturing.
2. The window: the agent is stopped with SIGSTOP, transactions and
   transaction_items are rebuilt and 150 sales are written before it
   continues, so those sales are written with no trigger at all. The
   agent must find them by is_synced = 0 (AGENT-SWEEP).
   After both phases: every POS row is at the center exactly once, column
   by column, every row is_synced = 1, the log holds only its marker.
3. Unfit: with "key = id" for transaction_items, a rebuild renames its id
   column. The agent refuses the table loudly (AGENT-TABLE-UNFIT, shown by
   status --json and GET /status in unfit_tables), every POS write still
   succeeds, and transactions and payments keep arriving at the center.

The simulator writes no updates or deletes while triggers may be missing:
its updates do not set is_synced = 0 (a trigger does that), so a sweep
cannot find them; see docs/operations.md.
"""
import json
import os
import re
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402


def rebuild(db, table, rename=None, timeout=30):
    """Rebuilds table the way migration tools do, in one transaction;
    rename = (old, new) renames a column on the way."""
    c = sqlite3.connect(db, timeout=timeout, isolation_level=None)
    try:
        sql = c.execute("SELECT sql FROM sqlite_master WHERE type = 'table' "
                        "AND name = ?", (table,)).fetchone()[0]
        new = re.sub(r"^CREATE TABLE (IF NOT EXISTS )?\"?%s\"?" % table,
                     "CREATE TABLE %s_new" % table, sql)
        cols = [r[1] for r in c.execute("PRAGMA table_info(%s)" % table)]
        if rename:
            new = re.sub(r"\b%s\b" % rename[0], rename[1], new, count=1)
        c.execute("BEGIN IMMEDIATE")
        c.execute(new)
        c.execute("INSERT INTO %s_new SELECT %s FROM %s"
                  % (table, ", ".join(cols), table))
        c.execute("DROP TABLE %s" % table)
        c.execute("ALTER TABLE %s_new RENAME TO %s" % (table, table))
        c.execute("COMMIT")
    finally:
        c.close()


def triggers(db, table):
    return bstest.sqlite_one(
        db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
        "tbl_name = ? AND name LIKE '\\_branchsync\\_%' ESCAPE '\\'",
        (table,))[0]


def live_phase(env, agent, hub):
    w = bstest.start_writer(env, agent, sales=3600, seed=7, rate=300,
                            update_fraction=0, delete_fraction=0)
    # Up to two rebuilds while the simulator writes. A rebuild waits for
    # the write lock, longer on a busy machine, so the simulator may end
    # before the second: one during the writes is what this phase needs.
    done = 0
    while done < 2:
        time.sleep(1.0)
        if not w.running():
            break
        rebuild(agent.db, "transactions")
        done += 1
        bstest.log("rebuilt transactions while sales were written")
    check(done >= 1, "transactions was rebuilt while the simulator wrote",
          done)
    w.wait(timeout=120)
    # The refit waits for the batch in flight; on a loaded machine the hub
    # may take a while with it. What counts is that they come back.
    bstest.wait_until(lambda: triggers(agent.db, "transactions") == 3, 60,
                      "triggers of transactions back", alive=[agent.proc])


def stop_unlocked(agent):
    """SIGSTOPs the agent where it holds no lock on the POS file: stopped
    inside one of its short transactions it would keep the rebuild out,
    so then it goes on a moment and is stopped again (bounded)."""
    for _ in range(50):
        agent.proc.p.send_signal(signal.SIGSTOP)
        try:
            rebuild(agent.db, "transactions", timeout=1)
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e):
                raise
        agent.proc.p.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    raise bstest.Failure("the agent held the POS file at 50 stops")


def window_phase(agent, hub):
    # Drained first: an agent busy with a backlog is inside one of its
    # transactions most of the time, and a loaded machine makes it worse.
    agent.wait_drained(timeout=120, hub=hub)
    stop_unlocked(agent)
    try:
        rebuild(agent.db, "transaction_items")
        check_eq(triggers(agent.db, "transactions"), 0,
                 "the rebuild dropped the capture triggers")
        st = bstest.possim_run(agent.db, sales=150, seed=8,
                               update_fraction=0, delete_fraction=0)
        check_eq(st["sales"], 150, "150 sales written with no triggers")
    finally:
        agent.proc.p.send_signal(signal.SIGCONT)


def unfit_phase(env, pg, hub, agent):
    bid = hub.branch_id(agent.branch)
    agent.stop()
    with open(agent.ini, "a") as f:
        f.write("\n[table transaction_items]\nkey = id\n")
    # The section above replaces the plain one: drop the first.
    text = open(agent.ini).read().replace("[table transaction_items]\n\n",
                                          "", 1)
    open(agent.ini, "w").write(text)
    agent.start()
    w = bstest.start_writer(env, agent, sales=600, seed=9, rate=300,
                            update_fraction=0, delete_fraction=0)
    time.sleep(0.5)
    rebuild(agent.db, "transaction_items", rename=("id", "item_id"))
    w.wait(timeout=120)
    check(agent.alive(), "the agent keeps running")
    bstest.wait_until(lambda: "AGENT-TABLE-UNFIT" in agent.proc.log_text(),
                      10, "AGENT-TABLE-UNFIT in the agent log")
    st = agent.status_json()
    check("transaction_items" in st["unfit_tables"],
          "status --json lists transaction_items as unfit",
          st["unfit_tables"])
    code, body = agent.http_get("/status")
    check("transaction_items" in json.loads(body)["unfit_tables"],
          "GET /status lists it too")
    r = agent.cli("status")
    check("unfit_tables:    transaction_items" in r.stdout,
          "status shows it", r.stdout)
    agent.wait_drained(timeout=120, hub=hub)
    for t in ("transactions", "payments"):
        bstest.compare_table(agent.db, pg, t, bid)
    bstest.check_all_synced(agent.db, ("transactions", "payments"))


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    hub.start()
    key = hub.branch_add("b1")
    agent = env.agent("pos", "b1", key, hub.url)
    agent.init()
    bstest.possim_run(agent.db, sales=300, seed=6)
    agent.start()
    agent.wait_drained(timeout=120, hub=hub)

    live_phase(env, agent, hub)
    window_phase(agent, hub)
    agent.wait_drained(timeout=120, hub=hub)
    bstest.check_replicated(pg, hub, agent)
    text = agent.proc.log_text()
    for lid in ("AGENT-SCHEMA-CHANGED", "AGENT-TRIGGERS-REINSTALLED",
                "AGENT-SWEEP"):
        check(lid in text, "the agent log shows " + lid)
    swept = sum(int(n) for n in re.findall(r"AGENT-SWEEP.*?queued (\d+)",
                                           text))
    check(swept >= 150, "the sweeps queued the %d rows written without "
          "triggers" % swept)
    unfit_phase(env, pg, hub, agent)
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")


bstest.run(main)
