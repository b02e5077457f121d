"""test_http_security: the operator listeners answer only for their own
names, tell browsers to run nothing but their own files, and the hub's
can ask for a password and speak HTTPS.

1. The hub's page and /api, and the agent's /status, refuse a request
   whose Host is another site's name (DNS rebinding) with 403, and answer
   one for an address, localhost, or a name in http_allowed_hosts.
2. Every answer carries X-Content-Type-Options: nosniff and a
   Content-Security-Policy that allows only the listener's own script and
   style; the page's script and style are files of their own.
3. With http_users_file, every path asks for Basic authentication (401
   with WWW-Authenticate); a wrong password or user is refused, the right
   one answers. A users file with a line that is not user:hash stops the
   hub with file:line.
4. With http_tls_cert and http_tls_key the listener speaks HTTPS: a
   client that trusts the CA gets the page, plain HTTP gets nothing.
5. A listener on a non-loopback address without a users file warns
   HUB-HTTP-OPEN.
"""
import base64
import crypt
import http.client
import os
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import bstest  # noqa: E402
from bstls import CA  # noqa: E402
from bstest import check, check_eq  # noqa: E402


def get(port, path, host=None, auth=None, context=None):
    """GET path from 127.0.0.1:port with the given Host and Basic
    credentials (user, password); returns (status, headers, body)."""
    if context is not None:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                        context=context)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % auth).encode()).decode()
    try:
        c.putrequest("GET", path, skip_host=True)
        c.putheader("Host", host or "127.0.0.1:%d" % port)
        for k, v in headers.items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, \
            r.read().decode("utf-8", "replace")
    finally:
        c.close()


