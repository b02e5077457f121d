"""bsinvariants: what must hold of a branch's replication at the end.

log_state reads the counts of a POS file's log (pending, rejected,
acked_seq, high_seq); check_all_synced, check_only_marker and
check_replicated check the end state after a full drain;
check_synced_rows the invariant that holds at any moment (every row with
is_synced = 1 is at the center). For the fault scenarios: check_invariants
(every row once with equal values, nothing applied twice, nothing lost,
stock = sales), tally (the lost and duplicated counts without failing)
and report (the RESULT line that tests/bench/soak.py reads).
"""

from bsbase import UPSTREAM_TABLES, Failure, check_eq, log
from bscheck import compare_table, pg_rows
from bsproc import wait_until
from bspos import (qi, sqlite_all, sqlite_columns, sqlite_connect,
                   sqlite_rows)


def log_state(path):
    """Counts in the POS file's log: pending (seq > acked_seq, err NULL),
    rejected, rows, high_seq, plus acked_seq and log_id from the meta."""
    c = sqlite_connect(path)
    try:
        c.execute("BEGIN")
        meta = dict(c.execute("SELECT name, value FROM _branchsync_meta"))
        acked = int(meta.get("acked_seq") or 0)
        rows, high = c.execute(
            "SELECT count(*), coalesce(max(seq), 0) FROM _branchsync_log"
        ).fetchone()
        pending = c.execute(
            "SELECT count(*) FROM _branchsync_log WHERE seq > ? "
            "AND err IS NULL", (acked,)).fetchone()[0]
        rejected = c.execute(
            "SELECT count(*) FROM _branchsync_log WHERE err IS NOT NULL"
        ).fetchone()[0]
        c.execute("COMMIT")
    finally:
        c.close()
    return {"acked_seq": acked, "high_seq": high, "rows": rows,
            "pending": pending, "rejected": rejected,
            "log_id": meta.get("log_id"), "meta": meta}


def check_all_synced(path, tables=UPSTREAM_TABLES):
    c = sqlite_connect(path)
    try:
        for t in tables:
            n = c.execute("SELECT count(*) FROM %s WHERE is_synced IS NOT 1"
                          % qi(t)).fetchone()[0]
            check_eq(n, 0, "%s: every POS row has is_synced = 1" % t)
    finally:
        c.close()


def check_only_marker(path, timeout=30):
    """After a full drain the log holds exactly the marker row: the last
    acknowledged entry, so max(seq) never goes back. The agent compacts
    its log once it has drained (or stops): this waits up to timeout s
    for that."""
    st = log_state(path)
    check_eq(st["pending"], 0, "no pending events in _branchsync_log")
    if st["rows"] > 1 and not st["rejected"]:
        try:
            st = wait_until(lambda: (lambda s: s if s["rows"] == 1
                                     else None)(log_state(path)),
                            timeout, "the drained log to be compacted")
        except Failure:
            st = log_state(path)
    if st["rejected"]:
        log("rejected entries: %r" % sqlite_all(
            path, "SELECT seq, tbl, op, k, err FROM _branchsync_log "
            "WHERE err IS NOT NULL ORDER BY seq LIMIT 20"))
    check_eq(st["rejected"], 0, "no rejected events in _branchsync_log")
    check_eq(st["rows"], 1, "_branchsync_log holds only the marker row")
    check_eq(st["high_seq"], st["acked_seq"],
             "the marker row is the last acknowledged seq")
    return st


def pending_keys(path):
    """{(table, key tuple)} of the log entries not yet acknowledged."""
    import json
    st = log_state(path)
    c = sqlite_connect(path)
    try:
        rows = c.execute("SELECT tbl, k FROM _branchsync_log WHERE seq > ?",
                         (st["acked_seq"],)).fetchall()
    finally:
        c.close()
    out = set()
    for tbl, k in rows:
        if isinstance(k, str) and k.startswith("["):
            out.add((tbl, tuple(json.loads(k))))
        else:
            out.add((tbl, (k,)))
    return out


def check_replicated(pg, hub, agent, tables=UPSTREAM_TABLES):
    """The end state after a full drain: every POS row at the center for
    this branch, column by column, once; every POS row is_synced = 1; the
    log holds only its marker; the hub's watermark for the current log_id
    is the agent's acked_seq."""
    bid = hub.branch_id(agent.branch)
    total = 0
    for t in tables:
        total += compare_table(agent.db, pg, t, bid)
    check_all_synced(agent.db, tables)
    st = check_only_marker(agent.db)
    wm = {lid: seq for lid, seq, _ in hub.watermarks(agent.branch)}
    check_eq(wm.get(st["log_id"]), st["acked_seq"],
             "hub watermark of the current log_id = agent acked_seq")
    return total


def hub_totals(pg, code):
    """(applied_total, rejected_total) of a branch in branch_status."""
    rows = pg.psql("SELECT s.applied_total, s.rejected_total FROM "
                   "branchsync.branch_status s JOIN branchsync.branch b ON "
                   "b.id = s.branch_id WHERE b.code = %s", (code,))
    return tuple(rows[0]) if rows else (0, 0)


