"""test_tills: two tills (POS files) of one branch, each with its own key.

Branch JKT-01 runs Counter PC 1 and Counter PC 2: two POS files with their
own autoincrement ids, two agents, two till keys ("till add"). The center's
up tables have a till_column in their primary key (text for transactions
and transaction_items: the till code; integer for payments: the till id),
so both tills write transactions 1..N and every row arrives, none
overwritten. Each till has its own status row, status line, JSON object
and metrics, and the branch shows their sum. A till's key works for no
other till; a payload naming the till column is refused. A per-branch
price reaches both tills. A conflict on a till table is resolved into
that till's row.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire as W  # noqa: E402
from bstest import check, check_eq  # noqa: E402

BRANCH = "JKT-01"
TILLS = ("pc1", "pc2")
N = 40  # transactions per till, ids 1..N in both files
LOG = "b" * 32

# The till becomes part of the center's keys: a text column for the
# transactions and their items (the till code), an integer one for the
# payments (the till id of "till list").
CENTER_SQL = """
ALTER TABLE public.transaction_items
  DROP CONSTRAINT transaction_items_branch_id_transaction_id_fkey;
ALTER TABLE public.payments
  DROP CONSTRAINT payments_branch_id_transaction_id_fkey;
ALTER TABLE public.transactions ADD COLUMN till text NOT NULL DEFAULT '',
  DROP CONSTRAINT transactions_pkey, ADD PRIMARY KEY (branch_id, till, id);
ALTER TABLE public.transaction_items
  ADD COLUMN till text NOT NULL DEFAULT '',
  DROP CONSTRAINT transaction_items_pkey,
  ADD PRIMARY KEY (branch_id, till, id),
  ADD FOREIGN KEY (branch_id, till, transaction_id)
    REFERENCES public.transactions (branch_id, till, id)
    DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE public.payments ADD COLUMN till integer NOT NULL DEFAULT 0,
  DROP CONSTRAINT payments_pkey,
  ADD PRIMARY KEY (branch_id, till, transaction_id, line_no);
