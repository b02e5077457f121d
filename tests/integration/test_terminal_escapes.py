"""test_terminal_escapes: text a branch sends cannot drive an operator's
terminal.

A sale whose created_at is not a timestamp but ESC sequences, a BEL and a
CR is rejected by PostgreSQL, whose error quotes the value. That error
reaches the hub's log, `branchsync-hub rejects list` and
`branchsync-agent rejects list`: each shows the control characters as
\\xNN (\\x1b, \\x07, \\x0d), and none of them, nor the agent's log and
`status`, holds a raw control byte other than newline and tab. JSON
(`/api/rejects`, `rejects list --json`) keeps the value exact, escaped as
JSON does.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check  # noqa: E402

EVIL = "\x1b[2J\x1b]0;owned\x07\rEVIL\u009b31m"
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]")


def clean(what, text, shows=True):
    bad = RAW.findall(text)
    check(not bad, "%s holds no raw control character" % what,
          repr(bad[:5]))
    if shows:
        check("\\x1b" in text, "%s shows ESC as \\x1b" % what,
              text[-300:])


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    hub.start()
    agent = env.agent("pos", "b1", key, hub.url)
    agent.init()
    c = bstest.sqlite_connect(agent.db)
    with c:
        c.execute("INSERT INTO transactions(id, total_cost, created_at) "
                  "VALUES (1, 100, ?)", (EVIL,))
    c.close()
    agent.start()
    bstest.wait_until(lambda: pg.psql(
        "SELECT count(*) FROM branchsync.reject")[0][0] == 1, 30,
        "the reject", alive=[hub.proc, agent.proc])
    reason = pg.psql("SELECT reason FROM branchsync.reject")[0][0]
    check("\x1b" in reason, "the reason PostgreSQL gave quotes the value "
          "exactly", repr(reason))

    r = hub.cli("rejects", "list")
    check(r.returncode == 0, "branchsync-hub rejects list", r.stderr)
    clean("branchsync-hub rejects list", r.stdout)
    code, _, body = hub.http_get("/api/rejects")
    check(code == 200 and json.loads(body)["rejects"][0]["reason"] == reason,
          "the hub's /api/rejects keeps the reason exactly (JSON-escaped)")
    bstest.wait_until(lambda: "AGENT-REJECTED" in agent.proc.log_text(), 30,
                      "the agent to log the reject")
    clean("the agent's log", agent.proc.log_text(), shows=False)
    clean("the hub's log", hub.proc.log_text())
    r = agent.cli("rejects", "list")
    check(r.returncode == 0, "branchsync-agent rejects list", r.stderr)
    clean("branchsync-agent rejects list", r.stdout)
    r = agent.cli("status")
    check(r.returncode == 0, "branchsync-agent status", r.stderr)
    check(not RAW.findall(r.stdout), "branchsync-agent status holds no raw "
          "control character")
    r = agent.cli("rejects", "list", "--json")
    check(json.loads(r.stdout)[0]["reason"] == reason,
          "the agent's --json keeps the reason exactly")
    agent.stop()
    hub.stop()


bstest.run(main)
