"""test_branch_keys: branch credentials (issue 6, keys).

A real hub on a real PostgreSQL:
1. keys are 256 random bits, stored only as a sha256 hash: the key text
   appears nowhere in the branch table;
2. "branch rotate-key" prints a new key; during the overlap both the old
   and the new key work; once the overlap is over (moved into the past in
   SQL) only the new one does; "--overlap 0" stops the old key at once;
3. a real agent keeps draining with its old key during an overlap, is
   refused after it (AGENT-HUB-ERROR, nothing applied, its queue kept),
   and drains everything once its ini has the new key and it restarts;
4. "branch disable": the right key gets "branch ... is disabled", a wrong
   key only "authentication failed" (nothing is told to a stranger);
   "branch enable" lets it in again; "branch list" shows it all;
5. a branch cannot write as another: a payload column "branch_id" is
   rejected ("set by the hub") and nothing is applied; b2's key with b1's
   code is refused;
6. the CLI: unknown branch, bad --overlap, --overlap elsewhere: exit 1
   with a clear error, nothing changed.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
import bswire as W  # noqa: E402
import possim  # noqa: E402
from bstest import check, check_eq  # noqa: E402

LOG = "a" * 32
TABLES = [("payments", ["transaction_id", "line_no", "method", "amount"],
           2)]


def hello(raw, hub, code, key):
    """(type, body) of a raw HELLO."""
    return W.request(raw, hub.url, W.hello(code, key, LOG, 0))


def accepted(raw, hub, code, key):
    return hello(raw, hub, code, key)[0] == W.WELCOME


def refusal(raw, hub, code, key):
    """The ERROR message of a refused HELLO (fails if it was accepted).
    A change made a moment ago reaches the hub's key cache when it reads
    PostgreSQL's notification: on a loaded machine that can take longer
    than the CLI, so an accepted HELLO is tried again for a few seconds."""
    got = []

    def refused():
        got[:] = hello(raw, hub, code, key)
        return got[0] != W.WELCOME
    bstest.wait_until(refused, 10, "the hub to refuse %s's key" % code,
                      interval=0.05)
    t, body = got
    check_eq((t, body.get("code")), (W.ERROR, W.E_AUTH),
             "HELLO of %s refused as an authentication error" % code)
    return body.get("message", "")


def rotate(hub, code, *extra):
    r = hub.cli("branch", "rotate-key", code, *extra)
    check(r.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}\n", r.stdout),
          "rotate-key %s prints one new key of 64 hex digits" % code,
          (r.returncode, r.stdout, r.stderr))
    return r.stdout.strip(), r.stderr


def expire_overlap(pg, code):
    pg.psql("UPDATE branchsync.branch SET old_key_until = now() - "
            "interval '1 second' WHERE code = %s", (code,))


def cli_fails(hub, what, want, *args):
    r = hub.cli(*args)
    check(r.returncode == 1 and want in r.stderr and not r.stdout,
          "%s: exit 1, error says %r" % (what, want), (r.returncode,
                                                      r.stderr))


def main(env):
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    k1 = hub.branch_add("b1")
    k2 = hub.branch_add("b2")
    hub.start()
    raw = bstest.binary("bs-rawclient")

    # 1. stored only as a hash.
    rows = pg.psql("SELECT encode(key_hash, 'hex'), key_changed_at IS NOT "
                   "NULL, old_key_hash FROM branchsync.branch WHERE code = "
                   "'b1'")
    check(len(rows) == 1 and len(rows[0][0]) == 64 and rows[0][0] != k1
          and rows[0][1] and rows[0][2] is None,
          "b1's key is stored as a 32-byte hash, not as itself")
    dump = str(pg.psql("SELECT * FROM branchsync.branch"))
    check(k1 not in dump and k2 not in dump, "no key text in the table")

    # 2. rotation with an overlap, then without.
    check(accepted(raw, hub, "b1", k1), "b1's first key works")
    new1, note = rotate(hub, "b1")
    check(new1 != k1 and "accepted until" in note,
          "rotate-key says until when the previous key works", note)
    check(accepted(raw, hub, "b1", new1), "the new key works")
    check(accepted(raw, hub, "b1", k1), "the old key works in the overlap")
    check_eq(refusal(raw, hub, "b1", k2), "authentication failed",
             "another branch's key still fails during the overlap")
    expire_overlap(pg, "b1")
    check_eq(refusal(raw, hub, "b1", k1), "authentication failed",
             "the old key fails once the overlap is over")
    check(accepted(raw, hub, "b1", new1), "the new key still works")
    newer, note = rotate(hub, "b1", "--overlap", "0")
    check("no longer works" in note, "--overlap 0 says the old key stops",
          note)
    check_eq(refusal(raw, hub, "b1", new1), "authentication failed",
             "--overlap 0: the previous key fails at once")
    check(accepted(raw, hub, "b1", newer), "the newest key works")
    k1 = newer

    # 3. a real agent through a rotation.
    agent = env.agent("pos1", "b1", k1, hub.url, heartbeat_ms=1000)
    agent.init()
    possim.sales(agent.db, 20, seed=1)
    agent.start()
    agent.wait_drained(hub=hub)
    new1, _ = rotate(hub, "b1", "--overlap", "3600")
    possim.sales(agent.db, 20, seed=2)
    agent.wait_drained(hub=hub)
    check(True, "the agent drains with its old key during the overlap")
    expire_overlap(pg, "b1")
    possim.sales(agent.db, 20, seed=3)
    pending = agent.state()["pending"]
    check(pending > 0, "new sales wait (%d events)" % pending)
    bstest.wait_until(lambda: "authentication failed" in
                      agent.proc.log_text(), 30,
                      "the agent to log the refused key",
                      alive=[agent.proc, hub.proc])
    check(agent.state()["pending"] >= pending,
          "nothing is applied with the expired key; the queue is kept")
    check_eq(agent.stop(), 0, "the agent stops")
    agent.write_config(key=new1)
    agent.start()
    agent.wait_drained(hub=hub)
    bstest.check_replicated(pg, hub, agent)
    check_eq(agent.stop(), 0, "the agent with its new key drained and stops")
    k1 = new1

    # 4. disable and enable.
    r = hub.cli("branch", "disable", "b2")
    check(r.returncode == 0 and 'branch "b2" disabled' in r.stdout,
          "branch disable b2", (r.stdout, r.stderr))
    check_eq(refusal(raw, hub, "b2", k2), 'branch "b2" is disabled',
             "the right key of a disabled branch is told so")
    check_eq(refusal(raw, hub, "b2", k1), "authentication failed",
             "a wrong key of a disabled branch learns nothing")
    r = hub.cli("branch", "list")
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines()}
    check(r.returncode == 0 and "enabled=no" in lines.get("branch=b2", "")
          and "enabled=yes" in lines.get("branch=b1", "")
          and "old_key_until=-" in lines.get("branch=b1", ""),
          "branch list shows b2 disabled, b1 enabled, no overlap left",
          r.stdout)
    r = hub.cli("branch", "enable", "b2")
    check(r.returncode == 0, "branch enable b2", r.stderr)
    check(accepted(raw, hub, "b2", k2), "b2 works again once enabled")

    # 5. no writing as another branch.
    before = pg.psql("SELECT count(*) FROM payments")[0][0]
    t, body = W.request(raw, hub.url, W.push(
        "b2", k2, LOG, [("payments", ["transaction_id", "line_no",
                                      "branch_id", "method", "amount"],
                         2)],
        [(1, 1, 0, W.OP_UPSERT, [990001, 1, 1, "cash", 5])]))
    check(t in (W.ACK, W.ERROR), "a PUSH naming branch_id is answered")
    text = str(body)
    check("set by the hub" in text, "the payload's branch_id is refused: "
          "the hub sets it from the credential", body)
    check_eq(pg.psql("SELECT count(*) FROM payments")[0][0], before,
             "nothing applied from a payload naming branch_id")
    t, body = W.request(raw, hub.url, W.push(
        "b1", k2, LOG, TABLES,
        [(1, 1, 0, W.OP_UPSERT, [990002, 1, "cash", 5])]))
    check_eq((t, body.get("code")), (W.ERROR, W.E_AUTH),
             "b2's key under b1's code is refused")
    check_eq(pg.psql("SELECT count(*) FROM payments")[0][0], before,
             "nothing applied under another branch's code")

    # 6. the CLI.
    cli_fails(hub, "rotate-key of an unknown branch", 'no branch "nope"',
              "branch", "rotate-key", "nope")
    cli_fails(hub, "disable of an unknown branch", 'no branch "nope"',
              "branch", "disable", "nope")
    cli_fails(hub, "a negative --overlap", "--overlap", "branch",
              "rotate-key", "b1", "--overlap", "-5")
    cli_fails(hub, "--overlap with add", "only valid for", "branch", "add",
              "b9", "--overlap", "5")
    cli_fails(hub, "an unknown branch command", "unknown branch command",
              "branch", "delete", "b1")
    check(accepted(raw, hub, "b1", k1), "b1's key unchanged by the "
          "failed commands")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")


bstest.run(main)