def check_synced_rows(path, pg, branch_id, tables=UPSTREAM_TABLES):
    """Every POS row with is_synced = 1 is at the center with equal values
    (DESIGN invariant 8); holds at any moment, not only after a drain.
    Returns the number of rows checked."""
    n = 0
    for t in tables:
        cols = sqlite_columns(path, t)
        c = sqlite_connect(path)
        try:
            rows = [tuple(r) for r in c.execute(
                "SELECT %s FROM %s WHERE is_synced = 1" % (
                    ", ".join(map(qi, cols)), qi(t)))]
        finally:
            c.close()
        center = set(pg_rows(pg, t, cols, branch_id))
        missing = [r for r in rows if r not in center]
        if missing:
            raise Failure("%s: %d of %d rows with is_synced = 1 are not at "
                          "the center with equal values; first: %r"
                          % (t, len(missing), len(rows), missing[0]))
        n += len(rows)
    log("ok: %d rows with is_synced = 1 are at the center, equal" % n)
    return n


def check_stock(path, pg, branch_id):
    """The central stock moved by this branch's sales equals minus the sum
    of the POS's sale lines per product (no allocations were made, so
    stock_allocations.qty is exactly the sum of the deltas the
    transaction_items triggers applied). A line applied twice as an
    insert, or lost, would show here."""
    c = sqlite_connect(path)
    try:
        pos = {pid: -q for pid, q in c.execute(
            "SELECT product_id, sum(qty) FROM transaction_items "
            "GROUP BY product_id") if q}
    finally:
        c.close()
    center = {pid: int(q) for pid, q in pg.psql(
        "SELECT product_id, qty FROM public.stock_allocations WHERE "
        "branch_id = %s AND qty <> 0", (branch_id,))}
    check_eq(center, pos, "central stock = minus the POS's sold quantities "
             "per product")


def check_invariants(pg, hub, agents, base=None, stock=True):
    """The fault scenarios' invariant checker, after a full drain.

    For each agent (its POS file against PostgreSQL, branch from its
    credential):
    1. every POS row is at the center exactly once with equal values, no
       center row is extra, no key appears twice (compare_table);
    2. every POS row is_synced = 1 (after a drain; check_synced_rows is
       the form that holds at any time);
    3. the log holds only its marker and the hub's watermark for the
       current log_id equals the agent's acked_seq; order: the center's
       final row state equals the POS's for every key, which a reordered
       apply of two writes of one key would break;
    4. nothing applied twice: the hub counts applied_total (and
       rejected_total) in the same transaction that moves the watermark,
       only for events above the watermark it locked. The log's seqs are
       dense (AUTOINCREMENT; a rolled-back POS write rolls the counter
       back too), so for a log that started at seq base (acked_seq when
       the hub first saw it, 0 for a new POS file) the events are exactly
       base+1 .. high_seq, and applied_total + rejected_total must equal
       high_seq - base = watermark - base. Any event applied twice would
       make the total larger, any lost one smaller;
    5. central stock = minus the POS's sold quantities (check_stock).
    Returns {"events": total events, "rows": rows compared}.
    """
    base = base or {}
    events = rows = 0
    for a in agents:
        bid = hub.branch_id(a.branch)
        for t in UPSTREAM_TABLES:
            rows += compare_table(a.db, pg, t, bid)
        check_all_synced(a.db)
        st = check_only_marker(a.db)
        wm = {lid: seq for lid, seq, _ in hub.watermarks(a.branch)}
        check_eq(wm.get(st["log_id"]), st["acked_seq"],
                 "%s: hub watermark of the current log_id = agent "
                 "acked_seq" % a.name)
        check_eq(len(wm), 1, "%s: one log_id at the hub" % a.name)
        applied, rejected = hub_totals(pg, a.branch)
        b = base.get(a.name, 0)
        check_eq(applied + rejected, st["high_seq"] - b,
                 "%s: hub applied_total + rejected_total = events in the "
                 "log (high_seq %d - base %d): nothing applied twice, "
                 "nothing lost" % (a.name, st["high_seq"], b))
        if stock:
            check_stock(a.db, pg, bid)
        events += st["high_seq"] - b
    return {"events": events, "rows": rows}


def tally(pg, hub, agent, base=0):
    """Counts without failing, for the scenario reports: events (in the
    log), rows (POS rows of the upstream tables), lost (POS rows not at
    the center with equal values, plus events the hub never counted),
    duplicated (center rows beyond one per key, plus events the hub
    counted beyond the log)."""
    bid = hub.branch_id(agent.branch)
    st = log_state(agent.db)
    events = st["high_seq"] - base
    applied, rejected = hub_totals(pg, agent.branch)
    rows = lost = dup = 0
    for t in UPSTREAM_TABLES:
        cols = sqlite_columns(agent.db, t)
        a = sqlite_rows(agent.db, t, cols)
        b = pg_rows(pg, t, cols, bid)
        rows += len(a)
        bset = set(b)
        lost += sum(1 for r in a if r not in bset)
        dup += len(b) - len(bset)
    counted = applied + rejected
    lost += max(0, events - counted)
    dup += max(0, counted - events)
    return {"events": events, "rows": rows, "lost": lost,
            "duplicated": dup}


def report(scenario, **figures):
    """Prints the one line docs/reliability.md and tests/bench/soak.py
    read: RESULT scenario key=value ..."""
    log("RESULT %s %s" % (scenario, " ".join(
        "%s=%s" % kv for kv in figures.items())))
