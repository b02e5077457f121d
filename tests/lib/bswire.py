"""bswire: build and read branchsync wire messages from Python tests.

The format is proto/include/proto/msg.h, version 2: a request is a msgpack
array [2, type, auth-map, body-bin] whose auth map names the branch (and
till) and carries a MAC over the body's bytes (proto/auth.h), signed for
the nonce the hub gave the connection. The key itself never travels.
Version 1, [1, type, body-map] with the key in the body, is what an old
agent sends; a hub refuses it unless accept_plain_keys.

Tests build requests here (hello, push, pull: a Request, signed when
sent) and send them to a real hub with tests/tools/bs-rawclient, whose
session mode keeps one connection for the nonce exchange, so they can
send what a well-behaved agent never would: the same batch twice,
overlapping batches, wrong keys, replays, garbage (raw bytes are sent as
they are).
"""

import hashlib
import hmac
import struct
import subprocess

import msgpack

VERSION = 2
PLAIN = 1

HELLO, WELCOME, PUSH, ACK, PULL, CHANGES, ERROR = 1, 2, 3, 4, 5, 6, 7
TYPE_NAMES = {1: "hello", 2: "welcome", 3: "push", 4: "ack", 5: "pull",
              6: "changes", 7: "error"}

OP_NONE, OP_UPSERT, OP_DELETE = 0, 1, 2
OUT_DUPLICATE, OUT_CONFLICT, OUT_REJECTED = 1, 2, 3

# proto_err (proto/include/proto/err.h)
(E_OK, E_NOMEM, E_INVAL, E_PROTO, E_TIMEDOUT, E_CLOSED, E_DB, E_IO, E_AUTH,
 E_TOOBIG, E_VERSION, E_NONCE) = range(12)

MAX_NONCES = 8


class NoReply(Exception):
    """bs-rawclient got no reply (timeout, refused, closed)."""


class BadMac(Exception):
    """An answer's MAC did not match the request it answers."""


def secret(key):
    """S = SHA-256 of the key's text: the HMAC key of both sides."""
    return hashlib.sha256(key.encode()).digest()


def req_mac(s, mtype, ctr, branch, till, nonces, body):
    """The MAC of a request (proto/auth.h)."""
    till = till or ""
    data = (b"bs2q" + bytes([mtype]) + struct.pack(">Q", ctr)
            + bytes([len(branch)]) + branch.encode()
            + bytes([len(till)]) + till.encode()
            + bytes([len(nonces)]) + b"".join(nonces)
            + hashlib.sha256(body).digest())
    return hmac.new(s, data, hashlib.sha256).digest()


def rep_mac(s, mtype, request_mac, body):
    """The MAC of an answer to the request whose MAC was request_mac."""
    data = (b"bs2r" + bytes([mtype]) + request_mac
            + hashlib.sha256(body).digest())
    return hmac.new(s, data, hashlib.sha256).digest()


def _hdr(log_id, queue_events=0, queue_bytes=0, oldest_age_s=0):
    return {"log_id": log_id, "queue_events": queue_events,
            "queue_bytes": queue_bytes, "oldest_age_s": oldest_age_s}


class Request:
    """A request before it is signed: type, credential, body bytes.

    body is the msgpack of the body map (bytes, so a test may alter it:
    replace() returns a copy with bytes replaced). seal() makes the
    version 2 message for nonces and a counter; plain() the version 1
    message an old agent would send, with the key in it."""

    def __init__(self, mtype, branch, key, fields, till=None, body=None):
        self.mtype = mtype
        self.branch = branch
        self.key = key
        self.till = till
        self.fields = fields
        self.body = body if body is not None else msgpack.packb(
            fields, use_bin_type=True)
        self.mac = None

    def replace(self, old, new):
        return Request(self.mtype, self.branch, self.key, self.fields,
                       self.till, self.body.replace(old, new))

    def __contains__(self, b):
        return b in self.body

    def seal(self, nonces, ctr, key=None):
        """The version 2 bytes, signed with key (default: the request's
        own) for nonces and counter ctr; self.mac keeps the MAC."""
        auth = {"branch": self.branch, "ctr": ctr, "nonces": list(nonces)}
        if self.till is not None:
            auth["till"] = self.till
        self.mac = req_mac(secret(key or self.key), self.mtype, ctr,
                           self.branch, self.till, list(nonces), self.body)
        auth["mac"] = self.mac
        return msgpack.packb([VERSION, self.mtype, auth, self.body],
                             use_bin_type=True)

    def plain(self):
        """The version 1 message: the key travels in the body."""
        body = dict(self.fields, branch=self.branch, key=self.key)
        if self.till is not None:
            body["till"] = self.till
        return msgpack.packb([PLAIN, self.mtype, body], use_bin_type=True)


def hello(branch, key, log_id, high_seq=0, version="test-0", till=None,
          **hdr):
    f = _hdr(log_id, **hdr)
    f.update({"high_seq": high_seq, "version": version})
    return Request(HELLO, branch, key, f, till)


