"""test_initial_load: a POS that ran before branchsync was installed.

The POS file holds 3,000 sales (with their items and payments) written
before any capture trigger existed, with is_synced mixed (0 and 1: an earlier
sync tool may have set it). "init --initial-load" installs the
triggers and queues every row once, showing its progress on stderr; run a
second time it queues nothing (no row gets a second log entry), and
"sweep" then finds nothing either. Hub and agent start: every row arrives
at the center exactly once, column by column, and every row becomes
is_synced = 1.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SALES = 3000


def queued(r):
    m = re.search(r"^queued (\d+) rows", r.stdout, re.M)
    if r.returncode != 0 or m is None:
        raise bstest.Failure("exit %d, stdout %r, stderr %r"
                             % (r.returncode, r.stdout, r.stderr))
    return int(m.group(1))


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    agent = env.agent("pos", "b1", key, hub.url)
    bstest.possim_run(agent.db, sales=SALES, seed=11, delete_fraction=0)
    c = bstest.sqlite_connect(agent.db)
    for t in bstest.UPSTREAM_TABLES:
        c.execute("UPDATE %s SET is_synced = CASE abs(random()) %% 3 WHEN 0 "
                  "THEN 1 ELSE 0 END" % t)
    rows = sum(c.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
               for t in bstest.UPSTREAM_TABLES)
    c.close()
    check(rows > 3 * SALES, "the POS holds %d rows before install" % rows)

    r = agent.cli("init", "--initial-load")
    check_eq(queued(r), rows, "init --initial-load queues every row once")
    check("initial load of \"transactions\": queued" in r.stderr,
          "progress is shown on stderr", r.stderr)
    check_eq(agent.state()["pending"], rows, "the log holds one entry per "
             "row")
    check_eq(queued(agent.cli("init", "--initial-load")), 0,
             "a second --initial-load queues nothing")
    check_eq(agent.state()["pending"], rows, "still one entry per row")
    check_eq(queued(agent.cli("sweep")), 0, "sweep finds nothing either")

    hub.start()
    agent.start()
    agent.wait_drained(timeout=240, hub=hub)
    bstest.check_replicated(pg, hub, agent)
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")


bstest.run(main)
