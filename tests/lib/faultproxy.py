"""faultproxy: a loopback TCP proxy the fault tests control.

    proxy = FaultProxy(hub.port)      # listens on 127.0.0.1:proxy.port
    agent = env.agent(..., hubs="tcp://127.0.0.1:%d" % proxy.port)
    proxy.drop_after(700)             # next client->hub data: 700 bytes
    proxy.cut()                       # close every connection now
    proxy.stall("s2c")                # hold the hub's answers
    proxy.heal()                      # back to plain forwarding
    proxy.close()

Faults (each applies to the connections open now and to new ones):

  cut()            close every connection at once (both sides see EOF or
                   a reset); new connections are accepted as usual.
  delay(ms)        forward each chunk only after ms milliseconds.
  stall(way)       stop forwarding but keep the connections open; way is
                   "both", "c2s" (client to hub) or "s2c" (hub to
                   client). Data waits in the proxy; resume() sends it on.
  drop_after(n)    forward n more bytes of the next client->hub data, then
                   close that connection: a message cut in the middle.
  blackhole()      accept and read, never forward or answer; data read
                   meanwhile is thrown away. Connections to the hub are
                   made only when the proxy heals.
  heal()           every fault off; held data is forwarded.

Counters: bytes_c2s, bytes_s2c (forwarded), connections (accepted), cuts
(connections closed by a fault), dropped_bytes (read and thrown away).

With record=True the proxy keeps every byte it forwards, per connection
and direction: captured() returns [(client->hub bytes, hub->client
bytes)], one pair per connection, in the order they came (what an
eavesdropper on the path would see).

Threads only, standard library only; every loop wakes at least every 50 ms
and ends when the proxy is closed. Only 127.0.0.1 is used.
"""

import select
import socket
import threading
import time

_TICK = 0.05
_CHUNK = 65536


class _Conn:
    """One client connection and its connection to the target."""

    def __init__(self, proxy, client):
        self.proxy = proxy
        self.client = client
        self.server = None
        self.closed = False
        self.lock = threading.Lock()
        # Data read but not yet forwarded, per direction.
        self.pending = {"c2s": bytearray(), "s2c": bytearray()}
        # Data forwarded, per direction, when the proxy records.
        self.record = None
        if proxy._record:
            self.record = {"c2s": bytearray(), "s2c": bytearray()}

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.server):
            if s is None:
                continue
            try:
                # RST instead of FIN: the peer sees the loss at once.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def run(self):
        p = self.proxy
        try:
            while not self.closed and not p._closed:
                if self.server is None:
                    if p._blackhole:
                        self._drain_client()
                        continue
                    try:
                        self.server = socket.create_connection(
                            ("127.0.0.1", p.target_port), timeout=2)
                        self.server.settimeout(None)
                    except OSError:
                        break  # target down: the client sees a close
                if not self._step():
                    break
        finally:
            self.close()
            p._forget(self)

    def _drain_client(self):
        r, _, _ = select.select([self.client], [], [], _TICK)
        if r:
            data = self.client.recv(_CHUNK)
            if not data:
                self.closed = True
                return
            with self.proxy._lock:
                self.proxy.dropped_bytes += len(data)

    def _step(self):
        """One select round; False when the connection is over."""
        p = self.proxy
        socks = []
        if not p._stalled("c2s") and not p._blackhole:
            socks.append(self.client)
        if not p._stalled("s2c") and not p._blackhole:
            socks.append(self.server)
        if p._blackhole:
            socks = [self.client, self.server]
        # Data held while stalled goes out first once it is allowed.
        for way in ("c2s", "s2c"):
            if self.pending[way] and not p._stalled(way) \
                    and not p._blackhole:
                data = bytes(self.pending[way])
                self.pending[way].clear()
                if not self._forward(way, data):
                    return False
        if not socks:
            time.sleep(_TICK)
            return True
        try:
            r, _, _ = select.select(socks, [], [], _TICK)
        except (OSError, ValueError):
            return False
        for s in r:
            way = "c2s" if s is self.client else "s2c"
            try:
                data = s.recv(_CHUNK)
            except OSError:
                return False
            if not data:
                return False
            if p._blackhole:
                with p._lock:
                    p.dropped_bytes += len(data)
                continue
            if p._stalled(way):
                self.pending[way] += data
                continue
            if not self._forward(way, data):
                return False
        return True

    def _forward(self, way, data):
        p = self.proxy
        if p._delay_s > 0:
            time.sleep(p._delay_s)
        cut_after = False
        if way == "c2s":
            with p._lock:
                if p._drop_left is not None:
                    n = min(p._drop_left, len(data))
                    p.dropped_bytes += len(data) - n
                    data = data[:n]
                    p._drop_left -= n
                    if p._drop_left == 0:
                        p._drop_left = None
                        p.cuts += 1
                        cut_after = True
        dst = self.server if way == "c2s" else self.client
        if self.record is not None:
            with p._lock:
                self.record[way] += data
        try:
            if data:
                dst.sendall(data)
        except OSError:
            return False
        with p._lock:
            if way == "c2s":
                p.bytes_c2s += len(data)
            else:
                p.bytes_s2c += len(data)
        return not cut_after


