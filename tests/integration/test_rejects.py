"""test_rejects: an event the hub cannot apply is set aside, visible at
both ends, and an operator can retry or discard it (issue 4, rejects).

The center gets a CHECK constraint (transactions.total_cost < 1,000,000)
so that one sale in the middle of a batch fails:
1. isolation: the sales written before and after the bad one (same PUSH)
   apply; the bad transaction is recorded in branchsync.reject (branch,
   seq, table, key, row, reason naming the constraint), its items and
   payment are rejected with 'depends on rejected event seq N (table
   "transactions", key [ID])'; at the branch the entries carry err, the
   rows keep is_synced = 0, `branchsync-agent rejects list --json` shows
   them; every is_synced = 1 row is at the center (invariant 8);
2. hub retry: drop the constraint, `branchsync-hub rejects retry --branch`
   -> the hub publishes an "r:b1" nudge, the agent (heartbeat 10 min)
   says HELLO at once, learns the retry from the WELCOME, sends the
   events again, they apply once; rejects 'resolved' by 'retry';
3. agent retry: a new bad sale, fix, `branchsync-agent rejects retry
   --all` while the agent runs -> applied once, hub rejects resolved;
4. hub discard: `branchsync-hub rejects discard ID... --by tester` ->
   state discarded, resolved_by tester; the agent drops its entries (told
   by a nudge too), the rows stay is_synced = 0 and never reach the
   center;
5. agent discard: `branchsync-agent rejects discard --all`;
6. an unknown reject id: exit 1 with an error;
7. without nudges (agent restarted with no `nudge`, heartbeat 1 s), a
   hub retry still reaches the agent, with its next heartbeat HELLO.
At the end every POS row except the discarded sales is at the center once
with equal values, and the central stock matches.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402

LIMIT = "ALTER TABLE public.transactions ADD CONSTRAINT bs_total_limit " \
    "CHECK (total_cost < 1000000) NOT VALID"
UNLIMIT = "ALTER TABLE public.transactions DROP CONSTRAINT bs_total_limit"




def hub_rejects(pg, tid=None):
    """[(id, seq, tbl, key, state, attempts, reason, resolved_by)] of
    branch b1, by seq; only those of sale tid when given."""
    rows = pg.psql(
        "SELECT r.id, r.seq, r.tbl, r.key, r.state, r.attempts, r.reason, "
        "r.resolved_by, r.row FROM branchsync.reject r ORDER BY r.seq")
    out = []
    for r in rows:
        row = r[8] or {}
        t = row.get("id") if r[2] == "transactions" else \
            row.get("transaction_id")
        if tid is None or t == tid:
            out.append(r[:8])
    return out


def pos_rejects(db):
    return bstest.sqlite_one(db, "SELECT count(*) FROM _branchsync_log "
                                 "WHERE err IS NOT NULL")[0]


def synced(db, tid):
    return bstest.sqlite_one(db, "SELECT is_synced FROM transactions WHERE "
                                 "id = ?", (tid,))[0]


def at_center(pg, bid, tid):
    return pg.psql("SELECT (SELECT count(*) FROM public.transactions WHERE "
                   "branch_id = %s AND id = %s), (SELECT count(*) FROM "
                   "public.transaction_items WHERE branch_id = %s AND "
                   "transaction_id = %s), (SELECT count(*) FROM "
                   "public.payments WHERE branch_id = %s AND transaction_id "
                   "= %s)", (bid, tid) * 3)[0]


def wait_rejected(agent, hub, n, what):
    bstest.wait_until(lambda: agent.state()["pending"] == 0
                      and pos_rejects(agent.db) == n, 60, what,
                      interval=0.1, alive=[agent.proc, hub.proc])


def check_sale_rejected(env, pg, hub, agent, bid, tid, what):
    rj = hub_rejects(pg, tid)
    check_eq([(r[2], r[4]) for r in rj],
             [("transactions", "open"), ("transaction_items", "open"),
              ("transaction_items", "open"), ("payments", "open")],
             "%s: the hub recorded the transaction, its 2 items and its "
             "payment as open rejects" % what)
    parent = rj[0]
    check("bs_total_limit" in parent[6], "%s: the reason names the "
          "constraint" % what, parent[6])
    check_eq(parent[3], [tid], "%s: the reject's key is [%d]" % (what, tid))
    want = 'depends on rejected event seq %d (table "transactions", key ' \
        '[%d])' % (parent[1], tid)
    for r in rj[1:]:
        check(r[6].startswith(want), "%s: %s seq %d is rejected naming its "
              "parent" % (what, r[2], r[1]), r[6])
    check_eq(at_center(pg, bid, tid), (0, 0, 0), "%s: nothing of sale %d "
             "at the center" % (what, tid))
    check_eq(synced(agent.db, tid), 0, "%s: the POS row keeps is_synced = 0"
             % what)
    r = agent.cli("rejects", "list", "--json")
    check_eq(r.returncode, 0, "%s: agent rejects list exits 0" % what)
    local = [x for x in json.loads(r.stdout) if x["seq"] in
             {p[1] for p in rj}]
    check_eq(len(local), 4, "%s: agent rejects list shows the 4 events"
             % what)
    check(all(x["reason"] for x in local), "%s: each with its reason" % what)
    bstest.check_synced_rows(agent.db, pg, bid)
    return rj


def check_sale_applied(pg, agent, bid, tid, what):
    check_eq(at_center(pg, bid, tid), (1, 2, 1), "%s: sale %d at the center "
             "once (transaction, 2 items, payment)" % (what, tid))
    check_eq(synced(agent.db, tid), 1, "%s: the POS row is_synced = 1" % what)


def hub_retry(pg, hub, agent, bid, tid, what):
    """Lifts the limit, retries b1's rejects at the hub and waits until
    sale tid is applied once and no reject is left at either end."""
    pg.psql(UNLIMIT)
    t0 = time.monotonic()
    r = hub.cli("rejects", "retry", "--branch", "b1")
    check_eq(r.returncode, 0, "%s: branchsync-hub rejects retry --branch "
             "exits 0" % what)
    bstest.wait_until(lambda: all(x[4] == "resolved" for x in
                                  hub_rejects(pg, tid))
                      and pos_rejects(agent.db) == 0, 60,
                      "%s to apply" % what, interval=0.05,
                      alive=[agent.proc, hub.proc])
    bstest.log("%s: applied %.2f s after the command started"
               % (what, time.monotonic() - t0))
    check_sale_applied(pg, agent, bid, tid, what)


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, publish=True)
    bstest.setup_center(pg, hub)
    pg.psql(LIMIT)
    key = hub.branch_add("b1")
    bid = hub.branch_id("b1")
    # Only a nudge can bring the hub's retries and discards within the
    # waits below: the heartbeat HELLO is 10 minutes away.
    agent = env.agent("pos", "b1", key, hub.url, heartbeat_ms=600000,
                      nudge=hub.publish_url)
    agent.init()

    # 1. a bad sale between good ones, all in one PUSH
    possim.sales(agent.db, 20, 1)
    a = possim.big_sale(agent.db)
    possim.sales(agent.db, 20, 2)
    hub.start()
    agent.start()
    wait_rejected(agent, hub, 4, "the agent to record 4 rejects")
    for t in bstest.UPSTREAM_TABLES:
        n_pos = bstest.sqlite_one(agent.db, "SELECT count(*) FROM %s" % t)[0]
        n_pg = pg.psql("SELECT count(*) FROM public.%s WHERE branch_id = %%s"
                       % t, (bid,))[0][0]
        check_eq(n_pg, n_pos - (1 if t != "transaction_items" else 2),
                 "isolation: %s: every row but the bad sale's applied" % t)
    rj = check_sale_rejected(env, pg, hub, agent, bid, a, "reject")
    r = hub.cli("rejects", "list", "--branch", "b1")
    check_eq(r.returncode, 0, "branchsync-hub rejects list exits 0")
    check_eq(len([ln for ln in r.stdout.splitlines()
                  if "b1" in ln]), 4, "rejects list shows 4 open rejects")

    # 2. fix at the center, retry from the hub
    hub_retry(pg, hub, agent, bid, a, "hub retry")
    check(all(x[7] == "retry" for x in hub_rejects(pg, a)),
          "hub retry: rejects resolved by 'retry'")
    check_eq(len(hub_rejects(pg, a)), 4, "hub retry: still one reject row "
             "per event (updated, not duplicated)")

    # 3. agent-side retry
    pg.psql(LIMIT)
    b = possim.big_sale(agent.db, 6000000)
    possim.sales(agent.db, 5, 3)
    wait_rejected(agent, hub, 4, "the second bad sale to be rejected")
    check_sale_rejected(env, pg, hub, agent, bid, b, "reject 2")
    pg.psql(UNLIMIT)
    r = agent.cli("rejects", "retry", "--all")
    check_eq(r.returncode, 0, "branchsync-agent rejects retry --all exits 0 "
             "while the agent runs")
    bstest.wait_until(lambda: pos_rejects(agent.db) == 0
                      and synced(agent.db, b) == 1, 60,
                      "the agent-side retry to apply", interval=0.2,
                      alive=[agent.proc, hub.proc])
    check_sale_applied(pg, agent, bid, b, "agent retry")
    bstest.wait_until(lambda: all(x[4] == "resolved" for x in
                                  hub_rejects(pg, b)), 10,
                      "the hub to mark the retried rejects resolved")
    bstest.log("ok: agent retry: the hub's rejects are resolved")

    # 4. discard at the hub
    pg.psql(LIMIT)
    c = possim.big_sale(agent.db, 7000000)
    wait_rejected(agent, hub, 4, "the third bad sale to be rejected")
    ids = [str(x[0]) for x in hub_rejects(pg, c)]
    r = hub.cli("rejects", "discard", *ids, "--by", "tester")
    check_eq(r.returncode, 0, "branchsync-hub rejects discard ID... exits 0")
    check(all(x[4] == "discarded" and x[7] == "tester"
              for x in hub_rejects(pg, c)),
          "hub discard: state discarded, resolved_by tester")
    bstest.wait_until(lambda: pos_rejects(agent.db) == 0, 30,
                      "the agent to drop the discarded entries",
                      interval=0.2, alive=[agent.proc, hub.proc])
    check_eq(synced(agent.db, c), 0, "hub discard: the POS row stays "
             "is_synced = 0")
    check_eq(at_center(pg, bid, c), (0, 0, 0), "hub discard: nothing at "
             "the center")

    # 5. discard at the agent
    d = possim.big_sale(agent.db, 8000000)
    wait_rejected(agent, hub, 4, "the fourth bad sale to be rejected")
    r = agent.cli("rejects", "discard", "--all")
    check_eq(r.returncode, 0, "branchsync-agent rejects discard --all exits "
             "0")
    check_eq(pos_rejects(agent.db), 0, "agent discard: no rejected entries "
             "left")
    check_eq(synced(agent.db, d), 0, "agent discard: the POS row stays "
             "is_synced = 0")

    # 6. unknown id
    r = hub.cli("rejects", "retry", "999999")
    check(r.returncode == 1 and r.stderr.strip(), "rejects retry of an "
          "unknown id exits 1 with an error", r.stderr.strip())

    # 7. no nudges: the heartbeat HELLO brings a hub retry.
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    del agent.settings["nudge"]
    agent.write_config(heartbeat_ms=1000)
    agent.start()
    e = possim.big_sale(agent.db, 9000000)
    wait_rejected(agent, hub, 4, "the fifth bad sale to be rejected")
    hub_retry(pg, hub, agent, bid, e, "hub retry, no nudges")

    # Everything else once, equal, at the center.
    possim.sales(agent.db, 10, 4)
    agent.wait_drained(timeout=60, hub=hub)
    bstest.wait_until(lambda: agent.state()["pending"] == 0, 30, "drain")
    keys = set()
    cn = bstest.sqlite_connect(agent.db)
    try:
        for (tid,) in cn.execute("SELECT id FROM transactions WHERE id NOT "
                                 "IN (?, ?)", (c, d)):
            keys.add(("transactions", (tid,)))
        for (iid,) in cn.execute("SELECT id FROM transaction_items WHERE "
                                 "transaction_id NOT IN (?, ?)", (c, d)):
            keys.add(("transaction_items", (iid,)))
        for (tid, ln) in cn.execute("SELECT transaction_id, line_no FROM "
                                    "payments WHERE transaction_id NOT IN "
                                    "(?, ?)", (c, d)):
            keys.add(("payments", (tid, ln)))
    finally:
        cn.close()
    bstest.compare_keys(agent.db, pg, bid, keys)
    for t in bstest.UPSTREAM_TABLES:
        dups = pg.psql("SELECT count(*) - count(DISTINCT %s) FROM public.%s "
                       "WHERE branch_id = %%s" % (
                           "(transaction_id, line_no)" if t == "payments"
                           else "id", t), (bid,))[0][0]
        check_eq(dups, 0, "%s: no key twice at the center" % t)
    bstest.check_synced_rows(agent.db, pg, bid)
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")
    bstest.log("first reject: %r" % (rj[0],))


bstest.run(main)
