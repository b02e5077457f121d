"""test_max_logs: a branch keeps at most max_logs_per_branch logs.

Every POS file set up with "init" is a new log with its own watermark
row. With max_logs_per_branch = 2, two POS files of branch b1 drain; a
third one's batches are refused with a reason naming the setting, the
hub logs it, nothing of it is applied, and the center keeps two
watermark rows. The first two keep syncing.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, extra={"max_logs_per_branch": 2})
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    hub.start()
    agents = []
    for i in range(3):
        a = env.agent("pos%d" % i, "b1", key, hub.url)
        a.init()
        possim.sales(a.db, 20, seed=10 + i)
        agents.append(a)
    for a in agents[:2]:
        a.start()
        a.wait_drained(hub=hub)
    agents[2].start()
    bstest.wait_until(lambda: "max_logs_per_branch" in
                      hub.proc.log_text(), 30, "the hub to refuse the log",
                      alive=[hub.proc, agents[2].proc])
    check(True, "the third POS file's log is refused (max_logs_per_branch)")
    check_eq(len(hub.watermarks("b1")), 2, "the center keeps two watermark "
             "rows")
    check_eq(agents[2].state()["pending"] > 0, True,
             "the third POS file's events stay pending")
    possim.sales(agents[0].db, 5, seed=20)
    agents[0].wait_drained(hub=hub)
    check(True, "the first POS file keeps syncing")
    for a in agents:
        check_eq(a.stop(), 0, "%s exits 0" % a.name)
    check_eq(hub.stop(), 0, "hub exits 0")


bstest.run(main)
