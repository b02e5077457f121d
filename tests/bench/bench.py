"""bench: branchsync's upstream throughput and POS latency, run by hand.

    ./tests/run.sh                       # builds build/ (RelWithDebInfo)
    /usr/bin/python3 tests/bench/bench.py [--events 100000] [--branches 10]
        [--many-events N] [--shape retail|sales12] [--drain-only]

Everything runs on this machine: a PostgreSQL started with its default,
durable settings (fsync on, synchronous_commit on), one hub with
--workers threads, and one agent per branch, each on its own POS file.

It prints, as "figure: value" lines:
  1. drain throughput, events/s, of a backlog of --events events for one
     branch, then of --branches branches at once, each with that backlog;
     with the CPU seconds per event of the agents, the hub and
     PostgreSQL (from /proc) and the agents' peak RSS;
  2. PostgreSQL's own ceiling for the same rows: COPY into the same
     tables, and COPY into a staging table then INSERT ... ON CONFLICT, in
     --batch-events transactions (the way an apply has to), so the drain
     figures can be read against it as a share;
  3. with --profile, where the one-branch drain's time went: PostgreSQL
     per statement kind, and the gaps between one batch's COMMIT and the
     next BEGIN (time spent outside PostgreSQL);
  4. POS write latency (p50/p99) of a single-row commit without and with
     the capture triggers at synchronous=FULL and NORMAL, the trigger's
     cost per captured row in 100-row transactions, and the p99 while an
     agent drains a backlog from the same file.
--shape picks the rows: "retail" is the example POS (transactions, items
and payments, with updates and deletes); "sales12" is one 12-column sales
table, as many POS apps have: a uuid text key, a 150-byte text, integers
and an ISO timestamp, written in WAL mode at synchronous=FULL.
Every load is bounded by its event count; nothing loops for ever.
"""
import argparse
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bsproc import cpu_s, pg_cpu_s  # noqa: E402

TABLES = bstest.UPSTREAM_TABLES
NICE = 10
OPTS = None

# The sales12 shape: POS table, and its center table (branch_id first).
SALES12_POS = """
CREATE TABLE sales12 (
    id          TEXT PRIMARY KEY,
    till        INTEGER NOT NULL,
    receipt_no  INTEGER NOT NULL,
    cashier_id  INTEGER NOT NULL,
    customer_id INTEGER,
    item_count  INTEGER NOT NULL,
    total_cents INTEGER NOT NULL,
    tax_cents   INTEGER NOT NULL,
    discount    INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    note        TEXT,
    created_at  TEXT NOT NULL,
    is_synced   INTEGER NOT NULL DEFAULT 0
);
"""
SALES12_CENTER = """
CREATE TABLE IF NOT EXISTS public.sales12 (
    branch_id   integer NOT NULL,
    id          text    NOT NULL,
    till        bigint  NOT NULL,
    receipt_no  bigint  NOT NULL,
    cashier_id  bigint  NOT NULL,
    customer_id bigint,
    item_count  bigint  NOT NULL,
    total_cents bigint  NOT NULL,
    tax_cents   bigint  NOT NULL,
    discount    bigint  NOT NULL,
    status      bigint  NOT NULL,
    note        text,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (branch_id, id)
);
"""


def figure(name, value):
    print("figure: %s: %s" % (name, value), flush=True)


def pending(db):
    return bstest.log_state(db)["pending"]


def acked_seq(db):
    c = bstest.sqlite_connect(db)
    try:
        row = c.execute("SELECT value FROM _branchsync_meta"
                        " WHERE name = 'acked_seq'").fetchone()
    finally:
        c.close()
    return int(row[0] or 0) if row else 0


def sales12_rows(n, seed):
    """n sales12 rows (all columns but is_synced), deterministic."""
    import random
    import uuid
    rng = random.Random(seed)
    note = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ")
                   for _ in range(150))
    t0 = 1796000000
    for i in range(n):
        total = rng.randrange(100, 50000)
        yield (str(uuid.UUID(int=rng.getrandbits(128), version=4)),
               1 + i % 4, 100000 + i, rng.randrange(1, 40),
               rng.randrange(1, 5000) if rng.random() < 0.6 else None,
               rng.randrange(1, 30), total, total // 8,
               rng.randrange(0, 500), 1, note,
               time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i))
               + ".%03dZ" % (i % 1000))


