"""bench: branchsync's upstream throughput and POS latency, run by hand.

    ./tests/run.sh                       # builds build/ (RelWithDebInfo)
    /usr/bin/python3 tests/bench/bench.py [--events 100000] [--branches 10]

Everything runs on this machine: a PostgreSQL started with its default,
durable settings (fsync on, synchronous_commit on), one hub with
--workers threads, and one agent per branch, each on its own POS file.

It prints, as "figure: value" lines:
  1. drain throughput, events/s, of a backlog of --events events for one
     branch, then of --branches branches at once, each with that backlog;
  2. PostgreSQL's own ceiling: COPY of the same rows into the same tables
     (rows/s), so the drain figure can be read against it;
  3. POS write latency (p50/p99) of a single-row commit without and with
     the capture triggers at synchronous=FULL and NORMAL, the trigger's
     cost per captured row in 100-row transactions, and the p99 while an
     agent drains a backlog from the same file.
Every load is bounded by its event count; nothing loops for ever.
"""
import argparse
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402

TABLES = bstest.UPSTREAM_TABLES
OPTS = None


def figure(name, value):
    print("figure: %s: %s" % (name, value), flush=True)


def pending(db):
    return bstest.log_state(db)["pending"]


def make_backlog(env, events):
    """A POS file whose log holds about `events` pending events, with
    the capture triggers installed; written as a POS would, no agent."""
    path = os.path.join(env.dir, "backlog.db")
    bstest.create_pos(path)
    proto = bstest.Agent(env, "proto", "none", "00", "tcp://127.0.0.1:1",
                         db=path)
    proto.init("--wal")
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


def drain(env, pg, hub, backlog, nbranches, tag):
    """Copies the backlog to nbranches POS files, starts their agents at
    once and times until every log is empty."""
    agents = []
    for i in range(nbranches):
        code = "%s%d" % (tag, i)
        key = hub.branch_add(code)
        db = os.path.join(env.dir, "%s.db" % code)
        shutil.copy(backlog, db)
        agents.append(env.agent(code, code, key, hub.url, db=db,
                                log_level="warning",
                                batch_max_events=OPTS.batch_events))
    total = sum(pending(a.db) for a in agents)
    t0 = time.monotonic()
    for a in agents:
        a.start()
    left = list(agents)
    while left:
        left = [a for a in left if pending(a.db) > 0]
        bstest.check(all(a.alive() for a in agents), "agents alive")
        bstest.check(time.monotonic() - t0 < 900, "drain within 900 s")
        time.sleep(0.02)
    dt = time.monotonic() - t0
    for a in agents:
        a.stop()
    figure("drain %d branch%s" % (nbranches, "es" if nbranches > 1 else ""),
           "%d events in %.2f s = %.0f events/s"
           % (total, dt, total / dt))
    return agents


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


def latency(db, commits, sync, batch=1):
    """Runs tests/bench/pos_latency; returns its key=value output."""
    exe = os.path.join(bstest.BUILD_DIR, "tests", "bench", "pos_latency")
    out = subprocess.run([exe, db, str(commits), sync, str(batch)],
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


def pos_latency(env):
    for sync, commits in (("FULL", 2000), ("NORMAL", 20000)):
        res = {}
        for trig in (False, True):
            db = pos_file(env, "lat-%s-%d" % (sync, trig), trig)
            res[trig] = latency(db, commits, sync)
        for trig in (False, True):
            figure("POS commit %s %s triggers" % (sync, "with" if trig
                                                  else "without"),
                   "p50 %s us, p99 %s us, mean %s us"
                   % (res[trig]["p50_us"], res[trig]["p99_us"],
                      res[trig]["mean_us"]))
        p50 = [float(res[t]["p50_us"]) for t in (False, True)]
        figure("capture cost %s single-row commit" % sync,
               "+%.1f us at p50 (+%.0f%%)"
               % (p50[1] - p50[0], 100 * (p50[1] - p50[0]) / p50[0]))
    per = {}
    for trig in (False, True):
        db = pos_file(env, "rows-%d" % trig, trig)
        per[trig] = float(latency(db, 500, "NORMAL", 100)["per_row_us"])
    figure("capture cost per row, 100-row transactions, NORMAL",
           "%.2f -> %.2f us = +%.2f us" % (per[0], per[1], per[1] - per[0]))


def latency_while_draining(env, pg, hub, backlog, sync):
    """p99 of POS commits on a file while its agent drains a backlog,
    against the same file idle."""
    key = hub.branch_add("lat" + sync)
    db = os.path.join(env.dir, "lat-drain-%s.db" % sync)
    shutil.copy(backlog, db)
    a = env.agent("lat" + sync, "lat" + sync, key, hub.url, db=db,
                  log_level="warning", batch_max_events=OPTS.batch_events)
    idle = latency(db, 1000, sync)
    a.start()
    t0 = time.monotonic()
    busy = latency(db, 1000, sync)
    during = pending(db) > 0
    a.wait_drained(timeout=600, hub=hub)
    a.stop()
    figure("POS commit %s while draining" % sync,
           "idle p50 %s / p99 %s us; draining p50 %s / p99 %s us "
           "(%.1fx idle p99)%s" % (idle["p50_us"], idle["p99_us"],
                                   busy["p50_us"], busy["p99_us"],
                                   float(busy["p99_us"])
                                   / float(idle["p99_us"]),
                                   "" if during else
                                   " [drain ended before the run]"))
    bstest.log("latency run took %.1f s" % (time.monotonic() - t0))


def main(env):
    figure("machine", "%d cores, %s" % (os.cpu_count(),
                                        os.uname().release))
    pos_latency(env)
    pg = env.postgres(durable=True)
    hub = env.hub(pg, workers=OPTS.workers, log_level="warning")
    bstest.setup_center(pg, hub)
    hub.start()
    backlog = make_backlog(env, OPTS.events)
    drain(env, pg, hub, backlog, 1, "one")
    if OPTS.branches > 1:
        drain(env, pg, hub, backlog, OPTS.branches, "many")
    copy_ceiling(pg, backlog)
    for sync in ("FULL", "NORMAL"):
        latency_while_draining(env, pg, hub, backlog, sync)
    hub.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100000,
                    help="backlog per branch (default 100000)")
    ap.add_argument("--branches", type=int, default=10,
                    help="branches draining at once (default 10)")
    ap.add_argument("--workers", type=int, default=4,
                    help="hub worker contexts (default 4)")
    ap.add_argument("--batch-events", type=int, default=2000,
                    help="agent batch_max_events (default 2000)")
    OPTS = ap.parse_args()
    bstest.run(main, "bench")
