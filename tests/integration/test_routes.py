"""The route table is the one description of the HTTP API: `shardzd --routes` lists exactly the
routes docs/PROTOCOL.md documents, and every route answers on a real coordinator (none falls
through to "no such route"); a known path with another method, or an unknown method, gets a
JSON error.
Usage: test_routes.py SHARDZD_BINARY"""
import os
import re
import subprocess
import sys
import urllib.request

from harness import Daemon, HTTPError, request, run

BIN = sys.argv[1]
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                   "PROTOCOL.md")


def table():
    out = subprocess.run([BIN, "--routes"], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert rows and all(len(r) == 3 and r[2] in ("read", "write", "local") for r in rows), out
    return {(r[0], r[1]): r[2] for r in rows}


def documented():
    with open(DOC) as f:
        text = f.read()
    found = set()
    for method, path in re.findall(r"`(GET|POST|DELETE|PUT|PATCH) (/[^`\s?]*)", text):
        found.add((method, path))
    return found


def test_table_matches_the_protocol_doc():
    t = set(table())
    d = documented()
    assert t - d == set(), f"routes not in docs/PROTOCOL.md: {sorted(t - d)}"
    assert d - t == set(), f"documented routes the coordinator lacks: {sorted(d - t)}"
    # writes are what a follower forwards: every mutating method is one
    for (method, path), kind in table().items():
        assert (kind == "write") == (method in ("POST", "DELETE", "PATCH") and
                                     path != "/v1/status"), \
            (method, path, kind)


def test_every_route_answers():
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", {"name": "r", "partitions": ["p"]})
        d.call("POST", "/v1/namespaces/r/nodes", {"id": "n1", "address": "127.0.0.1:9"})
        values = {"ns": "r", "id": "n1", "pid": "p", "slot": "0"}
        for (method, path), kind in sorted(table().items(), key=lambda x: x[0][1]):
            if path == "/v1/namespaces/{ns}" and method == "DELETE":
                continue  # last, below
            url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
            if path.endswith("/watch"):
                url += "?timeout_ms=0"
            if path.endswith("/lookup"):
                url += "?key=k"
            if path == "/metrics":  # Prometheus text, not JSON
                with urllib.request.urlopen(d.base + url, timeout=10) as r:
                    assert r.status == 200 and b"shardz_" in r.read()
                continue
            try:
                request(d.base, method, url, body={} if method == "POST" else None)
            except HTTPError as e:
                msg = e.body.get("message", "") if isinstance(e.body, dict) else str(e.body)
                assert not msg.startswith("no such route"), (method, url, e.status, e.body)
                assert isinstance(e.body, dict) and "code" in e.body, (method, url, e.body)
        assert d.call("DELETE", "/v1/namespaces/r")[0] == 200
        # a known path with another method, an unknown method, an unknown path: JSON errors
        for method, path, status in (("PUT", "/v1/namespaces", 400),
                                     ("PATCH", "/v1/status", 400),
                                     ("OPTIONS", "/v1/namespaces", 400),
                                     ("GET", "/v1/nope", 404)):
            try:
                request(d.base, method, path)
                raise AssertionError(f"{method} {path} succeeded")
            except HTTPError as e:
                assert e.status == status, (method, path, e.status, e.body)
                assert isinstance(e.body, dict) and e.body.get("code"), (method, path, e.body)
    finally:
        d.stop()


if __name__ == "__main__":
    run([test_table_matches_the_protocol_doc, test_every_route_answers])
