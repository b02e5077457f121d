"""bssp: nng's SP protocol over TCP (tcp://) by hand, for hostile tests.

    c = SP(port)                      # connect and handshake as req0
    raw = c.request(b"...")           # one request, the raw reply
    t, body = c.signer.send(W.hello(...))  # signed (bswire.Signer)
    c.close()

The hub may refuse the connection or close it (an address shut out for
failing too often): that raises Closed, from the constructor too.

frames(stream) splits a captured byte stream of one direction of a
connection (tests/lib/faultproxy.py records them) into its messages.
"""

import socket
import struct

import bswire
from bsbase import Failure, scaled

SP_REQ = b"\x00SP\x00\x00\x30\x00\x00"  # SP header, protocol req0 (48)


class Closed(Exception):
    """The hub closed the connection (an acceptable answer)."""


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except (ConnectionResetError, socket.timeout) as e:
            raise Closed(str(e))
        if not chunk:
            raise Closed("closed")
        buf += chunk
    return buf


class SP:
    """A req0 peer over TCP: handshake, then 8-byte big-endian length
    frames whose payload starts with a 4-byte request id."""

    def __init__(self, port, timeout=10):
        try:
            self.s = socket.create_connection(("127.0.0.1", port),
                                              timeout=scaled(timeout))
            self.s.sendall(SP_REQ)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(str(e))
        try:
            peer = recv_exact(self.s, 8)
        except Closed:
            self.s.close()
            raise
        if peer[:4] != b"\x00SP\x00":
            raise Failure("not an SP peer: %r" % peer)
        self.rid = 0x80000001
        self.signer = bswire.Signer(self.request)

    def send_frame(self, payload):
        self.s.sendall(struct.pack(">Q", len(payload)) + payload)

    def request(self, body):
        """The reply body, or raises Closed."""
        self.rid += 1
        try:
            self.send_frame(struct.pack(">I", self.rid) + body)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Closed(str(e))
        n = struct.unpack(">Q", recv_exact(self.s, 8))[0]
        if n > 64 << 20:
            raise Failure("reply of %d bytes" % n)
        data = recv_exact(self.s, n)
        return data[4:]

    def close(self):
        self.s.close()


def frames(stream):
    """The messages of one direction of a captured SP/TCP connection:
    after the 8-byte handshake, each frame is an 8-byte length and a
    payload whose first 4 bytes are the request id. A cut-off last frame
    is left out."""
    out = []
    i = 8
    while i + 8 <= len(stream):
        n = struct.unpack(">Q", stream[i:i + 8])[0]
        if i + 8 + n > len(stream):
            break
        out.append(stream[i + 12:i + 8 + n])
        i += 8 + n
    return out
