"""test_hub_http: the hub's operator listener (issue 5): the page,
/metrics and the JSON API, on a real PostgreSQL with a real agent.

A hub (sample_interval_s 1) and one agent, b-http, that drains a few
sales; a reject and a conflict of b-http are written into PostgreSQL
directly (plus a resolved reject, which must not show):
1. GET / is text/html, the embedded page, with no http:// or https://
   URL in it (self-contained);
2. /metrics is Prometheus text 0.0.4 (every line a comment or a sample,
   promtool agrees when installed): the branch's queue_events equal to
   branch_status, applied_events_total > 0 once drained, the apply
   histogram's le="+Inf" bucket equal to _count and > 0, connected_agents
   >= 1 while the agent runs;
3. /api/status is JSON with Cache-Control: no-store and agrees with
   "branchsync-hub status --json" on branch codes and states;
4. /api/history gets points of b-http (one a second) and a total equal
   to the sum of the series at each time;
5. /api/rejects and /api/conflicts list the open ones with every field,
   newest first; ?branch=nope gives an empty list;
6. a POST or PUT is 405, an unknown path 404 with a short text body,
   hostile query strings (very long, %00, quotes, bad escapes) a clean
   400 or an empty list, and the hub still answers afterwards;
7. PostgreSQL stopped: /metrics still answers the hub's counters with
   branchsync_hub_postgres_up 0, /api/status 503 with the reason; started
   again, the listener reconnects and postgres_errors_total counted it;
8. http_listen = "": the hub runs without the listener; a taken port
   makes "run" exit 1 naming http_listen; a hub with sample_interval_s
   3600 still stops at once (the sampler waits on a condition).
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq, log  # noqa: E402

BRANCH = "b-http"


def request(port, method, path, body=None, timeout=10):
    """(status, {header: value} in lower case, body text) of one request;
    the path is sent as is."""
    c = http.client.HTTPConnection("127.0.0.1", port,
                                   timeout=bstest.scaled(timeout))
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, text
    finally:
        c.close()


def get_json(hub, path):
    code, hdrs, body = hub.http_get(path)
    check_eq(code, 200, "GET %s answers 200" % path)
    check(hdrs["content-type"].startswith("application/json")
          and hdrs.get("cache-control") == "no-store",
          "GET %s is JSON with Cache-Control: no-store" % path,
          dict(hdrs))
    return json.loads(body)


def metrics(hub):
    code, hdrs, body = hub.http_get("/metrics")
    check_eq(code, 200, "GET /metrics answers 200")
    check(hdrs["content-type"].startswith("text/plain; version=0.0.4"),
          "/metrics is Prometheus text 0.0.4", hdrs["content-type"])
    return body, bstest.parse_prom(body)


def reported(pg):
    r = pg.psql("SELECT s.queue_events FROM branchsync.branch_status s "
                "JOIN branchsync.branch b ON b.id = s.branch_id "
                "WHERE b.code = %s", (BRANCH,))
    return r[0][0] if r else None


def check_page(hub):
    code, hdrs, body = hub.http_get("/")
    check_eq(code, 200, "GET / answers 200")
    check(hdrs["content-type"].startswith("text/html"), "GET / is text/html",
          hdrs["content-type"])
    check("<html" in body.lower() and 'id="branches"' in body,
          "GET / is the operator page")
    urls = re.findall(r"https?://\S*", body)
    check_eq(urls, [], "the page names no http:// or https:// URL")


def check_metrics(hub, pg):
    body, m = metrics(hub)
    label = '{branch="%s"}' % BRANCH
    check_eq(m.get(("branchsync_branch_queue_events", label)),
             float(reported(pg)), "branch queue_events as in branch_status")
    check(m.get(("branchsync_branch_applied_events_total", label), 0) > 0,
          "branch applied_events_total > 0 after the drain")
    h = "branchsync_hub_batch_apply_seconds"
    inf = m.get((h + "_bucket", '{le="+Inf"}'))
    check(inf is not None and inf == m.get((h + "_count", "")) and inf > 0,
          "apply histogram: +Inf bucket equals _count and is > 0",
          (inf, m.get((h + "_count", ""))))
    check(m.get(("branchsync_hub_connected_agents", ""), 0) >= 1,
          "connected_agents >= 1 while the agent runs")
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=body,
                           capture_output=True, text=True, timeout=30)
        check_eq(r.returncode, 0, "promtool check metrics accepts /metrics "
                 "(%s)" % (r.stdout + r.stderr).strip())


def check_status(hub):
    st = get_json(hub, "/api/status")
    cli = hub.status_json()
    got = {b["code"]: b["state"] for b in st["branches"]}
    want = {b["code"]: b["state"] for b in cli["branches"]}
    check_eq(got, want, "/api/status and status --json agree on states")
    check_eq(got.get(BRANCH), "ok", "b-http is ok")


def check_history(hub):
    def two_points():
        h = get_json(hub, "/api/history")
        s = [x for x in h["series"] if x["branch"] == BRANCH]
        return h if s and len(s[0]["points"]) >= 2 else None
    h = bstest.wait_until(two_points, 15, "two backlog samples of b-http",
                          interval=0.5, alive=[hub.proc])
    check_eq(h["interval_s"], 1, "history interval_s")
    check(abs(h["now"] - time.time()) < 60, "history now is the time",
          h["now"])
    pts = h["series"][0]["points"]
    check(all(len(p) == 2 and h["now"] - 3700 < p[0] <= h["now"] + 1
              for p in pts), "points are [epoch, queue] of the last hour",
          pts[:3])
    sums = {}
    for s in h["series"]:
        for t, v in s["points"]:
            sums[t] = sums.get(t, 0) + v
    check_eq({t: v for t, v in h["total"]}, sums,
             "total is the sum of the series at each time")


def add_rejects(pg, hub):
    bid = hub.branch_id(BRANCH)
    pg.psql("INSERT INTO branchsync.reject(branch_id, log_id, seq, tbl, key, "
            "reason) VALUES (%s, 'l', 901, 'payments', '[7, 1]', "
            "'price \"too\" <high>')", (bid,))
    pg.psql("INSERT INTO branchsync.reject(branch_id, log_id, seq, tbl, key, "
            "reason, state) VALUES (%s, 'l', 902, 'payments', '[7, 2]', "
            "'x', 'retry')", (bid,))
    pg.psql("INSERT INTO branchsync.reject(branch_id, log_id, seq, tbl, key, "
            "reason, state) VALUES (%s, 'l', 903, 'payments', '[7, 3]', "
            "'x', 'resolved')", (bid,))
    pg.psql("INSERT INTO branchsync.conflict(branch_id, log_id, seq, tbl, "
            "key, type) VALUES (%s, 'l', 904, 'transactions', '[9]', "
            "'duplicate')", (bid,))


def check_lists(hub):
    r = get_json(hub, "/api/rejects?branch=" + BRANCH)["rejects"]
    check_eq([x["seq"] for x in r], [902, 901], "open and retry rejects "
             "of b-http, newest first (the resolved one left out)")
    x = r[1]
    check_eq(set(x), {"id", "branch", "seq", "tbl", "key", "reason",
                      "state", "created_at"}, "reject fields")
    check(x["branch"] == BRANCH and x["tbl"] == "payments"
          and x["key"] == [7, 1] and x["reason"] == 'price "too" <high>'
          and x["state"] == "open" and abs(x["created_at"] - time.time())
          < 60, "reject values", x)
    check_eq(len(get_json(hub, "/api/rejects")["rejects"]), 2,
             "/api/rejects without a branch lists them all")
    c = get_json(hub, "/api/conflicts?branch=" + BRANCH)["conflicts"]
    check(len(c) == 1 and c[0]["type"] == "duplicate"
          and c[0]["key"] == [9] and c[0]["seq"] == 904
          and set(c[0]) == {"id", "branch", "seq", "tbl", "key", "type",
                            "created_at"}, "the open conflict of b-http", c)
    for path in ("/api/rejects?branch=nope", "/api/conflicts?branch=nope"):
        check_eq(list(get_json(hub, path).values()), [[]],
                 "%s is an empty list" % path)


def check_refusals(hub):
    port = hub.http_port
    for method in ("POST", "PUT", "DELETE"):
        code, hdrs, body = request(port, method, "/api/status", body=b"x")
        check_eq(code, 405, "%s /api/status answers 405" % method)
    code, hdrs, body = request(port, "GET", "/nope")
    check(code == 404 and hdrs["content-type"].startswith("text/plain")
          and len(body) < 100, "an unknown path is 404 with a short text",
          (code, body))
    code, hdrs, body = request(port, "HEAD", "/")
    check_eq((code, body), (200, ""), "HEAD / answers 200 without a body")
    hostile = ["/api/rejects?branch=" + "x" * 5000,
               "/api/rejects?branch=" + "%41" * 3000,
               "/api/rejects?branch=%00",
               "/api/rejects?branch=a%00b",
               "/api/rejects?branch=%27%22%3B--",
               "/api/rejects?branch='\";--",
               "/api/conflicts?branch=%zz",
               "/api/conflicts?branch=%4",
               "/api/conflicts?branch=%C3%28",
               "/api/rejects?branch=b-http&branch=%00",
               "/api/status?" + "q" * 100000]
    for path in hostile:
        try:
            code, hdrs, body = request(port, "GET", path)
        except (OSError, http.client.HTTPException) as e:
            # nng may close a connection whose request is too large.
            code, body = None, str(e)
        ok = code in (400, 414, 431, None) or (
            code == 200 and json.loads(body) in ({"rejects": []},
                                                 {"conflicts": []},
                                                 json.loads(body)
                                                 if path.startswith(
                                                     "/api/status")
                                                 else None))
        check(ok, "hostile %s...: 400 or an empty list" % path[:40],
              (code, body[:200]))
        check(hub.proc.alive(), "the hub survives %s..." % path[:40])
    check_eq(len(get_json(hub, "/api/rejects?&&=&branch")["rejects"]), 2,
             "empty parameters and an empty branch: no filter")
    get_json(hub, "/api/status")


def check_pg_down(hub, pg):
    _, before = metrics(hub)
    pg.stop()
    try:
        code, hdrs, body = hub.http_get("/metrics")
        down = bstest.parse_prom(body) if code == 200 else {}
        check(code == 200
              and down.get(("branchsync_hub_postgres_up", "")) == 0
              and ("branchsync_hub_postgres_errors_total", "") in down
              and not any(k[0].startswith("branchsync_branch_")
                          for k in down),
              "/metrics answers the hub's own counters and "
              "postgres_up 0, without branches, while PostgreSQL is down",
              (code, body[:300]))
        code, hdrs, body = hub.http_get("/api/status")
        check(code == 503 and "PostgreSQL" in body,
              "/api/status answers 503 with the reason", (code, body))
    finally:
        pg.start()
    bstest.wait_until(
        lambda: bstest.parse_prom(hub.http_get("/metrics")[2]).get(
            ("branchsync_hub_postgres_up", "")) == 1, 30,
        "/metrics to read PostgreSQL again", interval=0.5,
        alive=[hub.proc])
    _, after = metrics(hub)
    key = ("branchsync_hub_postgres_errors_total", "")
    check(after[key] > before[key], "postgres_errors_total counted it",
          (before[key], after[key]))


def check_config(env, pg, hub):
    off = env.hub(pg, name="hub-off", http_listen="")
    off.start()
    time.sleep(0.5)
    check(off.proc.alive() and "HUB-HTTP-LISTEN" not in off.proc.log_text(),
          "http_listen empty: the hub runs without the listener")
    check_eq(off.stop(), 0, "hub without listener stops with 0")

    taken = env.hub(pg, name="hub-taken",
                    http_listen="127.0.0.1:%d" % hub.http_port)
    r = bstest.run_cmd([bstest.binary("branchsync-hub"), "run", "-c",
                        taken.ini], timeout=bstest.scaled(30))
    check(r.returncode == 1 and "http_listen" in r.stderr,
          "a taken http port: run exits 1 naming http_listen",
          (r.returncode, r.stderr[-500:]))

    slow = env.hub(pg, name="hub-slow", sample_interval_s=3600)
    slow.start()
    bstest.wait_until(lambda: bstest.port_open(slow.http_port), 15,
                      "hub-slow's listener", alive=[slow.proc])
    check_eq(slow.http_get("/api/history")[0], 200, "hub-slow answers")
    t0 = time.monotonic()
    check_eq(slow.stop(), 0, "hub-slow stops with 0")
    dt = time.monotonic() - t0
    check(dt < bstest.scaled(3), "hub-slow stopped in %.1f s despite a "
          "sample interval of an hour" % dt)


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, behind_events=1000, behind_seconds=3600,
                  silent_seconds=600, sample_interval_s=1)
    bstest.setup_center(pg, hub)
    key = hub.branch_add(BRANCH)
    hub.start()
    bstest.wait_until(lambda: bstest.port_open(hub.http_port), 15,
                      "the operator listener", alive=[hub.proc])
    check_page(hub)

    agent = env.agent("pos", BRANCH, key, hub.url, heartbeat_ms=1000)
    agent.init()
    sim = possim.Simulator(agent.db, seed=5, update_fraction=0,
                           delete_fraction=0)
    try:
        for _ in range(10):
            sim.sale()
    finally:
        sim.close()
    agent.start()
    agent.wait_drained(60, hub)
    bstest.wait_until(lambda: reported(pg) == 0, 15,
                      "the hub to record b-http's empty queue",
                      alive=[agent.proc, hub.proc])
    check_metrics(hub, pg)
    check_status(hub)
    check_history(hub)
    add_rejects(pg, hub)
    check_lists(hub)
    check_refusals(hub)
    check_eq(agent.stop(), 0, "the agent stops")
    check_pg_down(hub, pg)
    check_config(env, pg, hub)
    check_eq(hub.stop(), 0, "the hub stops with 0")
    log("ok: operator listener")


bstest.run(main)
