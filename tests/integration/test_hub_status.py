"""test_hub_status: operators see every branch (issue 5): the
"branchsync-hub status [--json]" command and the hub's branch logs.

A real hub (behind_events 200, behind_seconds 3600, silent_seconds 600)
and real agents:
1. b-ok is registered but never seen: status exits 2 and says "never";
   once its agent (a few sales) has drained it is "ok" and status exits 0
   with the summary "1 branch: 1 ok, ..."; --json is the /api/status
   object (hub thresholds, the branch's counters and agent version).
2. b-never, registered and never seen: exit 2; disabled it is "disabled"
   and does not count (exit 0); enabled again it counts.
3. b-silent: an agent syncs a few sales and stops (HUB-BRANCH-DISCONNECT);
   its last_seen is moved an hour back: "silent".
4. b-slow: an agent with max_batch_events = 2 and over a thousand events
   waiting: the hub logs HUB-BRANCH-BEHIND when it first reports; the
   agent is frozen (SIGSTOP) while its reported queue is over the
   threshold: status shows it "behind" and the summary "4 branches: 1 ok,
   1 behind, 1 silent, 1 never seen", exit 2. Thawed, it drains in
   hundreds of batches and the hub logs HUB-BRANCH-CAUGHT-UP once.
5. b-err: a raw HELLO, then a PUSH with a repeated seq (refused after
   authentication): last_error and last_error_at are set, shown in the
   LAST_ERROR column and in --json.
6. Logs: per agent connection exactly one HUB-BRANCH-CONNECT (branch,
   peer address, agent version) and, once it stopped, one
   HUB-BRANCH-DISCONNECT; one BEHIND and one CAUGHT-UP for b-slow, none
   for the others; no line per batch.
7. PostgreSQL unreachable: exit 1 with an error; "--json" with another
   command is a usage error.
"""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire as W  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402

BEHIND = 200
STATUS_KEYS = {"code", "enabled", "state", "last_seen", "queue_events",
               "queue_bytes", "oldest_age_s", "agent_version",
               "applied_total", "rejected_total", "conflict_total",
               "open_rejects", "open_conflicts", "last_error",
               "last_error_at", "last_pull"}



def status(hub, *args):
    """(exit code, stdout, stderr) of branchsync-hub status."""
    r = hub.cli("status", *args)
    return r.returncode, r.stdout, r.stderr


COLUMNS = ["BRANCH", "STATE", "QUEUE", "AGE", "LAST_SEEN", "REJECTS",
           "CONFLICTS", "VERSION", "LAST_ERROR"]


def rows(out):
    """{code: {column: text}} of the branch lines, cut at the positions
    of the column header line (so values must be aligned under it)."""
    lines = out.splitlines()
    head = [ln for ln in lines if ln.split()[:1] == ["BRANCH"]]
    check(len(head) == 1 and head[0].split() == COLUMNS,
          "one column header line", out)
    starts = [head[0].index(c) for c in COLUMNS]
    found = {}
    for line in lines[lines.index(head[0]) + 1:]:
        if not line.startswith("b-"):
            continue
        cut = [line[a:b].strip() for a, b in
               zip(starts, starts[1:] + [None])]
        check(all(line[a - 1] == " " for a in starts[1:] if a < len(line)),
              "values are aligned under the column headers", line)
        found[cut[0]] = dict(zip(COLUMNS, cut))
    return found


def summary(out):
    lines = [ln for ln in out.splitlines() if re.match(r"^\d+ branch", ln)]
    return lines[-1] if lines else ""


def reported(pg, code):
    """(queue_events, last_seen is set) of a branch as the hub recorded."""
    r = pg.psql("SELECT s.queue_events, s.last_seen IS NOT NULL FROM "
                "branchsync.branch_status s JOIN branchsync.branch b ON "
                "b.id = s.branch_id WHERE b.code = %s", (code,))
    return r[0] if r else (None, False)


def count(log, code, branch):
    """Lines of log with ID code about branch (named "branch=CODE")."""
    who = re.compile(r"\bbranch=%s(\s|$)" % re.escape(branch))
    return len([ln for ln in log.splitlines()
                if code in ln and who.search(ln)])


