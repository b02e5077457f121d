"""test_tls: agents and hub over tls+tcp://, and the secret-file warnings.

A throwaway CA is made with the openssl command line (the commands of
docs/security.md): a server certificate for 127.0.0.1 and localhost,
client certificates whose CN is a branch code, and a second, unrelated
CA. Then:

1. a hub whose listen URL is tls+tcp:// but that has no tls_cert exits 1
   with an error naming tls_cert; so does one whose tls_key is not the
   certificate's key, or cannot be read;
2. hub A listens on tls+tcp:// and tcp:// at once (and publishes nudges
   on tls+tcp://); an agent with the right tls_ca drains its sales over
   TLS and everything arrives; an agent on the plain tcp:// URL beside it
   drains too; its world-readable tls_key is warned about (HUB-KEY-PERMS);
3. a plaintext tcp:// agent dialing the TLS port fails with a log line
   saying the hub may be listening with TLS, and nothing of it is applied;
4. an agent whose tls_ca is the unrelated CA fails with a log line saying
   the hub's certificate is not signed by a CA in tls_ca; one dialing
   tls+tcp://127.0.0.1 without tls_server_name, that the certificate does
   not name "127.0.0.1" (mbedTLS 2 matches DNS names only);
5. an agent whose ini file (with the inline key) is world-readable warns
   AGENT-KEY-PERMS; one whose file is mode 600 does not;
6. a hub that sets tls_client_ca and also listens on a plain tcp:// URL
   (where agents would get in without a certificate) exits 1 naming both;
   hub B sets tls_client_ca: an agent with a client certificate whose CN
   is its branch code drains; one without a client certificate, and one
   with a certificate of the unrelated CA, fail with a log line naming
   tls_cert/tls_key; one presenting another branch's certificate is
   refused (HUB-AUTH-FAIL naming both, counted in
   branchsync_hub_auth_failures_total) when the linked nng reports the CN
   (1.6 and later); with an older nng the hub warns HUB-TLS-NO-CN at start
   and this check is reported as not applicable.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstls import CA  # noqa: E402
from bstest import check, check_eq  # noqa: E402

SALES = 300


def wait_log(who, text, timeout, what):
    """Waits for text in the log of who (an Agent, or a Hub's proc)."""
    proc = getattr(who, "proc", who)
    bstest.wait_until(lambda: text in proc.log_text(), timeout, what)
    check(True, what)


def nothing_applied(pg, code):
    rows = pg.psql("SELECT count(*) FROM public.transactions t JOIN "
                   "branchsync.branch b ON b.id = t.branch_id WHERE "
                   "b.code = %s", (code,))
    return rows[0][0] == 0


def main(env):
    if bstest.run_cmd(["openssl", "version"]).returncode != 0:
        raise bstest.Skip("the openssl command is not installed")
    t0 = time.monotonic()
    d = os.path.join(env.dir, "pki")
    os.mkdir(d)
    ca = CA(d, "ca")
    other = CA(d, "other-ca")
    hub_crt, hub_key = ca.issue(
        "hub", "localhost", "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "extendedKeyUsage = serverAuth\n")
    os.chmod(hub_key, 0o644)  # warned about below
    client = "extendedKeyUsage = clientAuth\n"
    b4_crt, b4_key = ca.issue("b4", "b4", client)
    ob_crt, ob_key = other.issue("other-b4", "b4", client)
    bstest.log("made two CAs and their certificates in %.1f s"
               % (time.monotonic() - t0))

    pg = env.postgres()
    tls_keys = {"tls_cert": hub_crt, "tls_key": hub_key}

    # 1. tls+tcp:// without tls_cert: exit 1, naming the key.
    bad = env.hub(pg, name="hub-nocert", scheme="tls+tcp")
    r = bstest.run_cmd([bstest.binary("branchsync-hub"), "run", "-c",
                        bad.ini], timeout=30)
    check(r.returncode == 1 and "tls_cert" in r.stderr,
          "a hub with a tls+tcp:// listen URL and no tls_cert exits 1 "
          "naming tls_cert", r.stderr)

    # 2. Hub A: TLS and plain listeners, TLS nudges.
    plain_port = bstest.free_port()
    hub = env.hub(pg, scheme="tls+tcp", publish="tls+tcp://127.0.0.1:%d"
                  % bstest.free_port(), extra=tls_keys)
    hub.settings["listen"] = "%s, tcp://127.0.0.1:%d" % (hub.url, plain_port)
    hub.write_config()
    bstest.setup_center(pg, hub)
    keys = {b: hub.branch_add(b) for b in
            ("b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9")}
    hub.start()
    check("HUB-KEY-PERMS" in hub.proc.log_text()
          and hub_key in hub.proc.log_text(),
          "the hub warns that its tls_key is readable by others")

    fail_opts = {"request_timeout_ms": 1500, "backoff_max_ms": 500}
    good = env.agent("good", "b1", keys["b1"], hub.url, tls_ca=ca.crt,
                     tls_server_name="localhost")
    os.chmod(good.ini, 0o600)
    side = env.agent("side", "b6", keys["b6"],
                     "tcp://127.0.0.1:%d" % plain_port)
    os.chmod(side.ini, 0o644)
    plain = env.agent("plain", "b2", keys["b2"],
                      hub.url.replace("tls+tcp://", "tcp://"), **fail_opts)
    wrong = env.agent("wrongca", "b3", keys["b3"], hub.url,
                      tls_ca=other.crt, tls_server_name="localhost",
                      **fail_opts)
    noname = env.agent("noname", "b9", keys["b9"], hub.url, tls_ca=ca.crt,
                       **fail_opts)
    agents = (good, side, plain, wrong, noname)
    for a in agents:
        a.init()
        bstest.possim_run(a.db, sales=SALES, seed=7)
        a.start()

    good.wait_drained(timeout=60, hub=hub)
    n = bstest.check_replicated(pg, hub, good)
    check(n > SALES, "the agent with the right tls_ca drained %d rows over "
          "tls+tcp://" % n)
    side.wait_drained(timeout=60, hub=hub)
    bstest.check_replicated(pg, hub, side)
    check(True, "an agent on the tcp:// URL beside the TLS one drains too")

    # 3 and 4: the failures say what to fix.
    wait_log(plain, "may be listening with TLS", 20,
             "a plaintext agent dialing the TLS port logs that the hub may "
             "be listening with TLS")
    wait_log(wrong, "certificate is not signed by a CA in tls_ca", 20,
             "an agent with the wrong tls_ca logs that the hub's "
             "certificate is not signed by a CA in tls_ca")
    wait_log(noname, 'does not name "127.0.0.1"; set tls_server_name', 20,
             "an agent whose URL has an IP address and no tls_server_name "
             "logs that the certificate does not name it (mbedTLS matches "
             "DNS names only)")
    check(plain.alive() and wrong.alive() and noname.alive(),
          "they keep running, retrying with backoff")
    check(all(nothing_applied(pg, b) for b in ("b2", "b3", "b9")),
          "nothing of theirs was applied")

    # 5. The ini file holds the key: readable by others is warned about.
    check("AGENT-KEY-PERMS" in side.proc.log_text(),
          "an agent whose ini file (inline key) is world-readable warns "
          "AGENT-KEY-PERMS")
    check("AGENT-KEY-PERMS" not in good.proc.log_text(),
          "an agent whose ini file is mode 600 does not")
    for a in agents:
        check_eq(a.stop(), 0, "%s exits 0 on SIGTERM" % a.name)
    check_eq(hub.stop(), 0, "hub A exits 0 on SIGTERM")

    # A key that is not the certificate's, or a missing file: exit 1.
    for key, want in ((b4_key, "is not the private key of the certificate "
                       "in tls_cert"),
                      (hub_key + ".missing", 'could not read tls_key "%s'
                       % hub_key)):
        bad.settings.update(tls_keys, tls_key=key)
        bad.write_config()
        r = bstest.run_cmd([bstest.binary("branchsync-hub"), "run", "-c",
                            bad.ini], timeout=30)
        check(r.returncode == 1 and want in r.stderr,
              "a hub whose tls_key %s exits 1: %s" % (
                  "does not match tls_cert" if key == b4_key
                  else "cannot be read", want), r.stderr)

    # 6. Client certificates and a plain listener beside: refused.
    mixed = env.hub(pg, name="hub-mixed", scheme="tls+tcp",
                    extra=dict(tls_keys, tls_client_ca=ca.crt))
    plain_url = "tcp://127.0.0.1:%d" % bstest.free_port()
    mixed.settings["listen"] = "%s, %s" % (mixed.url, plain_url)
    mixed.write_config()
    r = bstest.run_cmd([bstest.binary("branchsync-hub"), "run", "-c",
                        mixed.ini], timeout=30)
    check(r.returncode == 1 and plain_url in r.stderr
          and "is not tls+tcp://, while \"tls_client_ca\" is set"
          in r.stderr,
          "a hub with tls_client_ca and a plain tcp:// listener exits 1 "
          "naming both", r.stderr)
    check(not bstest.port_open(int(plain_url.rsplit(":", 1)[1])),
          "and listens nowhere")

    # Hub B requires client certificates.
    hub_b = env.hub(pg, name="hub-mtls", scheme="tls+tcp",
                    extra=dict(tls_keys, tls_client_ca=ca.crt))
    hub_b.start()
    cn_checked = "HUB-TLS-NO-CN" not in hub_b.proc.log_text()
    tls = {"tls_ca": ca.crt, "tls_server_name": "localhost"}
    mtls = env.agent("mtls", "b4", keys["b4"], hub_b.url, tls_cert=b4_crt,
                     tls_key=b4_key, **tls)
    nocert = env.agent("nocert", "b7", keys["b7"], hub_b.url, **tls,
                       **fail_opts)
    othercert = env.agent("othercert", "b8", keys["b8"], hub_b.url,
                          tls_cert=ob_crt, tls_key=ob_key, **tls,
                          **fail_opts)
    stolen = env.agent("stolen", "b5", keys["b5"], hub_b.url,
                       tls_cert=b4_crt, tls_key=b4_key, **tls, **fail_opts)
    agents = (mtls, nocert, othercert, stolen)
    for a in agents:
        a.init()
        bstest.possim_run(a.db, sales=SALES, seed=8)
        a.start()
    mtls.wait_drained(timeout=60, hub=hub_b)
    bstest.check_replicated(pg, hub_b, mtls)
    check(True, "with tls_client_ca, the agent whose certificate's CN is "
          "its branch code drains")
    wait_log(nocert, "set tls_cert and tls_key", 20,
             "an agent without a client certificate logs that it needs "
             "tls_cert and tls_key")
    wait_log(othercert, "the hub refused our client certificate", 20,
             "an agent with a certificate of another CA logs that the hub "
             "wants a certificate signed by its tls_client_ca")
    check(nothing_applied(pg, "b7") and nothing_applied(pg, "b8"),
          "nothing of theirs was applied")
    if cn_checked:
        wait_log(hub_b.proc, 'authentication failed: the client '
                 'certificate is for "b4"', 20,
                 "the hub refuses b5 presenting b4's certificate, "
                 "HUB-AUTH-FAIL naming both")
        wait_log(stolen, "authentication failed", 10,
                 "the agent logs the authentication failure")
        check(nothing_applied(pg, "b5"), "nothing of b5 was applied")
        st, body = hub_b.http_get("/metrics")[:2]
        m = bstest.parse_prom(body)
        check(m.get(("branchsync_hub_auth_failures_total", ""), 0) >= 1,
              "the refusal is counted as an authentication failure")
    else:
        check("needs 1.6" in hub_b.proc.log_text(),
              "this nng cannot report a client certificate's CN: the hub "
              "says so at start (HUB-TLS-NO-CN); CN = branch check not "
              "applicable")
    for a in agents:
        check_eq(a.stop(), 0, "%s exits 0 on SIGTERM" % a.name)
    check_eq(hub_b.stop(), 0, "hub B exits 0 on SIGTERM")


bstest.run(main)