def sales12_backlog(path, events):
    """Sales written as a till writes them, one sale per commit, in WAL
    mode at synchronous=FULL, through the capture triggers."""
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    ins = ("INSERT INTO sales12 (id, till, receipt_no, cashier_id, "
           "customer_id, item_count, total_cents, tax_cents, discount, "
           "status, note, created_at) VALUES (%s)" % ", ".join("?" * 12))
    # One commit per sale is what a till does; at FULL each costs an
    # fsync, so the backlog is written in 100-sale commits to save time
    # here (the log and the rows are the same either way).
    rows = sales12_rows(events, 1000)
    for i in range(0, events, 100):
        c.execute("BEGIN")
        c.executemany(ins, (next(rows) for _ in range(min(100, events - i))))
        c.execute("COMMIT")
    c.close()
    return events


def make_backlog(env, events, name="backlog"):
    """A POS file whose log holds about `events` pending events, with
    the capture triggers installed; written as a POS would, no agent."""
    path = os.path.join(env.dir, name + ".db")
    bstest.create_pos(path)
    if OPTS.shape == "sales12":
        # The example tables stay, unconfigured: tests/bench/pos_latency
        # writes them while an agent drains.
        c = sqlite3.connect(path)
        c.executescript(SALES12_POS)
        c.close()
    proto = bstest.Agent(env, "proto-" + name, "none", "00",
                         "tcp://127.0.0.1:1", db=path, tables=TABLES)
    proto.init("--wal")
    if OPTS.shape == "sales12":
        t0 = time.monotonic()
        sales12_backlog(path, events)
        figure("backlog", "%d sales12 events, written in %.1f s"
               % (pending(path), time.monotonic() - t0))
        return path
    sales = 0
    t0 = time.monotonic()
    while pending(path) < events:
        n = max(100, (events - pending(path)) // 5)
        bstest.possim_run(path, sales=n, seed=1000 + sales,
                          update_fraction=0.1, delete_fraction=0.02,
                          synchronous="OFF")
        sales += n
    figure("backlog", "%d events from %d sales, written in %.1f s"
           % (pending(path), sales, time.monotonic() - t0))
    return path


def rss_parts_kb(pid):
    """(RssAnon, RssFile) of a running process in KiB, or (0, 0)."""
    parts = {"RssAnon:": 0, "RssFile:": 0}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k = line.split(":")[0] + ":"
                if k in parts:
                    parts[k] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return parts["RssAnon:"], parts["RssFile:"]


def drain(env, pg, hub, backlog, nbranches, tag):
    """Copies the backlog to nbranches POS files, starts their agents at
    once and times until every log is empty. Returns events/s."""
    agents = []
    for i in range(nbranches):
        code = "%s%d" % (tag, i)
        key = hub.branch_add(code)
        db = os.path.join(env.dir, "%s.db" % code)
        shutil.copy(backlog, db)
        agents.append(env.agent(code, code, key, hub.url, db=db,
                                log_level="warning", tables=TABLES,
                                max_batch_events=OPTS.batch_events))
    total = sum(pending(a.db) for a in agents)
    high = {a.db: bstest.log_state(a.db)["high_seq"] for a in agents}
    hub_cpu0, pg_cpu0 = cpu_s(hub.proc.p.pid), pg_cpu_s(pg)
    t0 = time.monotonic()
    for a in agents:
        a.start()
    perf = None
    if OPTS.perf and nbranches == 1:
        # perf's own start-up is not in the drain's time, only its CPU.
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-F", "1999", "--call-graph", "dwarf,16384", "-o", OPTS.perf,
             "-p", ",".join(str(a.proc.p.pid) for a in agents)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    left = list(agents)
    anon = filed = 0
    while left:
        for a in left:
            ra, rf = rss_parts_kb(a.proc.p.pid)
            anon, filed = max(anon, ra), max(filed, rf)
        # Only the acked seq: counting the log each poll would take a
        # good part of this machine's two cores from agent and hub.
        left = [a for a in left if acked_seq(a.db) < high[a.db]]
        if not all(a.alive() for a in agents) or time.monotonic() - t0 > 900:
            bstest.check(all(a.alive() for a in agents), "agents alive")
            bstest.check(False, "drain within 900 s")
        time.sleep(0.02)
    dt = time.monotonic() - t0
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait(60)
    agent_cpu = sum(cpu_s(a.proc.p.pid) for a in agents)
    hub_cpu = cpu_s(hub.proc.p.pid) - hub_cpu0
    pg_cpu = pg_cpu_s(pg) - pg_cpu0
    rss = max(a.proc.peak_rss_kb() or 0 for a in agents)
    for a in agents:
        a.stop()
        bstest.check(pending(a.db) == 0, "%s: log drained" % a.branch)
    what = "%d branch%s" % (nbranches, "es" if nbranches > 1 else "")
    figure("drain %s" % what, "%d events in %.2f s = %.0f events/s"
           % (total, dt, total / dt))
    figure("CPU per event, drain %s" % what,
           "agent %.1f us, hub %.1f us, PostgreSQL %.1f us "
           "(CPU s: agents %.2f, hub %.2f, PostgreSQL %.2f)"
           % (1e6 * agent_cpu / total, 1e6 * hub_cpu / total,
              1e6 * pg_cpu / total, agent_cpu, hub_cpu, pg_cpu))
    figure("agent peak RSS, drain %s" % what, "%.1f MB%s; sampled "
           "peaks: %.1f MB anonymous, %.1f MB of mapped files"
           % (rss / 1024, " (the largest of the agents)"
              if nbranches > 1 else "", anon / 1024, filed / 1024))
    return total / dt


def pg_profile(pg):
    """With --profile: PostgreSQL logged every statement of the one-branch
    drain (log_min_duration_statement = 0). Prints the time the hub's
    sessions spent in PostgreSQL per statement kind, and the gaps between
    one batch's COMMIT and the next BEGIN: the time a branch's batches
    wait on anything but PostgreSQL (ACK to the agent, its next read,
    the request, decoding, authentication)."""
    import collections
    import datetime
    import re
    line_re = re.compile(r"(\S+ \S+) UTC \[\d+\] LOG:  duration: "
                         r"([0-9.]+) ms\s+(statement|execute|bind|parse)"
                         r"[^:]*: (.*)")
    spent = collections.defaultdict(float)
    # One branch: its batches go to any of the hub's workers, one at a
    # time, so the next BEGIN after a COMMIT is its next batch.
    gaps, last_commit = [], None
    with open(pg.logpath, errors="replace") as f:
        for line in f:
            m = line_re.match(line)
            if not m:
                continue
            end = datetime.datetime.strptime(
                m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp() * 1000
            ms, sql = float(m.group(2)), m.group(4).strip()
            spent[" ".join(sql.split()[:3])[:60]] += ms
            if sql == "COMMIT":
                last_commit = end
            elif sql == "BEGIN" and last_commit is not None:
                gaps.append(end - ms - last_commit)
                last_commit = None
    total = sum(spent.values())
    figure("profile: PostgreSQL time", "%.0f ms in all" % total)
    for k, v in sorted(spent.items(), key=lambda kv: -kv[1])[:6]:
        figure("profile:   %s" % k, "%.0f ms" % v)
    if gaps:
        gaps.sort()
        figure("profile: between COMMIT and the next BEGIN",
               "%d gaps, median %.1f ms, max %.1f ms, %.0f ms in all"
               % (len(gaps), gaps[len(gaps) // 2], gaps[-1], sum(gaps)))


def copy_ceiling(pg, backlog):
    """COPY of the backlog's rows into the same center tables, as one
    branch id that no agent uses: PostgreSQL's own ceiling here."""
    src = sqlite3.connect(backlog)
    conn = pg.connect()
    cur = conn.cursor()
    rows = 0
    bufs = {}
    for t in TABLES:
        cols = [r[1] for r in src.execute("PRAGMA table_info(%s)" % t)
                if r[1] != "is_synced"]
        buf = io.StringIO()
        for row in src.execute("SELECT %s FROM %s" % (", ".join(cols), t)):
            buf.write("999\t" + "\t".join(
                "\\N" if v is None else str(v) for v in row) + "\n")
            rows += 1
        bufs[t] = (cols, buf)
    t0 = time.monotonic()
    for t, (cols, buf) in bufs.items():
        buf.seek(0)
        cur.copy_expert("COPY %s (branch_id, %s) FROM STDIN"
                        % (t, ", ".join(cols)), buf)
    conn.commit()
    dt = time.monotonic() - t0
    figure("postgres COPY ceiling", "%d rows in %.2f s = %.0f rows/s"
           % (rows, dt, rows / dt))
    conn.close()
    src.close()


def staging_ceiling(pg, backlog):
    """What an apply can reach at best: each --batch-events rows COPYed
    into a temporary staging table, then INSERT ... ON CONFLICT DO UPDATE
    into the center table, one transaction per batch, as branch 998.
    Returns rows/s."""
    src = sqlite3.connect(backlog)
    conn = pg.connect()
    conn.autocommit = False  # COPY and INSERT: one transaction per batch
    cur = conn.cursor()
    n = OPTS.batch_events
    chunks = []
    rows = 0
    for t in TABLES:
        cols = [r[1] for r in src.execute("PRAGMA table_info(%s)" % t)
                if r[1] != "is_synced"]
        keys = [r[1] for r in src.execute("PRAGMA table_info(%s)" % t)
                if r[5] > 0]
        sel = src.execute("SELECT %s FROM %s" % (", ".join(cols), t))
        while True:
            part = sel.fetchmany(n)
            if not part:
                break
            buf = io.StringIO()
            for row in part:
                buf.write("998\t" + "\t".join(
                    "\\N" if v is None else str(v) for v in row) + "\n")
            rows += len(part)
            chunks.append((t, cols, keys, buf))
    for t in TABLES:
        cur.execute("CREATE TEMP TABLE stage_%s (LIKE %s) "
                    "ON COMMIT DELETE ROWS" % (t, t))
    conn.commit()
    t0 = time.monotonic()
    for t, cols, keys, buf in chunks:
        allc = ["branch_id"] + cols
        buf.seek(0)
        cur.copy_expert("COPY stage_%s (%s) FROM STDIN"
                        % (t, ", ".join(allc)), buf)
        cur.execute("INSERT INTO %s (%s) SELECT %s FROM stage_%s "
                    "ON CONFLICT (branch_id, %s) DO UPDATE SET %s"
                    % (t, ", ".join(allc), ", ".join(allc), t,
                       ", ".join(keys),
                       ", ".join("%s = excluded.%s" % (c, c)
                                 for c in cols if c not in keys)))
        conn.commit()
    dt = time.monotonic() - t0
    got = 0
    for t in TABLES:
        cur.execute("SELECT count(*) FROM %s WHERE branch_id = 998" % t)
        got += cur.fetchone()[0]
    bstest.check(got == rows, "staging ceiling: %d of %d rows at the "
                 "center" % (got, rows))
    figure("postgres staging ceiling",
           "%d rows in %.2f s = %.0f rows/s (COPY into a staging table, "
           "then INSERT ... ON CONFLICT, %d rows per transaction)"
           % (rows, dt, rows / dt, n))
    conn.close()
    src.close()
    return rows / dt


def latency(db, commits, sync, batch=1, pause_us=0):
    """Runs tests/bench/pos_latency; returns its key=value output."""
    exe = os.path.join(bstest.BUILD_DIR, "tests", "bench", "pos_latency")
    out = subprocess.run([exe, db, str(commits), sync, str(batch),
                          str(pause_us)],
                         check=True, capture_output=True, text=True).stdout
    return dict(kv.split("=") for kv in out.split())


def pos_file(env, name, triggers):
    path = os.path.join(env.dir, name + ".db")
    bstest.create_pos(path)
    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.close()
    if triggers:
        bstest.Agent(env, name, "none", "00", "tcp://127.0.0.1:1",
                     db=path).init()
    return path


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def pos_latency(env, rounds=5):
    """Single-row commits without and with capture, in alternating rounds
    on two files, so disk noise and run order hit both alike; medians of
    the rounds' p50, p99 and mean."""
    for sync, commits in (("FULL", 1000), ("NORMAL", 10000)):
        dbs = {t: pos_file(env, "lat-%s-%d" % (sync, t), t)
               for t in (False, True)}
        res = {False: [], True: []}
        for _ in range(rounds):
            for trig in (False, True):
                res[trig].append(latency(dbs[trig], commits, sync))
        fig = {}
        for trig in (False, True):
            fig[trig] = {k: median(float(r[k]) for r in res[trig])
                         for k in ("p50_us", "p99_us", "mean_us")}
            figure("POS commit %s %s triggers" % (sync, "with" if trig
                                                  else "without"),
                   "p50 %.1f us, p99 %.1f us, mean %.1f us"
                   % (fig[trig]["p50_us"], fig[trig]["p99_us"],
                      fig[trig]["mean_us"]))
        for k in ("p50_us", "mean_us"):
            d = fig[True][k] - fig[False][k]
            figure("capture cost %s single-row commit, %s" % (sync, k[:-3]),
                   "+%.1f us (%+.0f%%)" % (d, 100 * d / fig[False][k]))
    per = {}
    for trig in (False, True):
        db = pos_file(env, "rows-%d" % trig, trig)
        per[trig] = median(float(latency(db, 300, "NORMAL", 100)
                                 ["per_row_us"]) for _ in range(3))
    figure("capture cost per row, 100-row transactions, NORMAL",
           "%.2f -> %.2f us = +%.2f us" % (per[0], per[1], per[1] - per[0]))


def latency_while_draining(env, pg, hub, backlog, sync, run=0, own=True):
    """p99 of POS commits on a file while its agent drains a backlog from
    it (own), or, as a control, while another branch's agent drains and
    only the disk and CPU are shared; against the same file idle."""
    code = "lat%s%d%s" % (sync, run, "" if own else "x")
    key = hub.branch_add(code)
    db = os.path.join(env.dir, code + ".db")
    shutil.copy(backlog, db)
    pos = db
    if not own:
        pos = os.path.join(env.dir, code + "-pos.db")
        shutil.copy(backlog, pos)
    a = env.agent(code, code, key, hub.url, db=db, tables=TABLES,
                  log_level="warning", max_batch_events=OPTS.batch_events)
    # A commit every millisecond, like a busy till, spread over the drain.
    idle = latency(pos, 1500, sync, 1, 1000)
    a.start()
    os.setpriority(os.PRIO_PROCESS, a.proc.p.pid, NICE)
    t0 = time.monotonic()
    busy = latency(pos, 1500, sync, 1, 1000)
    during = pending(db) > 0
    a.wait_drained(timeout=600, hub=hub)
    a.stop()
    ratio = float(busy["p99_us"]) / float(idle["p99_us"])
    figure("POS commit %s while %s agent drains" % (sync, "its" if own
                                                     else "another"),
           "idle p50 %s / p99 %s us; draining p50 %s / p99 %s us "
           "(%.1fx idle p99), drain took %.1f s%s"
           % (idle["p50_us"], idle["p99_us"], busy["p50_us"],
              busy["p99_us"], float(busy["p99_us"]) / float(idle["p99_us"]),
              time.monotonic() - t0,
              "" if during else " [drain ended before the run]"))
    return ratio


def main(env):
    figure("machine", "%d cores, %s" % (os.cpu_count(),
                                        os.uname().release))
    if not OPTS.drain_only:
        pos_latency(env)
    pg = env.postgres(durable=True)
    hub = env.hub(pg, workers=OPTS.workers, tables=TABLES,
                  log_level=os.environ.get("BS_BENCH_HUB_LOG", "warning"))
    if OPTS.shape == "sales12":
        pg.psql(SALES12_CENTER)
    bstest.setup_center(pg, hub)
    hub.start()
    backlog = make_backlog(env, OPTS.events)
    if OPTS.profile:
        pg.psql("ALTER SYSTEM SET log_min_duration_statement = 0")
        pg.psql("SELECT pg_reload_conf()")
    one = drain(env, pg, hub, backlog, 1, "one")
    if OPTS.profile:
        pg.psql("ALTER SYSTEM RESET log_min_duration_statement")
        pg.psql("SELECT pg_reload_conf()")
        pg_profile(pg)
    many = None
    if OPTS.branches > 1:
        small = backlog
        if OPTS.many_events != OPTS.events:
            small = make_backlog(env, OPTS.many_events, "backlog-many")
        many = drain(env, pg, hub, small, OPTS.branches, "many")
    copy_ceiling(pg, backlog)
    ceiling = staging_ceiling(pg, backlog)
    figure("drain 1 branch / staging ceiling", "%.0f%%"
           % (100 * one / ceiling))
    if many is not None:
        figure("drain %d branches / staging ceiling" % OPTS.branches,
               "%.0f%%" % (100 * many / ceiling))
    hub.stop()
    if OPTS.drain_only:
        return
    # POS latency while draining: PostgreSQL's fsyncs on this machine's one
    # disk would slow a FULL POS commit even with no agent on its file (the
    # control run shows it), so here a durable PostgreSQL on tmpfs stands in
    # for the one in the datacenter.
    # On a branch PC the agent runs below the POS (Nice=10 in its unit);
    # hub and PostgreSQL, here only for want of a datacenter, get the same.
    pg = env.postgres(durable=True, base="/dev/shm")
    os.setpriority(os.PRIO_PROCESS, pg.postmaster_pid(), NICE)
    hub = env.hub(pg, name="hub2", workers=OPTS.workers, tables=TABLES,
                  log_level="warning")
    if OPTS.shape == "sales12":
        pg.psql(SALES12_CENTER)
    bstest.setup_center(pg, hub)
    hub.start()
    os.setpriority(os.PRIO_PROCESS, hub.proc.p.pid, NICE)
    for sync in ("FULL", "NORMAL"):
        own, other = [], []
        for run in range(OPTS.rounds):
            own.append(latency_while_draining(env, pg, hub, backlog, sync,
                                              run))
            other.append(latency_while_draining(env, pg, hub, backlog,
                                                sync, run, False))
        figure("POS p99 while draining / idle p99, %s, median of %d"
               % (sync, OPTS.rounds),
               "its agent %.1fx; control, another agent %.1fx"
               % (median(own), median(other)))
    hub.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100000,
                    help="backlog per branch (default 100000)")
    ap.add_argument("--branches", type=int, default=10,
                    help="branches draining at once (default 10)")
    ap.add_argument("--many-events", type=int,
                    help="backlog per branch of the --branches drain "
                    "(default: --events)")
    ap.add_argument("--workers", type=int, default=4,
                    help="hub worker contexts (default 4)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of the latency-while-draining runs")
    ap.add_argument("--batch-events", type=int, default=2000,
                    help="agent max_batch_events (default 2000)")
    ap.add_argument("--drain-only", action="store_true",
                    help="only the drain and COPY figures")
    ap.add_argument("--perf", metavar="FILE",
                    help="perf record the agent of the one-branch drain "
                    "into FILE")
    ap.add_argument("--shape", choices=("retail", "sales12"),
                    default="retail",
                    help="the rows: the example POS (default) or one "
                    "12-column sales table")
    ap.add_argument("--profile", action="store_true",
                    help="log PostgreSQL's statements during the one-branch "
                    "drain and print where its time went")
    OPTS = ap.parse_args()
    if OPTS.many_events is None:
        OPTS.many_events = OPTS.events
    if OPTS.shape == "sales12":
        TABLES = ("sales12",)
    bstest.run(main, "bench")