class FaultProxy:
    """A TCP proxy from 127.0.0.1:port to 127.0.0.1:target_port."""

    def __init__(self, target_port, port=0, record=False):
        self.target_port = target_port
        self._record = record
        self._records = []
        self._lock = threading.Lock()
        self._conns = set()
        self._closed = False
        self._stall = set()
        self._blackhole = False
        self._delay_s = 0.0
        self._drop_left = None
        self.bytes_c2s = 0
        self.bytes_s2c = 0
        self.connections = 0
        self.cuts = 0
        self.dropped_bytes = 0
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", port))
        self._ls.listen(64)
        self._ls.settimeout(_TICK)
        self.port = self._ls.getsockname()[1]
        self.url = "tcp://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self._accept_loop,
                                        name="faultproxy-%d" % self.port,
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ faults

    def cut(self):
        """Closes every open connection now; returns how many."""
        with self._lock:
            conns = list(self._conns)
            self.cuts += len(conns)
        for c in conns:
            c.close()
        return len(conns)

    def delay(self, ms):
        self._delay_s = max(0, ms) / 1000.0

    def stall(self, way="both"):
        if way not in ("both", "c2s", "s2c"):
            raise ValueError("way must be both, c2s or s2c")
        with self._lock:
            self._stall |= {"c2s", "s2c"} if way == "both" else {way}

    def resume(self):
        with self._lock:
            self._stall.clear()

    def drop_after(self, n_bytes):
        """Forwards n_bytes more of the next client->hub data, then closes
        that connection (n_bytes >= 1)."""
        if n_bytes < 1:
            raise ValueError("n_bytes must be >= 1")
        with self._lock:
            self._drop_left = n_bytes

    def drop_pending(self):
        """True while a drop_after has not fired yet."""
        with self._lock:
            return self._drop_left is not None

    def blackhole(self):
        self._blackhole = True

    def heal(self):
        with self._lock:
            self._stall.clear()
            self._drop_left = None
        self._blackhole = False
        self._delay_s = 0.0

    def captured(self):
        """[(client->hub bytes, hub->client bytes)] of every connection so
        far (record=True), in the order they came."""
        with self._lock:
            return [(bytes(r["c2s"]), bytes(r["s2c"]))
                    for r in self._records]

    def open_connections(self):
        with self._lock:
            return len(self._conns)

    def counters(self):
        with self._lock:
            return {"bytes_c2s": self.bytes_c2s, "bytes_s2c": self.bytes_s2c,
                    "connections": self.connections, "cuts": self.cuts,
                    "dropped_bytes": self.dropped_bytes}

    def close(self):
        self._closed = True
        self.cut()
        self._thread.join(5)
        try:
            self._ls.close()
        except OSError:
            pass

    # --------------------------------------------------------- internals

    def _stalled(self, way):
        return way in self._stall

    def _forget(self, conn):
        with self._lock:
            self._conns.discard(conn)

    def _accept_loop(self):
        while not self._closed:
            try:
                cs, _ = self._ls.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            cs.settimeout(None)
            conn = _Conn(self, cs)
            with self._lock:
                if self._closed:
                    cs.close()
                    break
                self._conns.add(conn)
                if conn.record is not None:
                    self._records.append(conn.record)
                self.connections += 1
            threading.Thread(target=conn.run, daemon=True,
                             name="faultproxy-conn").start()
