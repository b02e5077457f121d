"""test_web_page: the hub's operator page in a real browser (issue 5).

Headless Chromium (Debian's /usr/bin/chromium), driven by playwright-core
(tests/web/page_test.mjs), loads the page from a real hub on a real
PostgreSQL with real agents:

  store-ok      seen (heartbeat 1 s), drained, 4 open rejects: a sale over
                a CHECK constraint of the center (a transaction, 2 items,
                a payment)                                  -> state ok
  store-behind  a backlog of about 1,500 events drained through a slow
                link (tests/lib/faultproxy.py delays every chunk, the
                agent sends 2 events a batch), far over behind_events
                                                            -> state behind
  store-silent  synced once, then stopped; silent_seconds is small
                                                            -> state silent
  store-new     registered, never seen                      -> state never

Checks: one row per branch with the right state class and state text;
behind, silent and never rows have another background than the ok row;
clicking th[data-sort=queue_events] orders the rows by backlog and a second
click reverses it (sorted-asc / sorted-desc); the rejects link of store-ok
opens #list with the rows of /api/rejects?branch=store-ok and "#" closes
it; the page made no request outside the hub's origin and threw no error.
Also: every hub metric that deploy/prometheus/alerts.yml uses is in the
hub's /metrics.
The screenshot goes to $BS_ARTIFACTS/web.png when BS_ARTIFACTS is set,
else <build>/test-artifacts/web.png (with web-rejects.png, the list open,
and web-report.json, what the browser saw).

playwright-core (the version pinned in tests/web/package.json) is
installed with npm into <build>/web-node once and reused by later runs;
no browser is downloaded. The test skips (exit 77) only when node or
/usr/bin/chromium is missing (deploy/install-deps.sh installs both).
"""
import json
import os
import shutil
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq, log  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
BEHIND_EVENTS = 100
BACKLOG_SALES = 300  # about 5 events each
LIMIT = "ALTER TABLE public.transactions ADD CONSTRAINT bs_web_limit " \
    "CHECK (total_cost < 1000000) NOT VALID"
STATES = {"store-ok": "ok", "store-behind": "behind",
          "store-silent": "silent", "store-new": "never"}


# ------------------------------------------------------------ node side

def web_source(*parts):
    return bstest.source_file("tests", "web", *parts)


