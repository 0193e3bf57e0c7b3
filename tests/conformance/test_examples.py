"""The example programs built on the client libraries, run against a real shardzd: keys are
stored through their owners, and a worker asked to stop (SIGTERM) leaves gracefully."""
import json
import os
import signal
import subprocess
import sys
import urllib.request
from urllib.parse import quote

import harness
from conftest import ROOT, shardzd_binary, wait_for


def kv(addr, method, key, data=None):
    req = urllib.request.Request(f"http://{addr}/kv/{quote(key)}", method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_python_kv_example():
    d = harness.Daemon(shardzd_binary()).start()
    procs = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "kv", "sharder": "hash", "partitions": 4,
                                          "ping_interval_ms": 100, "dead_after_ms": 600})
        addrs = {}
        for node in ("w1", "w2"):
            addrs[node] = f"127.0.0.1:{harness.free_port()}"
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "examples", "python", "kv_worker.py"),
                 "--coordinator", f"127.0.0.1:{d.port}", "--node", node,
                 "--listen", addrs[node]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True))
        wait_for(lambda: harness.settled(d, "kv", 4, 1, 2), what="placed on both")
        keys = [f"user:{i}" for i in range(12)]

        def owner(key):
            return d.call("GET", f"/v1/namespaces/kv/lookup?key={quote(key)}")[1]["replicas"][0]["node"]
        for k in keys:  # each example learns its partitions and its routing: then it stores
            wait_for(lambda: kv(addrs[owner(k)], "PUT", k, f"v-{k}".encode())[0] == 200,
                     what=f"{k} stored by its owner")
            other = next(n for n in addrs if n != owner(k))
            st, body = kv(addrs[other], "GET", k)
            assert st == 409 and body["owner"] == owner(k), body  # not served there
            assert kv(addrs[owner(k)], "GET", k) == (200, {"key": k, "value": f"v-{k}",
                                                           "partition": body["partition"]})
        procs[0].send_signal(signal.SIGTERM)
        out, _ = procs[0].communicate(timeout=30)
        assert procs[0].returncode == 0 and "w1: released" in out, out
        assert harness.settled(d, "kv", 4, 1, 1) == {p: ["w2"] for p in ("0", "1", "2", "3")}
        for k in keys:  # w2 serves every partition now (a moved key's value stays behind)
            wait_for(lambda: kv(addrs["w2"], "GET", k)[0] in (200, 404), what=f"{k} on w2")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                print(p.args[-3], p.communicate()[0])  # shown when the test fails
        d.stop()
