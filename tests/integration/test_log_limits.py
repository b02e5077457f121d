"""test_log_limits: what a peer or a branch can make the hub log is
limited.

1. 150 undecodable requests on one connection are each answered, but
   write at most 20 HUB-BAD-REQUEST lines (LOG_LIMIT_DEFAULT: 20 per
   minute; the rest are counted in one line when the next window opens).
2. A batch of 400 sales that a CHECK constraint at the center rejects
   records 400 rejects in branchsync.reject, but writes at most 20
   HUB-REJECT lines.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402

BAD = 150
SALES = 400


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    hub.start()

    answered = 0
    with bswire.Session(bstest.binary("bs-rawclient"), hub.url) as s:
        for i in range(BAD):
            # a msgpack array of the wrong shape: decodes as nothing
            if s.exchange(bytes([0x93, 0x07, 0x07, 0xc1 ^ (i & 1)])):
                answered += 1
    check_eq(answered, BAD, "every bad request is answered")
    n = hub.proc.log_text().count("HUB-BAD-REQUEST")
    check(0 < n <= 20, "%d bad requests wrote %d HUB-BAD-REQUEST lines "
          "(at most 20)" % (BAD, n), n)

    pg.psql("ALTER TABLE public.transactions ADD CONSTRAINT small "
            "CHECK (total_cost < 0) NOT VALID")
    agent = env.agent("pos", "b1", key, hub.url, max_batch_events=10000)
    agent.init()
    possim.sales(agent.db, SALES, seed=1)
    agent.start()
    bstest.wait_until(lambda: pg.psql(
        "SELECT count(*) FROM branchsync.reject WHERE tbl = "
        "'transactions'")[0][0] == SALES, 60, "the rejects",
        alive=[hub.proc, agent.proc])
    check(True, "%d rejected sales are recorded" % SALES)
    n = hub.proc.log_text().count("HUB-REJECT ")
    check(0 < n <= 20, "they wrote %d HUB-REJECT lines (at most 20)" % n, n)
    check_eq(agent.stop(), 0, "agent exits 0")
    check_eq(hub.stop(), 0, "hub exits 0")


bstest.run(main)