def main(env):
    pg = env.postgres()
    hub = env.hub(pg, extra={"http_allowed_hosts": "hub.example, ops.example"})
    bstest.setup_center(pg, hub)
    key = hub.branch_add("b1")
    hub.start()
    agent = env.agent("pos", "b1", key, hub.url)
    agent.init()
    agent.start()
    agent.wait_drained(hub=hub)
    hp, ap = hub.http_port, agent.http_port
    bstest.wait_until(lambda: bstest.port_open(ap), 30,
                      "the agent's status listener", alive=[agent.proc])

    # 1. Host allow-list.
    for path in ("/", "/api/status", "/metrics"):
        code, _, body = get(hp, path, host="evil.example:%d" % hp)
        check_eq(code, 403, "hub %s refuses Host evil.example" % path)
    code, _, body = get(hp, "/api/rejects", host="evil.example")
    check_eq(code, 403, "hub /api/rejects refuses Host evil.example "
             "without a port too")
    for host in ("127.0.0.1:%d" % hp, "localhost:%d" % hp, "localhost",
                 "hub.example:%d" % hp, "OPS.example", "[::1]:%d" % hp):
        code, _, _ = get(hp, "/api/status", host=host)
        check_eq(code, 200, "hub answers Host %s" % host)
    for path in ("/status", "/metrics"):
        code, _, _ = get(ap, path, host="evil.example:%d" % ap)
        check_eq(code, 403, "agent %s refuses Host evil.example" % path)
        code, _, _ = get(ap, path, host="localhost:%d" % ap)
        check_eq(code, 200, "agent %s answers Host localhost" % path)
    code, _, _ = get(ap, "/status", host="hub.example")
    check_eq(code, 403, "the agent accepts no name but localhost")

    # 2. Headers, and the page's own files.
    code, h, page = get(hp, "/")
    check_eq(code, 200, "the page loads")
    check_eq(h.get("x-content-type-options"), "nosniff", "page: nosniff")
    csp = h.get("content-security-policy", "")
    check("default-src 'none'" in csp and "script-src 'self'" in csp
          and "frame-ancestors 'none'" in csp and "unsafe" not in csp,
          "page: a Content-Security-Policy without unsafe-inline", csp)
    check("<script src=\"app.js\">" in page and "<script>" not in page
          and "<style>" not in page, "the page has no inline script or "
          "style")
    for path, ctype, needle in (("/app.js", "text/javascript", "function"),
                                ("/app.css", "text/css", "{")):
        code, h, body = get(hp, path)
        check(code == 200 and h.get("content-type", "").startswith(ctype)
              and needle in body, "%s is served as %s" % (path, ctype))
    code, h, _ = get(ap, "/status")
    check(h.get("x-content-type-options") == "nosniff"
          and "default-src 'none'" in h.get("content-security-policy", ""),
          "agent /status: nosniff and the policy")
    code, h, _ = get(hp, "/nope", host="localhost")
    check(code == 404 and h.get("x-content-type-options") == "nosniff",
          "a 404 carries the headers too")
    hub.stop()

    # 3. Basic authentication.
    users = os.path.join(env.dir, "users")
    with open(users, "w") as f:
        f.write("# operators\nalice:%s\nbob:%s\n" % (
            crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_SHA512)),
            crypt.crypt("other", crypt.mksalt(crypt.METHOD_SHA512))))
    os.chmod(users, 0o600)
    hub.settings["http_users_file"] = users
    hub.write_config()
    hub.start()
    for path in ("/", "/api/status", "/metrics", "/app.js"):
        code, h, _ = get(hp, path)
        check(code == 401 and h.get("www-authenticate", "").startswith(
            "Basic "), "%s without a password: 401 asking for Basic" % path)
    for cred in (("alice", "wrong"), ("bob", "s3cret"), ("carol", "x"),
                 ("alice", "")):
        code, _, _ = get(hp, "/api/status", auth=cred)
        check_eq(code, 401, "user %s with a wrong password is refused"
                 % cred[0])
    for _ in range(3):  # the second and third come from the cache
        code, _, body = get(hp, "/api/status", auth=("alice", "s3cret"))
        check(code == 200 and '"b1"' in body, "alice with her password "
              "reads /api/status")
    code, _, _ = get(hp, "/api/status", auth=("bob", "other"))
    check_eq(code, 200, "bob with his password too")
    code, _, _ = get(hp, "/api/status", host="evil.example",
                     auth=("alice", "s3cret"))
    check_eq(code, 403, "a password does not lift the Host check")
    hub.stop()
    with open(users, "a") as f:
        f.write("mallory\n")
    r = bstest.run_cmd([bstest.binary("branchsync-hub"), "run", "-c",
                        hub.ini], timeout=30)
    check(r.returncode == 1 and "users:4: expected user:hash" in r.stderr,
          "a users file with a bad line stops the hub with file:line",
          r.stderr)

    # 4. HTTPS.
    ca = CA(env.dir, "ca")
    crt, tkey = ca.issue("web", "localhost",
                         "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    del hub.settings["http_users_file"]
    hub.settings.update(http_tls_cert=crt, http_tls_key=tkey)
    hub.write_config()
    hub.start()
    ctx = ssl.create_default_context(cafile=ca.crt)
    code, h, body = get(hp, "/api/status", context=ctx)
    check(code == 200 and '"b1"' in body, "the listener speaks HTTPS")
    try:
        code, _, _ = get(hp, "/api/status")
        plain = code
    except (OSError, http.client.HTTPException) as e:
        plain = type(e).__name__
    check(plain != 200, "plain HTTP gets no answer from the HTTPS listener",
          plain)
    hub.stop()

    # 5. A listener others can reach, with no password.
    del hub.settings["http_tls_cert"], hub.settings["http_tls_key"]
    hub.settings["http_listen"] = "0.0.0.0:%d" % hp
    hub.write_config()
    hub.start()
    bstest.wait_until(lambda: "HUB-HTTP-OPEN" in hub.proc.log_text(), 10,
                      "the warning")
    check(True, "a listener on 0.0.0.0 without http_users_file warns "
          "HUB-HTTP-OPEN")
    check_eq(hub.stop(), 0, "hub exits 0 on SIGTERM")
    check_eq(agent.stop(), 0, "agent exits 0 on SIGTERM")


bstest.run(main)
