"""test_retention: resolved rejects and conflicts are deleted after
retention_days; open ones never are.

The center holds rejects and conflicts of one branch: resolved 100 days
ago, resolved 10 days ago, and open (created 100 days ago). With
retention_days = 30, `branchsync-hub prune` deletes exactly the two
resolved 100 days ago, says so, and a second run deletes nothing. The
hub's own hourly run uses the same code (hub/housekeep.c).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, extra={"retention_days": 30})
    bstest.setup_center(pg, hub)
    hub.branch_add("b1")
    bid = hub.branch_id("b1")
    for seq, state, resolved in ((1, "resolved", "100 days"),
                                 (2, "discarded", "10 days"),
                                 (3, "open", None)):
        pg.psql("INSERT INTO branchsync.reject(branch_id, log_id, seq, tbl,"
                " key, reason, state, created_at, resolved_at) VALUES"
                " (%s, 'L', %s, 'transactions', '[1]', 'r', %s,"
                " now() - interval '100 days', now() - %s::interval)",
                (bid, seq, state, resolved))
        pg.psql("INSERT INTO branchsync.conflict(branch_id, log_id, seq, tbl,"
                " key, type, created_at, resolution, resolved_at) VALUES"
                " (%s, 'L', %s, 'transactions', '[1]', 'duplicate',"
                " now() - interval '100 days', %s, now() - %s::interval)",
                (bid, seq, None if resolved is None else "keep_server",
                 resolved))
    r = hub.cli("prune")
    check(r.returncode == 0 and "deleted 1 rejects and 1 conflicts" in
          r.stdout, "prune deletes one reject and one conflict", r.stdout +
          r.stderr)
    check_eq([x[0] for x in pg.psql(
        "SELECT seq FROM branchsync.reject ORDER BY seq")], [2, 3],
        "the reject resolved 10 days ago and the open one stay")
    check_eq([x[0] for x in pg.psql(
        "SELECT seq FROM branchsync.conflict ORDER BY seq")], [2, 3],
        "the conflict resolved 10 days ago and the open one stay")
    r = hub.cli("prune")
    check(r.returncode == 0 and "deleted 0 rejects and 0 conflicts" in
          r.stdout, "a second prune deletes nothing", r.stdout)


bstest.run(main)
