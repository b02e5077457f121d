"""bssp: nng's SP protocol over TCP (tcp://) by hand, for hostile tests.

    c = SP(port)                      # connect and handshake as req0
    raw = c.request(b"...")           # one request, the raw reply
    t, body = c.signer.send(W.hello(...))  # signed (bswire.Signer)
    c.close()

The hub may refuse the connection or close it (an address shut out for
failing too often): that raises Closed, from the constructor too.

frames(stream) splits a captured byte stream of one direction of a
connection (tests/lib/faultproxy.py records them) into its messages.
Relay is a man in the middle that may answer requests itself, with
forged answers.
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


SP_REP = b"\x00SP\x00\x00\x31\x00\x00"  # SP header, protocol rep0 (49)


def _recv_frame(s):
    n = struct.unpack(">Q", recv_exact(s, 8))[0]
    return recv_exact(s, n)


def _send_frame(s, payload):
    s.sendall(struct.pack(">Q", len(payload)) + payload)


class Relay:
    """A man in the middle between req0 clients (agents) and a hub on
    127.0.0.1:target_port, message by message: every request goes to the
    hub and its answer back, unless hook(message) returns bytes, which go
    back to the client as the answer while the request never reaches the
    hub. Listens on 127.0.0.1:self.port (self.url); close() ends it."""

    def __init__(self, target_port, hook=None):
        import threading
        self.target_port = target_port
        self.hook = hook
        self._closed = False
        self._socks = []
        self._lock = threading.Lock()
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", 0))
        self._ls.listen(16)
        self._ls.settimeout(0.05)
        self.port = self._ls.getsockname()[1]
        self.url = "tcp://127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self._closed:
            try:
                c, _ = self._ls.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            c.settimeout(None)
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        h = None
        try:
            h = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._socks += [c, h]
            h.sendall(recv_exact(c, 8))
            c.sendall(recv_exact(h, 8))
            while not self._closed:
                payload = _recv_frame(c)
                out = self.hook(payload[4:]) if self.hook else None
                if out is not None:
                    _send_frame(c, payload[:4] + out)
                    continue
                _send_frame(h, payload)
                _send_frame(c, _recv_frame(h))
        except (Closed, OSError):
            pass
        finally:
            for s in (c, h):
                if s is not None:
                    s.close()

    def close(self):
        self._closed = True
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        self._ls.close()