"""


def till_add(hub, till):
    r = hub.cli("till", "add", BRANCH, till)
    check(r.returncode == 0, "till add %s" % till, r.stderr)
    key = r.stdout.strip()
    check(len(key) == 64, "till add %s printed a key" % till, r.stdout)
    return key


def write_sales(db, till_no):
    """Transactions 1..N, one item and one payment each; the amounts say
    which till wrote them (till_no * 100000 + id)."""
    c = bstest.sqlite_connect(db)
    for i in range(1, N + 1):
        v = till_no * 100000 + i
        c.execute("INSERT INTO transactions(id, total_cost, customer_name)"
                  " VALUES (?, ?, ?)", (i, v, "till %d" % till_no))
        c.execute("INSERT INTO transaction_items(id, transaction_id, "
                  "product_id, qty, price, subtotal) VALUES (?, ?, 1, 1, "
                  "?, ?)", (i, i, v, v))
        c.execute("INSERT INTO payments(transaction_id, line_no, method, "
                  "amount) VALUES (?, 1, 'cash', ?)", (i, v))
        c.commit()
    c.close()


def check_center(pg, bid, till_ids):
    rows = pg.psql("SELECT till, count(*), min(total_cost), max(total_cost),"
                   " count(*) FILTER (WHERE total_cost <> (CASE till WHEN "
                   "'pc1' THEN 100000 ELSE 200000 END) + id) FROM "
                   "public.transactions WHERE branch_id = %s GROUP BY till "
                   "ORDER BY till", (bid,))
    check_eq([tuple(r) for r in rows],
             [("pc1", N, 100001, 100000 + N, 0),
              ("pc2", N, 200001, 200000 + N, 0)],
             "both tills' transactions 1..%d arrived, none overwritten" % N)
    rows = pg.psql("SELECT till, count(*), sum(subtotal) FROM "
                   "public.transaction_items WHERE branch_id = %s GROUP BY "
                   "till ORDER BY till", (bid,))
    check_eq([tuple(r) for r in rows],
             [("pc1", N, sum(100000 + i for i in range(1, N + 1))),
              ("pc2", N, sum(200000 + i for i in range(1, N + 1)))],
             "both tills' items arrived under their own till")
    rows = pg.psql("SELECT till, count(*), min(amount) FROM public.payments "
                   "WHERE branch_id = %s GROUP BY till ORDER BY till",
                   (bid,))
    want = sorted([(till_ids["pc1"], N, 100001), (till_ids["pc2"], N,
                                                  200001)])
    check_eq([tuple(r) for r in rows], want,
             "payments carry the till id in the integer till column")


def check_status(hub, pg, bid, till_ids):
    rows = pg.psql("SELECT till_id, applied_total, queue_events FROM "
                   "branchsync.branch_status WHERE branch_id = %s "
                   "ORDER BY till_id", (bid,))
    check_eq([tuple(r) for r in rows],
             sorted([(till_ids[t], 3 * N, 0) for t in TILLS]),
             "one status row per till, each with its own applied count")
    j = hub.status_json()
    b = [x for x in j["branches"] if x["code"] == BRANCH][0]
    check_eq(b["applied_total"], 6 * N, "the branch line sums its tills")
    check_eq([(t["code"], t["applied_total"], t["state"])
              for t in b["tills"]],
             [("pc1", 3 * N, "ok"), ("pc2", 3 * N, "ok")],
             "hub status --json lists each till with its own counts")
    other = [x for x in j["branches"] if x["code"] == "solo"][0]
    check("tills" not in other, "a branch without tills has no tills key")
    out = hub.status()
    check("JKT-01/pc1" in out and "JKT-01/pc2" in out,
          "hub status shows a line per till", out)
    prom = bstest.parse_prom(hub.http_get("/metrics")[2])
    for t in TILLS:
        got = prom.get(("branchsync_till_applied_events_total",
                        '{branch="%s",till="%s"}' % (BRANCH, t)))
        check_eq(got, float(3 * N), "metrics: applied events of till %s"
                 % t)
    check_eq(prom.get(("branchsync_branch_applied_events_total",
                       '{branch="%s"}' % BRANCH)), float(6 * N),
             "metrics: the branch's applied events are its tills' sum")


def check_identity(hub, pg, keys):
    raw = bstest.binary("bs-rawclient")
    t, body = W.request(raw, hub.url, W.hello(BRANCH, keys["pc1"], LOG,
                                              till="pc2", version="t"))
    check_eq((t, body.get("code")), (W.ERROR, W.E_AUTH),
             "pc1's key with till code pc2 is refused")
    t, body = W.request(raw, hub.url, W.hello(BRANCH, keys["pc1"], LOG,
                                              version="t"))
    check_eq((t, body.get("code")), (W.ERROR, W.E_AUTH),
             "a till's key without its till code is refused")
    t, body = W.request(raw, hub.url, W.hello("solo", keys["pc1"], LOG,
                                              till="pc1", version="t"))
    check_eq((t, body.get("code")), (W.ERROR, W.E_AUTH),
             "a till's key under another branch is refused")
    before = pg.psql("SELECT count(*) FROM public.payments")[0][0]
    t, body = W.request(raw, hub.url, W.push(
        BRANCH, keys["pc1"], LOG,
        [("payments", ["transaction_id", "line_no", "till", "method",
                       "amount"], 2)],
        [(1, 1, 0, W.OP_UPSERT, [990001, 1, 7, "cash", 5])], till="pc1"))
    check("set by the hub" in str(body),
          "a payload naming the till column is refused", body)
    check_eq(pg.psql("SELECT count(*) FROM public.payments")[0][0], before,
             "nothing applied from a payload naming the till column")


def check_conflict(hub, pg, bid, agent):
    """transactions is insert_only: a till's update of its transaction 1
    is a conflict; keep_local writes it back into that till's row, not
    another till's nor a row without till."""
    c = bstest.sqlite_connect(agent.db)
    c.execute("UPDATE transactions SET total_cost = 555 WHERE id = 1")
    c.close()
    agent.wait_drained(hub=hub)
    rows = pg.psql("SELECT id, local_row->>'till' FROM branchsync.conflict "
                   "WHERE branch_id = %s AND type = 'data_mismatch'",
                   (bid,))
    check_eq([r[1] for r in rows], [agent.name], "the conflict's local row "
             "names the till that sent it")
    r = hub.cli("conflicts", "resolve", str(rows[0][0]), "keep_local",
                "--by", "tester")
    check(r.returncode == 0, "conflicts resolve keep_local on a till "
          "table", r.stderr)
    got = pg.psql("SELECT till, total_cost FROM public.transactions WHERE "
                  "branch_id = %s AND id = 1 ORDER BY till", (bid,))
    check_eq([tuple(x) for x in got], [("pc1", 555), ("pc2", 200001)],
             "keep_local wrote pc1's transaction 1 and left pc2's as it "
             "was")