def installed_version(folder):
    try:
        with open(os.path.join(folder, "node_modules", "playwright-core",
                               "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def ensure_playwright():
    """Skips without node or chromium; installs playwright-core into
    <build>/web-node unless the pinned version is there. Returns
    (node, folder)."""
    node = shutil.which("node")
    if node is None:
        raise bstest.Skip("node not found: install Debian's nodejs and npm "
                          "(deploy/install-deps.sh)")
    if not os.access(CHROMIUM, os.X_OK):
        raise bstest.Skip("%s not found: install Debian's chromium "
                          "(deploy/install-deps.sh)" % CHROMIUM)
    with open(web_source("package.json")) as f:
        want = json.load(f)["dependencies"]["playwright-core"]
    folder = os.path.join(bstest.BUILD_DIR, "web-node")
    have = installed_version(folder)
    if have == want:
        log("playwright-core %s already in %s" % (have, folder))
        return node, folder
    npm = shutil.which("npm")
    if npm is None:
        raise bstest.Failure("npm not found (node is there): install npm "
                             "to fetch playwright-core %s" % want)
    # Into a fresh folder first, moved in place when complete: an
    # interrupted install is never taken for a good one.
    tmp = "%s.tmp-%d" % (folder, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    shutil.copy(web_source("package.json"), tmp)
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    argv = [npm, "install", "--no-save", "--no-package-lock", "--no-audit",
            "--no-fund", "--prefix", tmp]
    log("installing playwright-core %s: %s" % (want, " ".join(argv)))
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL, timeout=600)
    except subprocess.TimeoutExpired:
        shutil.rmtree(tmp, ignore_errors=True)
        raise bstest.Failure("npm install did not finish within 600 s")
    if r.returncode != 0 or installed_version(tmp) != want:
        shutil.rmtree(tmp, ignore_errors=True)
        raise bstest.Failure("npm install of playwright-core %s failed "
                             "(exit %d):\n%s" % (want, r.returncode,
                                                 (r.stdout + r.stderr)[-3000:]))
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(tmp, folder)
    log("ok: playwright-core %s installed in %s" % (want, folder))
    return node, folder


def artifacts_dir():
    d = os.environ.get("BS_ARTIFACTS") or os.path.join(bstest.BUILD_DIR,
                                                       "test-artifacts")
    os.makedirs(d, exist_ok=True)
    return d


def run_page_test(node, folder, url, rejects):
    out = artifacts_dir()
    shot = os.path.join(out, "web.png")
    report = os.path.join(out, "web-report.json")
    for p in (shot, report):
        if os.path.exists(p):
            os.unlink(p)
    argv = [node, web_source("page_test.mjs"), "--url", url, "--branches",
            ",".join(STATES), "--rejects", rejects, "--screenshot", shot,
            "--report", report]
    env = dict(os.environ, BS_WEB_NODE_DIR=folder,
               BS_TIME_SCALE=str(bstest.TIME_SCALE))
    log("running %s" % " ".join(argv))
    timeout = bstest.scaled(240)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise bstest.Failure("page_test.mjs did not finish within %d s"
                             % timeout)
    log(r.stderr.rstrip())
    try:
        with open(report) as f:
            rep = json.load(f)
    except (OSError, ValueError) as e:
        raise bstest.Failure("page_test.mjs exited %d without a report (%s)"
                             "\nstdout: %s" % (r.returncode, e, r.stdout))
    if r.returncode != 0:
        raise bstest.Failure("page_test.mjs exited %d: %s\nreport: %s"
                             % (r.returncode, rep.get("failure"),
                                json.dumps(rep, indent=1)[-4000:]))
    log("ok: page_test.mjs ran every step; screenshot %s, report %s"
        % (shot, report))
    return rep, shot


# ------------------------------------------------------------- hub side

def http_json(port, path):
    """GET http://127.0.0.1:port/path as JSON (no proxy from the
    environment: the hub is on loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://127.0.0.1:%d%s" % (port, path),
                     timeout=10) as r:
        return json.loads(r.read().decode())


def states(port):
    try:
        st = http_json(port, "/api/status")
    except OSError:
        return {}
    return {b["code"]: b for b in st.get("branches", [])}




def setup(env):
    """PostgreSQL, the hub and the four branches. Returns (hub, port)."""
    pg = env.postgres()
    port = bstest.free_port()
    silent = int(bstest.scaled(8))
    hub = env.hub(pg, extra={
        "http_listen": "127.0.0.1:%d" % port,
        "behind_events": BEHIND_EVENTS, "behind_seconds": 3600,
        "silent_seconds": silent, "sample_interval_s": 1})
    bstest.setup_center(pg, hub)
    pg.psql(LIMIT)
    keys = {code: hub.branch_add(code) for code in STATES}
    hub.start()
    bstest.wait_until(lambda: bstest.port_open(port), 30,
                      "the hub's operator listener on 127.0.0.1:%d" % port,
                      alive=[hub.proc])

    # store-ok: a few sales and a rejected one, drained; keeps talking.
    ok = env.agent("ok", "store-ok", keys["store-ok"], hub.url,
                   heartbeat_ms=1000)
    ok.init()
    possim.sales(ok.db, 10, 1)
    possim.big_sale(ok.db)
    possim.sales(ok.db, 5, 2)
    ok.start()
    bstest.wait_until(lambda: ok.state()["pending"] == 0
                      and ok.state()["rejected"] == 4, 60,
                      "store-ok to drain with 4 rejects", interval=0.2,
                      alive=[ok.proc, hub.proc])

    # store-silent: synced once, then gone.
    gone = env.agent("silent", "store-silent", keys["store-silent"],
                     hub.url, heartbeat_ms=1000)
    gone.init()
    possim.sales(gone.db, 3, 3)
    gone.start()
    gone.wait_drained(60, hub)
    gone.stop()

    # store-behind: a big backlog through a slow link, 2 events a batch.
    px = bstest.proxy(env, hub.port)
    px.delay(200)
    slow = env.agent("behind", "store-behind", keys["store-behind"], px.url,
                     heartbeat_ms=1000, max_batch_events=2)
    slow.init()
    possim.sales(slow.db, BACKLOG_SALES, 4)
    log("store-behind: %d events waiting" % slow.state()["pending"])
    slow.start()

    def settled():
        got = {c: b.get("state") for c, b in states(port).items()}
        return got if got == STATES else None
    bstest.wait_until(settled, 60 + silent, "the hub to report the states "
                      "%s" % STATES, interval=0.5,
                      alive=[ok.proc, slow.proc, hub.proc])
    log("ok: /api/status reports %s" % STATES)
    bstest.wait_until(
        lambda: any(s.get("branch") == "store-behind" and
                    len(s.get("points") or []) >= 2
                    for s in http_json(port, "/api/history")
                    .get("series", [])), 30,
        "two backlog samples of store-behind in /api/history",
        interval=0.5, alive=[hub.proc])
    return hub, port


# --------------------------------------------------------------- checks

def number(text):
    """The integer a cell shows ("1,234" -> 1234); None when none."""
    digits = "".join(ch for ch in (text or "") if ch.isdigit())
    return int(digits) if digits else None


def check_rows(rep):
    rows = rep["rows"]
    codes = [r["branch"] for r in rows]
    check_eq(sorted(codes), sorted(STATES), "one row per branch")
    by = {r["branch"]: r for r in rows}
    for code, state in STATES.items():
        r = by[code]
        check("state-" + state in r["classes"], "%s: row has class state-%s"
              % (code, state), r["classes"])
        check_eq(r["state"], state, "%s: td.c-state says %s" % (code, state))

    def bg(r):
        # the highlight may be on the row or on its cells
        return (r["rowBackground"], r["cellBackground"])
    plain = bg(by["store-ok"])
    for code in ("store-behind", "store-silent", "store-new"):
        check(bg(by[code]) != plain, "%s row is highlighted (background "
              "differs from the ok row's)" % code,
              "%s vs %s" % (bg(by[code]), plain))
    check(number(by["store-behind"]["queue"]) is not None and
          number(by["store-behind"]["queue"]) >= BEHIND_EVENTS,
          "store-behind: td.c-queue shows its backlog",
          by["store-behind"]["queue"])
    check_eq(number(by["store-ok"]["queue"]), 0, "store-ok: queue 0")
    check_eq(by["store-new"]["seen"], "never", "store-new: last seen never")
    link = by["store-ok"]["rejectsLink"]
    check(link is not None and link["href"] == "#rejects/store-ok"
          and link["text"] == "4", "store-ok: rejects link "
          "#rejects/store-ok showing 4", link)
    check("4 branches" in (rep.get("summary") or "") and
          "1 behind" in rep["summary"], "#summary counts 4 branches, "
          "1 behind", rep.get("summary"))
    check(bool(rep.get("updated")) and rep["updated"].startswith("updated "),
          "#updated shows the last poll", rep.get("updated"))
    check(not rep.get("errorText"), "#error shows nothing",
          rep.get("errorText"))
    chart = rep.get("chart") or {}
    check(chart.get("total", 0) >= 1 and
          "store-behind" in chart.get("series", []),
          "svg#chart has the total and a series for store-behind", chart)


def check_sorted(step, want_dir):
    """The queue column is ordered want_dir ("asc"/"desc") and the header
    says so. Rows without a number (never seen) are left out."""
    cls = [c for c in step["headerClasses"] if c.startswith("sorted-")]
    check_eq(cls, ["sorted-" + want_dir], "th[data-sort=queue_events] "
             "class after the click")
    pairs = [(o["branch"], number(o["queue"])) for o in step["order"]]
    nums = [n for _, n in pairs if n is not None]
    want = sorted(nums, reverse=(want_dir == "desc"))
    check_eq(nums, want, "rows ordered by backlog, %s (%s)"
             % (want_dir, ", ".join("%s=%s" % p for p in pairs)))
    withnum = [b for b, n in pairs if n is not None]
    check_eq(withnum[0 if want_dir == "desc" else -1], "store-behind",
             "store-behind is %s" % ("first" if want_dir == "desc"
                                     else "last"))


def check_sorting(rep):
    s = rep["sort"]
    first = [c for c in s[0]["headerClasses"] if c.startswith("sorted-")]
    check(first in (["sorted-asc"], ["sorted-desc"]), "first click sorts "
          "by backlog", s[0]["headerClasses"])
    d1 = first[0][len("sorted-"):]
    d2 = "desc" if d1 == "asc" else "asc"
    check_sorted(s[0], d1)
    check_sorted(s[1], d2)


def check_list(rep, port):
    want = http_json(port, "/api/rejects?branch=store-ok")["rejects"]
    lst = rep.get("list") or {}
    check_eq(lst.get("hash"), "#rejects/store-ok", "the rejects link sets "
             "the hash")
    head = (lst.get("heading") or "").lower()
    check("reject" in head and "store-ok" in head, "#list has a heading "
          "naming the rejects of store-ok", lst.get("heading"))
    check_eq(len(lst.get("rows", [])), len(want), "#list-table has a row "
             "per open reject of /api/rejects?branch=store-ok")
    check_eq(len(want), 4, "the hub lists 4 open rejects of store-ok")
    check(rep.get("listClosed") is True, "following '#' closes #list")


def check_requests(rep):
    check_eq(rep["outside"], [], "the page made no request outside %s"
             % rep["origin"])
    paths = [u[len(rep["origin"]):] for u in rep["requests"]]
    check(any(p.startswith("/api/status") for p in paths) and
          any(p.startswith("/api/history") for p in paths),
          "the page fetched /api/status and /api/history", paths)
    check_eq(rep["pageErrors"], [], "no JavaScript error on the page")
    check_eq(rep["status"], 200, "GET / answers 200")
    check((rep.get("contentType") or "").startswith("text/html"),
          "GET / is text/html", rep.get("contentType"))


def check_alert_metrics(port):
    """Every hub metric that deploy/prometheus/alerts.yml uses is in the
    hub's /metrics (the rules' names are the code's)."""
    import re
    with open(bstest.source_file("deploy", "prometheus", "alerts.yml")) as f:
        names = sorted(set(re.findall(r"\b(branchsync_(?:branch|hub)_\w+)",
                                      f.read())))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    have = set(re.findall(r"^(\w+)[{ ]", text, re.M))
    missing = [n for n in names if n not in have]
    check_eq(missing, [], "the hub's /metrics has every metric alerts.yml "
             "uses (%s)" % ", ".join(names))


def check_png(path):
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000,
          "screenshot %s is a PNG (%d bytes)" % (path, len(data)))


def main(env):
    node, folder = ensure_playwright()
    hub, port = setup(env)
    check_alert_metrics(port)
    rep, shot = run_page_test(node, folder, "http://127.0.0.1:%d/" % port,
                              "store-ok")
    check_requests(rep)
    check_rows(rep)
    check_sorting(rep)
    check_list(rep, port)
    check_png(shot)
    if rep.get("consoleErrors"):
        log("note: console errors: %s" % rep["consoleErrors"])


bstest.run(main)