def check_json(hub):
    rc, out, err = status(hub, "--json")
    try:
        st = json.loads(out)
    except ValueError as e:
        raise bstest.Failure("status --json is not JSON (%s): %r"
                             % (e, out[:500]))
    check(isinstance(st.get("branches"), list) and "hub" in st,
          "status --json parses: {hub, branches}")
    return rc, st, {b["code"]: b for b in st["branches"]}


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, behind_events=BEHIND, behind_seconds=3600,
                  silent_seconds=600)
    bstest.setup_center(pg, hub)
    k_ok = hub.branch_add("b-ok")
    hub.start()

    # 1. never seen, then ok.
    rc, out, err = status(hub)
    check_eq(rc, 2, "status exits 2 while b-ok was never seen")
    check_eq(rows(out)["b-ok"]["STATE"], "never", "b-ok is never seen")
    check_eq(summary(out), "1 branch: 0 ok, 0 behind, 0 silent, "
             "1 never seen", "summary line with a never-seen branch")

    a_ok = env.agent("pos-ok", "b-ok", k_ok, hub.url, heartbeat_ms=1000)
    a_ok.init()
    possim.sales(a_ok.db, 10, seed=1)
    a_ok.start()
    a_ok.wait_drained(hub=hub)
    bstest.wait_until(lambda: reported(pg, "b-ok")[0] == 0, 15,
                      "the hub to record b-ok's empty queue",
                      alive=[a_ok.proc, hub.proc])
    rc, out, err = status(hub)
    check_eq(rc, 0, "status exits 0 when every branch is ok")
    bstest.log(out)
    lines = out.splitlines()
    check(len(lines) >= 4 and "behind_events 200" in lines[0]
          and "behind_seconds 3600" in lines[0]
          and "silent_seconds 600" in lines[0],
          "header line names the thresholds", lines[0] if lines else out)
    f = rows(out)["b-ok"]
    check(f["STATE"] == "ok" and f["QUEUE"] == "0" and f["AGE"] == "0 s"
          and f["REJECTS"] == "0" and f["CONFLICTS"] == "0"
          and f["VERSION"] not in ("", "-") and f["LAST_ERROR"] == "-"
          and re.match(r"^\d+ s ago$", f["LAST_SEEN"]),
          "b-ok line: ok, queue 0, seen seconds ago, version", f)
    check_eq(summary(out), "1 branch: 1 ok, 0 behind, 0 silent, "
             "0 never seen", "summary line")

    rc, st, by = check_json(hub)
    check_eq(rc, 0, "status --json exits 0 too")
    h = st["hub"]
    check_eq((h.get("behind_events"), h.get("behind_seconds"),
              h.get("silent_seconds")), (BEHIND, 3600, 600),
             "--json hub thresholds")
    check(isinstance(h.get("version"), str) and isinstance(h.get("now"),
                                                          int),
          "--json hub version and now", h)
    b = by["b-ok"]
    check(STATUS_KEYS <= set(b), "--json branch has every key",
          sorted(STATUS_KEYS - set(b)))
    check(b["state"] == "ok" and b["enabled"] is True
          and b["queue_events"] == 0 and b["applied_total"] > 0
          and b["agent_version"] and b["last_error"] is None
          and abs(b["last_seen"] - h["now"]) < 60,
          "--json b-ok: ok, queue 0, applied, agent version, seen", b)

    # 2. never seen; disabled does not count.
    hub.branch_add("b-never")
    rc, out, err = status(hub)
    check_eq(rc, 2, "a never-seen branch makes status exit 2")
    check_eq(rows(out)["b-never"]["STATE"], "never",
             "b-never line says never")
    pg.psql("UPDATE branchsync.branch SET enabled = false "
            "WHERE code = 'b-never'")
    rc, out, err = status(hub)
    check_eq(rc, 0, "a disabled branch does not count")
    check_eq(rows(out)["b-never"]["STATE"], "disabled",
             "b-never is disabled")
    rc, st, by = check_json(hub)
    check_eq((by["b-never"]["state"], by["b-never"]["enabled"]),
             ("disabled", False), "--json: b-never disabled")
    pg.psql("UPDATE branchsync.branch SET enabled = true "
            "WHERE code = 'b-never'")

    # 3. silent: seen, then nothing for longer than silent_seconds.
    k_silent = hub.branch_add("b-silent")
    a_silent = env.agent("pos-silent", "b-silent", k_silent, hub.url)
    a_silent.init()
    possim.sales(a_silent.db, 5, seed=2)
    a_silent.start()
    a_silent.wait_drained(hub=hub)
    check_eq(a_silent.stop(), 0, "b-silent's agent stops")
    bstest.wait_until(lambda: count(hub.proc.log_text(),
                                    "HUB-BRANCH-DISCONNECT", "b-silent"),
                      15, "HUB-BRANCH-DISCONNECT of b-silent",
                      alive=[hub.proc])
    pg.psql("UPDATE branchsync.branch_status SET last_seen = now() - "
            "interval '1 hour' WHERE branch_id = (SELECT id FROM "
            "branchsync.branch WHERE code = 'b-silent')")

    # 4. behind: a big backlog sent two events at a time.
    k_slow = hub.branch_add("b-slow")
    a_slow = env.agent("pos-slow", "b-slow", k_slow, hub.url,
                       max_batch_events=2, heartbeat_ms=1000)
    a_slow.init()
    possim.sales(a_slow.db, 300, seed=3)
    total = a_slow.state()["pending"]
    check(total > 3 * BEHIND, "b-slow has %d events waiting" % total)
    a_slow.start()
    bstest.wait_until(lambda: (reported(pg, "b-slow")[0] or 0) >= BEHIND,
                      30, "b-slow to report a queue over behind_events",
                      interval=0.02, alive=[a_slow.proc, hub.proc])
    os.kill(a_slow.proc.p.pid, signal.SIGSTOP)
    try:
        # A PUSH sent just before the stop may still be applied: wait
        # until the recorded queue holds still.
        seen = [reported(pg, "b-slow")[0]]

        def settled():
            time.sleep(0.3)
            seen.append(reported(pg, "b-slow")[0])
            return seen[-1] == seen[-2]
        bstest.wait_until(settled, 15, "b-slow's recorded queue to settle",
                          interval=0, alive=[hub.proc])
        queue = seen[-1]
        check(queue >= BEHIND, "b-slow frozen with %d events reported"
              % queue)
        rc, out, err = status(hub)
        bstest.log(out)
        check_eq(rc, 2, "status exits 2 with a branch behind")
        r = rows(out)
        check_eq({c: r[c]["STATE"] for c in r},
                 {"b-ok": "ok", "b-never": "never", "b-silent": "silent",
                  "b-slow": "behind"}, "every branch's state")
        check_eq(r["b-slow"]["QUEUE"], str(queue), "b-slow's QUEUE column")
        check_eq((r["b-never"]["QUEUE"], r["b-never"]["LAST_SEEN"]),
                 ("-", "never"), "b-never's QUEUE and LAST_SEEN columns")
        check_eq(r["b-silent"]["LAST_SEEN"], "60 min ago",
                 "b-silent's LAST_SEEN column")
        check_eq(summary(out), "4 branches: 1 ok, 1 behind, 1 silent, "
                 "1 never seen", "summary line")
        rc, st, by = check_json(hub)
        check_eq(rc, 2, "status --json exits 2 too")
        check_eq({c: by[c]["state"] for c in by},
                 {"b-ok": "ok", "b-never": "never", "b-silent": "silent",
                  "b-slow": "behind"}, "--json states")
        check(by["b-never"]["last_seen"] is None
              and by["b-never"]["queue_events"] is None,
              "--json: never seen means null last_seen and queue",
              by["b-never"])
    finally:
        os.kill(a_slow.proc.p.pid, signal.SIGCONT)
    a_slow.wait_drained(hub=hub, timeout=300)
    bstest.wait_until(lambda: reported(pg, "b-slow")[0] == 0, 15,
                      "the hub to record b-slow's empty queue",
                      alive=[a_slow.proc, hub.proc])
    wm = hub.watermarks("b-slow")
    check(len(wm) == 1 and wm[0][1] >= total,
          "b-slow drained %d events in at least %d batches"
          % (total, total // 2), wm)

    # 5. a PUSH refused after authentication is recorded as last_error.
    k_err = hub.branch_add("b-err")
    raw = bstest.binary("bs-rawclient")
    log_id = "e" * 32
    t, body = W.request(raw, hub.url, W.hello("b-err", k_err, log_id, 0))
    check_eq(t, W.WELCOME, "raw HELLO of b-err")
    tables = [("payments", ["transaction_id", "line_no", "method",
                            "amount"], 2)]
    ev = (1, 1, 0, W.OP_UPSERT, [1, 1, "cash", 1])
    t, body = W.request(raw, hub.url, W.push("b-err", k_err, log_id, tables,
                                             [ev, ev]))
    check_eq((t, body.get("code")), (W.ERROR, W.E_PROTO),
             "a PUSH with a repeated seq is refused")
    rc, st, by = check_json(hub)
    e = by["b-err"]
    check(e["last_error"] and "could not apply batch" in e["last_error"]
          and abs(e["last_error_at"] - st["hub"]["now"]) < 60,
          "--json: b-err has last_error and last_error_at", e)
    rc, out, err = status(hub)
    e = rows(out)["b-err"]["LAST_ERROR"]
    check(re.match(r"^\d+ s ago: could not apply batch", e),
          "LAST_ERROR column of b-err: age and text", e)

    # 6. the logs.
    check_eq(a_ok.stop(), 0, "b-ok's agent stops")
    check_eq(a_slow.stop(), 0, "b-slow's agent stops")
    for code in ("b-ok", "b-slow"):
        bstest.wait_until(lambda: count(hub.proc.log_text(),
                                        "HUB-BRANCH-DISCONNECT", code),
                          15, "HUB-BRANCH-DISCONNECT of " + code,
                          alive=[hub.proc])
    log = hub.proc.log_text()
    for code in ("b-ok", "b-silent", "b-slow"):
        check_eq(count(log, "HUB-BRANCH-CONNECT", code), 1,
                 "one HUB-BRANCH-CONNECT for " + code)
        check_eq(count(log, "HUB-BRANCH-DISCONNECT", code), 1,
                 "one HUB-BRANCH-DISCONNECT for " + code)
    conn = [ln for ln in log.splitlines() if "HUB-BRANCH-CONNECT" in ln
            and "branch=b-ok " in ln][0]
    check(re.search(r'branch=b-ok connected from 127\.0\.0\.1:\d+, '
                    r'agent \S+', conn), "CONNECT names the peer address "
          "and the agent version", conn)
    disc = [ln for ln in log.splitlines() if "HUB-BRANCH-DISCONNECT" in ln
            and "branch=b-ok " in ln][0]
    check(re.search(r'branch=b-ok from 127\.0\.0\.1:\d+ disconnected',
                    disc), "DISCONNECT names the peer address", disc)
    # The raw client's connections: one CONNECT and DISCONNECT each.
    check_eq(count(log, "HUB-BRANCH-CONNECT", "b-err"), 2,
             "b-err: one CONNECT per raw connection")
    check_eq(count(log, "HUB-BRANCH-CONNECT", "b-never"), 0,
             "no CONNECT for a branch that never connected")
    check_eq(count(log, "HUB-BRANCH-BEHIND", "b-slow"), 1,
             "one HUB-BRANCH-BEHIND for b-slow")
    check_eq(count(log, "HUB-BRANCH-CAUGHT-UP", "b-slow"), 1,
             "one HUB-BRANCH-CAUGHT-UP for b-slow")
    check(log.index("HUB-BRANCH-BEHIND") < log.index("HUB-BRANCH-CAUGHT-UP"),
          "BEHIND comes before CAUGHT-UP")
    behind = [ln for ln in log.splitlines() if "HUB-BRANCH-BEHIND" in ln][0]
    check("behind_events %d" % BEHIND in behind, "BEHIND names the "
          "threshold", behind)
    for code in ("b-ok", "b-silent", "b-err"):
        check_eq(count(log, "HUB-BRANCH-BEHIND", code)
                 + count(log, "HUB-BRANCH-CAUGHT-UP", code), 0,
                 "no behind transition for " + code)
    check("HUB-PUSH" not in log and len(log.splitlines()) < 100,
          "no log line per batch (%d lines for %d+ batches)"
          % (len(log.splitlines()), total // 2))

    # 7. could not run.
    bad = os.path.join(env.dir, "bad-hub.ini")
    with open(hub.ini) as f:
        text = f.read()
    with open(bad, "w") as f:
        f.write(re.sub(r"(?m)^postgres = .*$", "postgres = host=" +
                       os.path.join(env.dir, "nowhere") + " dbname=x "
                       "connect_timeout=2", text))
    r = bstest.run_cmd([bstest.binary("branchsync-hub"), "status", "-c",
                        bad])
    check(r.returncode == 1 and "error" in r.stderr and not r.stdout,
          "status exits 1 with an error when PostgreSQL is unreachable",
          r.stderr)
    r = hub.cli("migrate", "--json")
    check(r.returncode == 1 and "--json" in r.stderr,
          "--json with another command is a usage error", r.stderr)
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