def main(env):
    pg, hub = bstest.down_center(env, start=False, tables={
        "transactions": {"till_column": "till", "conflict": "insert_only"},
        "transaction_items": {"till_column": "till"},
        "payments": {"till_column": "till"}})
    pg.psql(CENTER_SQL)
    hub.start()
    hub.branch_add(BRANCH)
    bid = hub.branch_id(BRANCH)
    solo = hub.branch_add("solo")
    keys = {t: till_add(hub, t) for t in TILLS}
    r = hub.cli("till", "list", BRANCH)
    check(r.returncode == 0 and r.stdout.count("branch=JKT-01 till=") == 2,
          "till list shows both tills", r.stdout)
    till_ids = {}
    for line in r.stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split())
        till_ids[f["till"]] = int(f["id"])
    bstest.seed_products(pg, 1, 20)
    bstest.seed_branch_rows(pg, "branch_prices", bid, 1, 20, 1000)

    agents = []
    for n, t in enumerate(TILLS, 1):
        a = env.agent(t, BRANCH, keys[t], hub.url, till=t,
                      nudge=hub.publish_url,
                      down_tables=list(bstest.DOWN_TABLES))
        a.init()
        write_sales(a.db, n)
        agents.append(a)
    for a in agents:
        a.start()
    for a in agents:
        a.wait_drained(hub=hub)
    check_center(pg, bid, till_ids)
    check_status(hub, pg, bid, till_ids)
    check_identity(hub, pg, keys)
    check_conflict(hub, pg, bid, agents[0])
    for a in agents:
        check_eq(a.status_json()["till"], a.name, "branchsync-agent status "
                 "names the till")

    # Master data of the branch reaches every till of it.
    for a in agents:
        bstest.wait_down_converged(a, pg, bid, ["branch_prices"],
                                   timeout=30, alive=[hub.proc])
    pg.psql("UPDATE public.branch_prices SET price = 4242 WHERE branch_id ="
            " %s AND product_id = 7", (bid,))
    for a in agents:
        bstest.wait_until(lambda: bstest.sqlite_one(
            a.db, "SELECT price FROM branch_prices WHERE product_id = 7")
            == (4242,), 20, "new price of product 7 at till %s" % a.name,
            alive=[a.proc, hub.proc])

    # The branch's own key keeps working for an agent without a till.
    raw = bstest.binary("bs-rawclient")
    t, _ = W.request(raw, hub.url, W.hello("solo", solo, LOG, 0))
    check_eq(t, W.WELCOME, "a branch key without till still works")
    r = hub.cli("till", "disable", BRANCH, "pc2")
    check(r.returncode == 0, "till disable", r.stderr)
    t, body = W.request(raw, hub.url, W.hello(BRANCH, keys["pc2"], LOG,
                                              till="pc2", version="t"))
    check("disabled" in str(body), "a disabled till is refused", body)
    for a in agents:
        check_eq(a.stop(), 0, "%s exits 0 on SIGTERM" % a.name)
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