def push(branch, key, log_id, tables, events, till=None, **hdr):
    """tables: [(name, [columns, key columns first], nkey)];
    events: [(seq, tag, table_index, op, [values])]."""
    f = _hdr(log_id, **hdr)
    f["tables"] = [[n, list(c), k] for n, c, k in tables]
    f["events"] = [[s, t, ti, op, list(v)] for s, t, ti, op, v in events]
    return Request(PUSH, branch, key, f, till)


def pull(branch, key, log_id, cursor=0, table="", max_rows=1000,
         max_bytes=1 << 20, till=None, **hdr):
    f = _hdr(log_id, **hdr)
    f.update({"cursor": cursor, "table": table, "max_rows": max_rows,
              "max_bytes": max_bytes})
    return Request(PULL, branch, key, f, till)


def pack(mtype, body, version=PLAIN):
    """A message with a body map: version 1 by default (hostile inputs)."""
    return msgpack.packb([version, mtype, body], use_bin_type=True)


def decode_env(raw):
    """(version, type, auth map, body map, body bytes) of a message of
    either version (auth None and body bytes None for version 1); raises
    ValueError if it is not one."""
    m = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    if isinstance(m, list) and len(m) == 3 and m[0] == PLAIN \
            and isinstance(m[2], dict):
        return PLAIN, m[1], None, m[2], None
    if (not isinstance(m, list) or len(m) != 4 or m[0] != VERSION
            or not isinstance(m[2], dict) or not isinstance(m[3], bytes)):
        raise ValueError("not a branchsync message: %r" % (m,))
    body = msgpack.unpackb(m[3], raw=False, strict_map_key=False)
    if not isinstance(body, dict):
        raise ValueError("body is not a map: %r" % (body,))
    return VERSION, m[1], m[2], body, m[3]


def decode(raw):
    """(type, body) of a reply of either version."""
    _, t, _, body, _ = decode_env(raw)
    return t, body


class Signer:
    """Signs requests for one connection, as the agent does: asks the hub
    for its nonce and signs again (at most MAX_NONCES + 1 tries), counts
    up, checks answers' MACs. exchange(raw) -> raw reply is the
    connection."""

    def __init__(self, exchange, ctr=0):
        self.exchange = exchange
        self.nonces = []
        self.ctr = ctr
        self.last = None  # (raw request, raw answer) of the last try

    def send(self, req, key=None):
        """(type, body) of the answer to req; raises BadMac if a signed
        answer's MAC does not match."""
        for _ in range(MAX_NONCES + 1):
            self.ctr += 1
            raw = req.seal(self.nonces[-MAX_NONCES:], self.ctr, key)
            answer = self.exchange(raw)
            self.last = (raw, answer)
            v, t, auth, body, body_raw = decode_env(answer)
            if v == VERSION and "mac" in auth:
                want = rep_mac(secret(key or req.key), t, req.mac, body_raw)
                if auth["mac"] != want:
                    raise BadMac("answer MAC mismatch: %r" % (body,))
            if (t == ERROR and body.get("code") == E_NONCE and auth
                    and "nonce" in auth and "mac" not in auth):
                if auth["nonce"] not in self.nonces:
                    self.nonces.append(auth["nonce"])
                continue
            return t, body
        raise NoReply("the hub kept asking for a nonce")


class Session:
    """One connection to a hub through bs-rawclient's session mode:
    exchange(raw) sends one message and returns the raw reply."""

    def __init__(self, rawclient, url, timeout_ms=5000):
        self.timeout_ms = timeout_ms
        self.p = subprocess.Popen([rawclient, url, str(timeout_ms), "-s"],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.signer = Signer(self.exchange)

    def exchange(self, raw):
        try:
            self.p.stdin.write(struct.pack(">I", len(raw)) + raw)
            self.p.stdin.flush()
            head = self.p.stdout.read(4)
        except (BrokenPipeError, OSError):
            head = b""
        if len(head) != 4:
            self.close()
            raise NoReply("bs-rawclient: %s" % self.p.stderr.read().decode(
                errors="replace").strip())
        n = struct.unpack(">I", head)[0]
        return self.p.stdout.read(n)

    def request(self, req, key=None):
        """(type, body) of the answer to a Request, signed."""
        return self.signer.send(req, key)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(timeout=self.timeout_ms / 1000.0 + 10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        for f in (self.p.stdout, self.p.stderr):
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def exchange_raw(rawclient, url, raw, timeout_ms=5000):
    """Sends raw bytes on a new connection; returns the raw reply bytes
    or raises NoReply."""
    r = subprocess.run([rawclient, url, str(timeout_ms)], input=raw,
                       capture_output=True,
                       timeout=timeout_ms / 1000.0 + 30)
    if r.returncode != 0:
        raise NoReply("bs-rawclient exited %d: %s"
                      % (r.returncode, r.stderr.decode(errors="replace")
                         .strip()))
    return r.stdout


def request(rawclient, url, req, timeout_ms=5000):
    """Sends a Request (signed, on a connection of its own) or raw bytes
    (as they are); returns the decoded (type, body) reply."""
    if isinstance(req, Request):
        with Session(rawclient, url, timeout_ms) as s:
            return s.request(req)
    return decode(exchange_raw(rawclient, url, req, timeout_ms))
