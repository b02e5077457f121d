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
import random
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
    rng = random.Random(SEED)
    bstest.log("seed %d, %d cuts mid-PUSH, %d lost ACKs" % (SEED, CUTS, CUTS))
    pg = env.postgres()
    hub = env.hub(pg)
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    hub.start()
    px = bstest.proxy(env, hub.port)
    agent = env.agent("pos", "b1", key, px.url, batch_max_events=40,
                      request_timeout_ms=2000)
    agent.init()
    bstest.possim_run(agent.db, sales=BACKLOG, seed=SEED)
    agent.start()
    writer = bstest.start_writer(env, agent, LIVE_SALES, SEED + 1, LIVE_RATE)
    alive = [agent.proc, hub.proc]

    def progress(what, timeout=60):
        before = agent.state()["acked_seq"]
        bstest.wait_until(lambda: agent.state()["acked_seq"] > before, timeout,
                          "progress " + what, interval=0.02, alive=alive)

    def hub_seq():
        wms = hub.watermarks("b1")
        return wms[0][1] if wms else 0

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
            bstest.wait_until(lambda: hub_seq() > agent.state()["acked_seq"],
                              30, "the hub to commit "
                              "a PUSH whose ACK is held", interval=0.01,
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

    writer.wait(timeout=120)
    agent.wait_drained(timeout=120, hub=hub)
    t = bstest.tally(pg, hub, agent)
    inv = bstest.check_invariants(pg, hub, [agent])
    c = px.counters()
    bstest.log("proxy: %s" % c)
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")
    bstest.report("net", seed=SEED, cuts_mid_push=CUTS, lost_acks=lost,
                  connections=c["connections"], events=inv["events"],
                  rows=inv["rows"], lost=t["lost"],
                  duplicated=t["duplicated"])


bstest.run(main)
