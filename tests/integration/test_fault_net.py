"""test_fault_net: the network between agent and hub fails mid-message.

The agent reaches the hub only through a faultproxy (loopback TCP proxy
the test controls) while a backlog drains and the POS simulator keeps
writing. With a fixed seed:

1. cut mid-PUSH, 10 times: drop_after(n) forwards n more bytes (random,
   1..3000) of the next agent->hub data and closes the connection, so
   the hub sees half a request and the agent a dead connection;
2. lost ACK, 10 times: the hub->agent direction is stalled, the next
   PUSH goes through and the hub commits it (its watermark moves past
   the agent's acked_seq), then the connection is cut with the ACK held
   in the proxy: the agent must resend, the hub must answer duplicates;
3. one each of: 300 ms delay on every chunk for 2 s, a full stall longer
   than the request timeout, a blackhole for 3 s.
At the end bstest.check_invariants (every row once with equal values,
all synced, watermark = acked_seq, applied_total = events in the log,
stock = sales).

BS_SEED overrides the seed, BS_CUTS the count of 1. and 2. each.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SEED = int(os.environ.get("BS_SEED", "4103"))
CUTS = int(os.environ.get("BS_CUTS", "10"))
BACKLOG = 2000
LIVE_SALES = 1500
LIVE_RATE = 30


def main(env):
    bstest.log("seed %d, %d cuts mid-PUSH, %d lost ACKs" % (SEED, CUTS, CUTS))
    f = bstest.FaultRun(env, "net", SEED, BACKLOG, LIVE_SALES, LIVE_RATE,
                        via_proxy=True, max_batch_events=40,
                        request_timeout_ms=2000)
    rng, px, agent, alive = f.rng, f.px, f.agent, f.alive
    progress, hub_seq = f.wait_progress, f.hub_seq

    # 1. cut mid-PUSH
    cuts0 = px.counters()["cuts"]
    for i in range(1, CUTS + 1):
        progress("before cut %d" % i)
        n = rng.randint(1, 3000)
        px.drop_after(n)
        bstest.wait_until(lambda: not px.drop_pending(), 30,
                          "cut %d to fire" % i, interval=0.01, alive=alive)
        bstest.log("cut %d: connection closed after %d bytes of a request"
                   % (i, n))
    check_eq(px.counters()["cuts"] - cuts0, CUTS, "the proxy closed %d "
             "connections mid-request" % CUTS)

    # 2. the hub commits, the ACK is lost
    def held_ack():
        acked = agent.state()["acked_seq"]
        if hub_seq() <= acked:
            return False
        time.sleep(0.3)
        return agent.state()["acked_seq"] == acked and hub_seq() > acked

    lost = 0
    for i in range(1, CUTS + 1):
        # Twice: the first advance may be the agent recording an ACK that
        # came before the last cut (it sends the next batch first); only
        # the second needs an answer on the new connection, so the agent
        # is in a session and the hub will commit its next PUSH.
        progress("before lost ACK %d" % i)
        progress("on the new connection before lost ACK %d" % i)
        px.stall("s2c")
        try:
            # The ACK of a commit from just before the stall may still get
            # through and be recorded a moment later: the hub must stay
            # ahead of an acked_seq that no longer moves.
            bstest.wait_until(held_ack, 30, "the hub to commit a PUSH "
                              "whose ACK is held", interval=0.01,
                              alive=alive)
            st = agent.state()
            px.cut()
        finally:
            px.heal()
        if hub_seq() > st["acked_seq"]:
            lost += 1
        bstest.log("lost ACK %d: hub watermark %d, agent acked_seq %d"
                   % (i, hub_seq(), st["acked_seq"]))
    check(lost == CUTS, "%d of %d ACKs lost after the hub's commit"
          % (lost, CUTS))
    progress("after the lost ACKs")

    # 3. slow, stalled and black-holed links
    px.delay(300)
    time.sleep(2)
    px.heal()
    progress("after the delay")
    px.stall()
    time.sleep(3)  # > request_timeout_ms
    px.heal()
    progress("after the stall")
    px.blackhole()
    px.cut()
    time.sleep(3)
    px.heal()
    progress("after the blackhole")

    f.drain()
    c = px.counters()
    bstest.log("proxy: %s" % c)
    f.finish(cuts_mid_push=CUTS, lost_acks=lost,
             connections=c["connections"])


bstest.run(main)
