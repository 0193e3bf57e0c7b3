"""Small contract fixes of issue 16, each against a real coordinator: an error message that
quotes what a client sent is cut on a UTF-8 boundary and still goes out as a JSON body; a
capacity past the documented bound is refused and changes nothing; a value that carries a
newline (a worker's error text) cannot forge a log line; watches are capped (--max-watches)
and a client that went away frees its watch at once; --listen takes [IPV6]:PORT and :PORT and refuses a bad port; beyond loopback a
coordinator without a secret refuses to start unless --insecure (protected mode); a namespace
created at the bounds of its timings is loaded back after a restart.
Usage: test_contract.py SHARDZD_BINARY"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from harness import Daemon, HTTPError, free_port, request, run, wait_for

BIN = sys.argv[1]


def expect_error(fn, status, code):
    try:
        fn()
    except HTTPError as e:
        assert e.status == status, (e.status, e.body)
        assert isinstance(e.body, dict) and e.body.get("code") == code, e.body
        assert isinstance(e.body.get("message"), str) and e.body["message"], e.body
        return e.body
    raise AssertionError("the request succeeded")


def test_utf8_cut_error_keeps_its_body():
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", {"name": "u", "partitions": ["p"]})
        to = "a" + "\u00e9" * 300  # 601 bytes: the 512-byte message ends inside a character
        body = expect_error(lambda: d.call("POST", "/v1/namespaces/u/partitions/p/move",
                                           {"slot": 0, "to": to}), 404, "ENOENT")
        # valid UTF-8 (json.loads decoded it), cut short of the whole id
        assert "\u00e9" in body["message"] and to not in body["message"], body
        # the same through a client's raw, invalid bytes
        raw = b'{"to": "a\xff\xfe"}'
        try:
            d.call("POST", "/v1/namespaces/u/partitions/p/move", raw=raw)
            raise AssertionError("accepted invalid UTF-8")
        except HTTPError as e:
            assert e.status == 400 and isinstance(e.body, dict), (e.status, e.body)
    finally:
        d.stop()


def test_capacity_bound():
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", {"name": "c", "partitions": 4})
        for bad in (1e308, 1e13, 0, -1):
            body = expect_error(lambda: d.call("POST", "/v1/namespaces/c/nodes", {
                "id": "n1", "address": "127.0.0.1:9", "capacity": {"load": bad}}), 400, "EINVAL")
            assert "capacity" in body["message"], body
        assert d.call("GET", "/v1/namespaces/c/nodes")[1]["nodes"] == []
        # the bound itself is accepted
        d.call("POST", "/v1/namespaces/c/nodes", {"id": "n1", "address": "127.0.0.1:9",
                                                  "capacity": {"load": 1e12}})
        nodes = d.call("GET", "/v1/namespaces/c/nodes")[1]["nodes"]
        assert [n["id"] for n in nodes] == ["n1"], nodes
    finally:
        d.stop()


class ForgingWorker:
    """A worker endpoint that answers pings and fails every partition it is told to serve with
    an error text that carries a newline and a whole forged log line."""
    ERROR = 'disk "full"\nts=2026-01-01T00:00:00.000Z level=error msg="forged"'

    def __init__(self, node):
        import http.server
        import threading
        worker = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                if self.path.endswith("/ping"):
                    out = {"node": node, "applied_revision": 0}
                else:
                    worker.assigned += 1
                    out = {"node": node, "applied_revision": body.get("revision", 0),
                           "serving": [],
                           "failed": [{"partition": r["partition"], "error": worker.ERROR}
                                      for r in body.get("replicas", [])]}
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.assigned = 0
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.addr = f"127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


def test_no_forged_log_line():
    d = Daemon(BIN).start()
    w = ForgingWorker("n1")
    try:
        d.call("POST", "/v1/namespaces", {"name": "f", "replicas": 1, "partitions": 1})
        d.call("POST", "/v1/namespaces/f/nodes", {"id": "n1", "address": w.addr})
        # the daemon logged the worker's error (so the test would see a forged line) ...
        wait_for(lambda: 'msg="serve failed"' in d.tail(200000), 15, what="serve failed logged")
        d.stop()
        with open(d.log, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        failed = [ln for ln in lines if 'msg="serve failed"' in ln]
        assert failed and all("\\x0a" in ln for ln in failed), failed[:3]
        assert all('error="disk \\"full\\"' in ln for ln in failed), failed[:3]
        # ... and no line begins where the value wanted one
        assert not any(ln.startswith("ts=2026-01-01") for ln in lines), lines[-20:]
    finally:
        w.close()
        d.stop()


def listen_ok(addr, connect_host, port, extra=(), env=None, headers=None):
    tmp = tempfile.mkdtemp(prefix="shardz-it-")
    p = subprocess.Popen([BIN, "--listen", addr, "--data", tmp + "/data", "--log-level", "warn"]
                         + list(extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=dict(os.environ, **(env or {})))
    try:
        end = time.time() + 15
        while time.time() < end:
            assert p.poll() is None, p.stderr.read().decode()
            try:
                base = f"http://{connect_host}:{port}"
                if request(base, "GET", "/v1/status", timeout=1, headers=headers)[0] == 200:
                    return
            except (OSError, HTTPError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"shardzd --listen {addr} did not answer")
    finally:
        p.terminate()
        p.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


def test_listen_forms():
    port = free_port()
    listen_ok(f"[::1]:{port}", "[::1]", port)
    port = free_port()
    listen_ok(f":{port}", "127.0.0.1", port, extra=["--insecure"])
    for bad in ("127.0.0.1:", "127.0.0.1:80x", "127.0.0.1:70000", "nocolon"):
        r = subprocess.run([BIN, "--listen", bad, "--memory"], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 2 and "listen" in r.stderr, (bad, r.returncode, r.stderr)


def test_protected_mode():
    """Beyond loopback without a secret the coordinator refuses to start, and says why; a
    secret (from the environment, kept out of the process list) or --insecure lets it."""
    for addr in (f":{free_port()}", f"0.0.0.0:{free_port()}"):
        r = subprocess.run([BIN, "--listen", addr, "--memory"], capture_output=True, text=True,
                           timeout=20, env={k: v for k, v in os.environ.items()
                                            if k != "SHARDZ_SECRET"})
        assert r.returncode == 2 and "without a secret" in r.stderr and "--insecure" in r.stderr, \
            (addr, r.returncode, r.stderr)
    port = free_port()
    listen_ok(f"0.0.0.0:{port}", "127.0.0.1", port, env={"SHARDZ_SECRET": "s3cret"},
              headers={"Authorization": "Bearer s3cret"})


def test_watch_cap_and_abandoned_watches():
    d = Daemon(BIN, extra=["--max-watches", "3"]).start()
    socks = []

    def gauge():
        import urllib.request
        with urllib.request.urlopen(d.base + "/metrics", timeout=5) as r:
            for ln in r.read().decode().splitlines():
                if ln.startswith('shardz_watches_parked{ns="w"}'):
                    return int(ln.split()[1])
        return -1

    try:
        d.call("POST", "/v1/namespaces", {"name": "w", "partitions": 1})
        rev = d.call("GET", "/v1/namespaces/w")[1]["revision"]
        path = f"/v1/namespaces/w/watch?revision={rev}&timeout_ms=120000"
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(s)
        wait_for(lambda: gauge() == 3, 10, what="three watches parked")
        body = expect_error(lambda: d.call("GET", path.replace("120000", "100")), 409, "EBUSY")
        assert "max-watches" in body["message"], body
        # clients that went away free their watches at once (not after 120 s): new ones park
        for s in socks:
            s.close()
        socks = []
        wait_for(lambda: gauge() == 0, 10, what="abandoned watches dropped")
        st, got = d.call("GET", path.replace("120000", "100"))
        assert st == 200 and got.get("unchanged") is True, got
    finally:
        for s in socks:
            s.close()
        d.stop()


def test_config_bounds_survive_restart():
    """Every namespace a create accepts is loaded back after a restart: at the bounds of the
    timings (a lease derived from them above the bound an explicit lease_ms had, which made the
    load refuse the config and lose the namespace) and just inside the explicit bounds."""
    d = Daemon(BIN).start()
    try:
        made = {
            "longest": {"ping_interval_ms": 60000, "dead_after_ms": 3600000},
            "explicit": {"ping_interval_ms": 60000, "dead_after_ms": 3600000, "lease_ms": 3660000},
            "shortest": {"ping_interval_ms": 10, "dead_after_ms": 11, "lease_ms": 11},
            "strict": {"consistency": "strict", "ping_interval_ms": 60000,
                       "dead_after_ms": 3600000},
        }
        for name, timing in made.items():
            d.call("POST", "/v1/namespaces", dict(name=name, partitions=3, **timing))
        expect_error(lambda: d.call("POST", "/v1/namespaces",
                                    dict(name="over", lease_ms=3660001, ping_interval_ms=60000)),
                     400, "EINVAL")
        before = {n: d.call("GET", f"/v1/namespaces/{n}")[1] for n in made}
        d.stop()
        d.start()
        for name in made:
            got = d.call("GET", f"/v1/namespaces/{name}")[1]  # a 404 if it was lost
            for k in ("ping_interval_ms", "dead_after_ms", "lease_ms", "partitions"):
                assert got[k] == before[name][k], (name, k, got[k], before[name][k])
        assert "corrupt" not in d.tail(100000)
    finally:
        d.stop()


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    run([test_utf8_cut_error_keeps_its_body, test_capacity_bound, test_no_forged_log_line,
         test_listen_forms, test_protected_mode, test_watch_cap_and_abandoned_watches,
         test_config_bounds_survive_restart])
