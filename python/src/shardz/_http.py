"""HTTP to the coordinators (docs/PROTOCOL.md section 10): one request at a time per call, to
the coordinator that answered last; a refused connection (the request never left) or a 503
ENOTLEADER (nothing changed) is tried on the next one at once. Standard library only
(http.client). Thread-safe: every call opens its own connection."""
import http.client
import json
import threading

from .errors import ShardzError


def parse_coordinators(coordinators):
    """"h1:p1,h2:p2" or a list of "host:port" -> a list of (host, port); ValueError when bad."""
    if isinstance(coordinators, str):
        coordinators = coordinators.split(",")
    out = []
    for c in coordinators:
        c = c.strip()
        if c.startswith("http://"):
            c = c[len("http://"):].rstrip("/")
        host, sep, port = c.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"coordinator {c!r} is not host:port")
        out.append((host, int(port)))
    if not out or len(out) > 8:
        raise ValueError("give 1 to 8 coordinators")
    return out


class Coordinators:
    """The coordinator list and which one answered last."""

    def __init__(self, coordinators, secret=None, timeout=5.0):
        self.addrs = parse_coordinators(coordinators)
        self.secret = secret
        self.timeout = timeout
        self._lock = threading.Lock()
        self._current = 0

    def current(self):
        with self._lock:
            return self._current

    def _send(self, i, method, path, body, timeout):
        host, port = self.addrs[i]
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"}
            if self.secret:
                headers["Authorization"] = "Bearer " + self.secret
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def request(self, method, path, body=None, timeout=None):
        """Sends one request; returns (status, parsed JSON or None, index of the coordinator
        that answered). 2xx only; an error reply raises ShardzError (status, code, message);
        no coordinator reachable raises ShardzError with status 0 and code "EIO"."""
        timeout = self.timeout if timeout is None else timeout
        n = len(self.addrs)
        start = self.current()
        last = None
        for k in range(n):
            i = (start + k) % n
            try:
                status, raw = self._send(i, method, path, body, timeout)
            except ConnectionRefusedError as e:
                last = ShardzError(0, "EIO", f"{self.addrs[i][0]}:{self.addrs[i][1]}: {e}")
                continue
            except (OSError, http.client.HTTPException) as e:
                # the request may have left: not retried elsewhere (the caller retries)
                with self._lock:
                    self._current = (i + 1) % n  # next call starts with the next one
                raise ShardzError(0, "EIO", f"{self.addrs[i][0]}:{self.addrs[i][1]}: {e}")
            parsed = None
            if raw.strip():
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = raw.decode(errors="replace")
            if status == 503 and isinstance(parsed, dict) and parsed.get("code") == "ENOTLEADER":
                last = ShardzError(503, "ENOTLEADER", parsed.get("message", ""), parsed)
                continue
            with self._lock:
                self._current = i
            if 200 <= status < 300:
                return status, parsed, i
            if isinstance(parsed, dict):
                raise ShardzError(status, parsed.get("code", "EIO"), parsed.get("message", ""), parsed)
            raise ShardzError(status, "EIO", str(parsed))
        raise last
