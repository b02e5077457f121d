"""bswire: build and read branchsync wire messages from Python tests.

The format is proto/include/proto/msg.h, version 1: every message is a
msgpack array [version, type, body-map]. Tests build messages here and
send them to a real hub with tests/tools/bs-rawclient (one nng req0
exchange), so they can send what a well-behaved agent never would: the
same batch twice, overlapping batches, wrong keys, garbage.
"""

import subprocess

import msgpack

VERSION = 1

HELLO, WELCOME, PUSH, ACK, PULL, CHANGES, ERROR = 1, 2, 3, 4, 5, 6, 7
TYPE_NAMES = {1: "hello", 2: "welcome", 3: "push", 4: "ack", 7: "error"}

OP_NONE, OP_UPSERT, OP_DELETE = 0, 1, 2
OUT_DUPLICATE, OUT_CONFLICT, OUT_REJECTED = 1, 2, 3

# proto_err (proto/include/proto/err.h)
(E_OK, E_NOMEM, E_INVAL, E_PROTO, E_TIMEDOUT, E_CLOSED, E_DB, E_IO, E_AUTH,
 E_TOOBIG, E_VERSION) = range(11)


class NoReply(Exception):
    """bs-rawclient got no reply (timeout, refused, closed)."""


def _hdr(branch, key, log_id, queue_events=0, queue_bytes=0,
         oldest_age_s=0, till=None):
    h = {"branch": branch, "key": key, "log_id": log_id,
         "queue_events": queue_events, "queue_bytes": queue_bytes,
         "oldest_age_s": oldest_age_s}
    if till is not None:
        h["till"] = till
    return h


def pack(mtype, body, version=VERSION):
    return msgpack.packb([version, mtype, body], use_bin_type=True)


def hello(branch, key, log_id, high_seq=0, version="test-0", **hdr):
    body = _hdr(branch, key, log_id, **hdr)
    body.update({"high_seq": high_seq, "version": version})
    return pack(HELLO, body)


def push(branch, key, log_id, tables, events, **hdr):
    """tables: [(name, [columns, key columns first], nkey)];
    events: [(seq, tag, table_index, op, [values])]."""
    body = _hdr(branch, key, log_id, **hdr)
    body["tables"] = [[n, list(c), k] for n, c, k in tables]
    body["events"] = [[s, t, ti, op, list(v)] for s, t, ti, op, v in events]
    return pack(PUSH, body)


def decode(raw):
    """(type, body) of a reply; raises ValueError if it is not a message."""
    m = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    if (not isinstance(m, list) or len(m) != 3 or m[0] != VERSION
            or not isinstance(m[2], dict)):
        raise ValueError("not a version-1 message: %r" % (m,))
    return m[1], m[2]


def exchange_raw(rawclient, url, raw, timeout_ms=5000):
    """Sends raw bytes; returns the raw reply bytes or raises NoReply."""
    r = subprocess.run([rawclient, url, str(timeout_ms)], input=raw,
                       capture_output=True,
                       timeout=timeout_ms / 1000.0 + 30)
    if r.returncode != 0:
        raise NoReply("bs-rawclient exited %d: %s"
                      % (r.returncode, r.stderr.decode(errors="replace")
                         .strip()))
    return r.stdout


def request(rawclient, url, raw, timeout_ms=5000):
    """Sends raw bytes; returns the decoded (type, body) reply."""
    return decode(exchange_raw(rawclient, url, raw, timeout_ms))
