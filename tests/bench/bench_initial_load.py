"""bench_initial_load: queue and drain a POS's history, run by hand.

    /usr/bin/python3 tests/bench/bench_initial_load.py [--rows 500000]

A POS file holds --rows rows written before branchsync was installed
(a quarter sales, half items, a quarter payments), then:
  1. "init --wal --initial-load": time to queue every row, the process's peak
     RSS (ru_maxrss, i.e. VmHWM at exit);
  2. "run": time to drain them to the hub (durable PostgreSQL), the
     agent's VmHWM at the end, and the CPU seconds of agent, hub and
     PostgreSQL over the drain;
  3. every row set back to is_synced = 0 (not captured: is_synced is left
     out of the triggers), then "sweep": time and peak RSS to queue them
     again, and the drain of those;
  4. PostgreSQL's own ceiling: COPY of the same rows (bench.copy_ceiling).
Figures are printed as "figure: name: value" lines. Bounded by --rows.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bstest  # noqa: E402
from bsproc import cpu_s, pg_cpu_s  # noqa: E402
import bench  # noqa: E402

OPTS = None


def figure(name, value):
    print("figure: %s: %s" % (name, value), flush=True)


def fill(db, rows):
    """rows rows of history: n sales, 2n items, n payments."""
    n = rows // 4
    c = bstest.sqlite_connect(db)
    c.execute("BEGIN")
    c.execute("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM "
              "s WHERE i < ?) INSERT INTO transactions(id, store_id, "
              "user_id, total_cost, payment_type, payment_method, "
              "received_amount, change_amount, payment_status, created_at, "
              "updated_at, tax, is_synced) SELECT i, 1, i % 4 + 1, i % 5000 "
              "+ 100, 'sale', 'card', i % 5000 + 100, 0, 'paid', "
              "'2023-03-01 08:00:00', '2023-03-01 08:00:00', 7, i % 2 "
              "FROM s", (n,))
    c.execute("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM "
              "s WHERE i < ?) INSERT INTO transaction_items(transaction_id, "
              "product_id, product_name, qty, price, subtotal, is_synced) "
              "SELECT (i + 1) / 2, i % 20 + 1, 'Bread', 1, 249, 249, i % 2 "
              "FROM s", (2 * n,))
    c.execute("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM "
              "s WHERE i < ?) INSERT INTO payments(transaction_id, line_no, "
              "method, amount, is_synced) SELECT i, 1, 'card', i % 5000 + "
              "100, i % 2 FROM s", (n,))
    c.execute("COMMIT")
    c.close()
    return 4 * n


def timed_cli(agent, *args):
    """Runs the agent CLI; returns (seconds, peak RSS KiB, stdout)."""
    argv = [bstest.binary("branchsync-agent")] + list(args) + ["-c",
                                                               agent.ini]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.monotonic() - t0
    if status != 0:
        raise bstest.Failure("%s exited %d" % (" ".join(args), status))
    return dt, ru.ru_maxrss, out.strip()


def vmhwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return line.split()[1] + " KiB"
    return "?"


def drain(agent, hub, pg, rows, tag):
    """Runs the agent until its log is empty; figures: rate, the agent's
    VmHWM, and CPU seconds of agent, hub and PostgreSQL (bsproc.pg_cpu_s:
    its processes, and its children that exited)."""
    pg_before = pg_cpu_s(pg)
    hub_before = cpu_s(hub.proc.p.pid)
    t0 = time.monotonic()
    agent.start()
    agent.wait_drained(timeout=3600, hub=hub)
    dt = time.monotonic() - t0
    a_cpu = cpu_s(agent.proc.p.pid)
    h_cpu = cpu_s(hub.proc.p.pid) - hub_before
    p_cpu = pg_cpu_s(pg) - pg_before
    figure("%s: drain to the hub" % tag, "%d rows in %.1f s = %.0f rows/s, "
           "agent VmHWM %s" % (rows, dt, rows / dt, vmhwm(agent.proc.p.pid)))
    figure("%s: CPU seconds" % tag, "agent %.1f (%.1f us/row), hub %.1f "
           "(%.1f us/row), PostgreSQL %.1f (%.1f us/row)" % (
               a_cpu, 1e6 * a_cpu / rows, h_cpu, 1e6 * h_cpu / rows, p_cpu,
               1e6 * p_cpu / rows))
    agent.stop()


def main(env):
    figure("machine", "%d cores, %s" % (os.cpu_count(), os.uname().release))
    pg = env.postgres(durable=True)
    hub = env.hub(pg, log_level="warning")
    bstest.setup_center(pg, hub)
    hub.start()
    key = hub.branch_add("b1")
    agent = env.agent("pos", "b1", key, hub.url, log_level="notice")
    rows = fill(agent.db, OPTS.rows)
    # As docs/operations.md recommends for an existing POS: WAL.
    dt, rss, out = timed_cli(agent, "init", "--wal", "--initial-load")
    figure("init --initial-load", "%s in %.1f s = %.0f rows/s, peak RSS %d "
           "KiB" % (out.splitlines()[-1], dt, rows / dt, rss))
    drain(agent, hub, pg, rows, "initial load")
    c = bstest.sqlite_connect(agent.db)
    for t in bstest.UPSTREAM_TABLES:
        c.execute("UPDATE %s SET is_synced = 0" % t)
    c.close()
    dt, rss, out = timed_cli(agent, "sweep")
    figure("sweep", "%s in %.1f s = %.0f rows/s, peak RSS %d KiB"
           % (out.splitlines()[-1], dt, rows / dt, rss))
    drain(agent, hub, pg, rows, "sweep")
    bench.copy_ceiling(pg, agent.db)
    hub.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500000)
    OPTS = ap.parse_args()
    bstest.run(main, name="bench_initial_load")
