"""A TCP fault proxy for the integration tests: sits between two real processes (a coordinator
and a worker) and, on the test's command, passes traffic, black-holes it (bytes are read and
thrown away, nothing answers: a network partition), delays it (each chunk is forwarded `delay`
seconds after it arrived, in order: late messages), or resets it (every connection is closed
with a TCP RST, new ones too). Standard library only; runs in the test's own process: one
accept thread per proxy and two pump threads per connection. `Link` pairs two proxies so one
worker is cut off in both directions (the coordinator's pings and pushes to it, and its own
registrations to the coordinator)."""
import socket
import struct
import threading
import time

from harness import free_port

PASS, BLACKHOLE, DELAY, RESET = "pass", "blackhole", "delay", "reset"


def _rst(sock):
    """Closes with an RST (SO_LINGER 0) rather than a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    """One proxied connection: client <-> upstream, a pump thread per direction."""

    def __init__(self, proxy, client, upstream):
        self.proxy = proxy
        self.socks = (client, upstream) if upstream else (client,)
        self.closed = False
        self.damaged = upstream is None  # bytes were thrown away: the stream is not whole
        pairs = ((client, upstream), (upstream, client)) if upstream else ((client, None),)
        for src, dst in pairs:
            threading.Thread(target=self.pump, args=(src, dst), daemon=True).start()

    def pump(self, src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.close(rst=False)
                return
            mode, delay = self.proxy.mode, self.proxy.delay
            if mode == BLACKHOLE or self.damaged:
                self.damaged = True
                self.proxy.dropped += len(data)
                continue
            if mode == RESET:
                self.close(rst=True)
                return
            if mode == DELAY:
                time.sleep(delay)  # in order: this direction's later bytes wait behind these
                self.proxy.delayed += len(data)
            try:
                dst.sendall(data)
                self.proxy.passed += len(data)
            except OSError:
                self.close(rst=False)
                return

    def close(self, rst):
        if self.closed:
            return
        self.closed = True
        for s in self.socks:
            if rst:
                _rst(s)
            else:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


class Proxy:
    """Listens on 127.0.0.1:`port` (a free one by default) and forwards to `target`
    ("host:port"). Mode changes apply to every connection at once."""

    def __init__(self, target, port=None):
        host, tport = target.rsplit(":", 1)
        self.target = (host, int(tport))
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.mode = PASS
        self.delay = 0.0
        self.passed = self.dropped = self.delayed = 0  # bytes, for the tests' positive controls
        self.conns = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(128)
        self.stopped = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == RESET:
                _rst(client)
                continue
            if self.mode == BLACKHOLE:
                # accepted, then nothing: the peer waits for an answer that never comes
                with self.lock:
                    self.conns.append(_Conn(self, client, None))
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
                upstream.settimeout(None)
            except OSError:
                _rst(client)
                continue
            with self.lock:
                self.conns = [c for c in self.conns if not c.closed]
                self.conns.append(_Conn(self, client, upstream))

    def set(self, mode, delay=0.0):
        """pass | blackhole | delay (with `delay` seconds) | reset. Back to pass, the
        connections that lost bytes while black-holed are reset (as TCP would time them out):
        a stream with a hole must never carry on."""
        self.delay = delay
        self.mode = mode
        if mode in (RESET, PASS):
            with self.lock:
                for c in self.conns:
                    if mode == RESET or c.damaged:
                        c.close(rst=True)
                self.conns = [c for c in self.conns if not c.closed]

    def stop(self):
        self.stopped = True
        self.sock.close()
        self.set(RESET)


class Link:
    """Both directions between a worker and the coordinator: `to_worker` is the address the
    worker advertises (the coordinator's pings and pushes go through it), `to_coordinator` the
    one the worker registers with."""

    def __init__(self, coordinator_port, worker_port):
        self.to_worker = Proxy(f"127.0.0.1:{worker_port}")
        self.to_coordinator = Proxy(f"127.0.0.1:{coordinator_port}")

    def set(self, mode, delay=0.0):
        self.to_worker.set(mode, delay)
        self.to_coordinator.set(mode, delay)

    def stop(self):
        self.to_worker.stop()
        self.to_coordinator.stop()
