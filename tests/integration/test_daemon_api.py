"""shardzd's HTTP API against a real daemon process: every route, bad input answered with a
4xx JSON error that changes nothing, watches, the secret, and state surviving a restart.
Usage: test_daemon_api.py SHARDZD_BINARY"""
import json
import sys
import threading
import time

from harness import Daemon, HTTPError, request, run

BIN = sys.argv[1]


def expect_error(fn, status, code=None):
    try:
        fn()
    except HTTPError as e:
        assert e.status == status, f"status {e.status}, wanted {status}: {e.body}"
        assert isinstance(e.body, dict) and "code" in e.body and "message" in e.body, e.body
        if code:
            assert e.body["code"] == code, e.body
        return e.body
    raise AssertionError(f"no error, wanted {status}")


def test_health_and_status():
    d = Daemon(BIN).start()
    try:
        assert d.call("GET", "/healthz") == (200, {"status": "ok"})
        _, st = d.call("GET", "/v1/status")
        assert st["store"] == "sqlite" and st["fsync"] == "full" and st["role"] == "leader", st
        expect_error(lambda: d.call("GET", "/v1/nothing"), 404, "ENOENT")
    finally:
        d.stop()


def test_namespace_crud_and_bad_input():
    d = Daemon(BIN).start()
    try:
        status, ns = d.call("POST", "/v1/namespaces",
                            {"name": "kv", "replicas": 2, "partitions": 8})
        assert status == 201 and ns["partitions"] == 8 and ns["replicas"] == 2, ns
        before = d.call("GET", "/v1/namespaces")[1]
        bad = [
            ({"name": "kv"}, 409, "EEXIST"),
            ({"name": "x", "replicas": 0}, 400, "EINVAL"),
            ({"name": "x", "replicas": 17}, 400, "EINVAL"),
            ({"name": "x", "replicaz": 2}, 400, "EINVAL"),
            ({"name": "Bad Name"}, 400, "EINVAL"),
            ({"name": "x", "consistency": "eventual"}, 400, "EINVAL"),
            ({"name": "x", "ping_interval_ms": 5}, 400, "EINVAL"),
            ({"name": "x", "dead_after_ms": 100, "ping_interval_ms": 200}, 400, "EINVAL"),
            ({"name": "x", "partitions": ["a", "a"]}, 409, "EEXIST"),
            ({"name": "x", "partitions": ["a b"]}, 400, "EINVAL"),
            ({"name": "x", "partitions": -1}, 400, "EINVAL"),
            ({"name": "x", "sharder": "hash", "slots": 1000}, 400, "EINVAL"),
            ({"name": "x", "dimensions": []}, 400, "EINVAL"),
        ]
        for body, status, code in bad:
            expect_error(lambda: d.call("POST", "/v1/namespaces", body), status, code)
        expect_error(lambda: request(d.base, "POST", "/v1/namespaces", raw=b"{not json"), 400,
                     "EINVAL")
        expect_error(lambda: request(d.base, "POST", "/v1/namespaces", raw=b"[1,2]"), 400)
        # over a route's limit: a JSON 413 (1 MiB for most routes, 64 MiB for the bulk ones)
        expect_error(lambda: request(d.base, "POST", "/v1/namespaces/kv/nodes",
                                     raw=b'{"id": "big", "pad": "' + b"x" * (2 << 20) + b'"}'),
                     413, "ETOOBIG")
        assert d.call("GET", "/v1/namespaces")[1] == before, "a failed request changed state"
        expect_error(lambda: d.call("GET", "/v1/namespaces/nope"), 404, "ENOENT")
        expect_error(lambda: d.call("PUT", "/v1/namespaces/kv"), 400)
        assert d.call("DELETE", "/v1/namespaces/kv")[0] == 200
        expect_error(lambda: d.call("GET", "/v1/namespaces/kv"), 404)
    finally:
        d.stop()


def test_bulk_partition_list():
    """A list of partitions larger than the 1 MiB of other routes is taken in one request."""
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", {"name": "bulk"})
        ids = [f"part-{i:07d}" for i in range(100000)]
        raw = json.dumps({"ids": ids}).encode()
        assert len(raw) > 1 << 20
        status, body = request(d.base, "POST", "/v1/namespaces/bulk/partitions", raw=raw,
                               timeout=120)
        assert status in (200, 201) and body["partitions"] == 100000, (status, body)
        _, st = d.call("GET", "/v1/namespaces/bulk/partitions/part-0099999")
        assert st["partition"] == "part-0099999"
    finally:
        d.stop()


def test_partitions_and_nodes_routes():
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", {"name": "kv", "partitions": ["a", "b"]})
        assert d.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["c"]})[1]["partitions"] == 3
        expect_error(lambda: d.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["a"]}), 409)
        expect_error(lambda: d.call("POST", "/v1/namespaces/kv/partitions", {"ids": "a"}), 400)
        expect_error(lambda: d.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["x/y"]}), 400)
        _, p = d.call("GET", "/v1/namespaces/kv/partitions/a")
        assert p["partition"] == "a" and p["replicas"] == [], p
        expect_error(lambda: d.call("GET", "/v1/namespaces/kv/partitions/zz"), 404)
        assert d.call("DELETE", "/v1/namespaces/kv/partitions/c")[0] == 200
        assert len(d.call("GET", "/v1/namespaces/kv/partitions")[1]["partitions"]) == 2
        for body in ({"id": "w1"}, {"id": "w1", "address": "nope"},
                     {"id": "bad id", "address": "127.0.0.1:1"},
                     {"id": "w1", "address": "127.0.0.1:1", "capacity": {"cpu": 1}},
                     {"id": "w1", "address": "127.0.0.1:1", "capacity": {"load": -1}}):
            expect_error(lambda: d.call("POST", "/v1/namespaces/kv/nodes", body), 400, "EINVAL")
        assert d.call("GET", "/v1/namespaces/kv/nodes")[1]["nodes"] == []
        _, r = d.call("POST", "/v1/namespaces/kv/nodes",
                      {"id": "w1", "address": "127.0.0.1:9", "capacity": {"load": 4}})
        assert r["node"]["state"] == "joining" and r["ping_interval_ms"] == 200, r
        expect_error(lambda: d.call("GET", "/v1/namespaces/kv/nodes/w9"), 404)
        assert d.call("GET", "/v1/namespaces/kv/nodes/w1")[1]["id"] == "w1"
        expect_error(lambda: d.call("GET", "/v1/namespaces/kv/lookup?key=x"), 400, "ENOTSUP")
        assert "moves" in d.call("GET", "/v1/namespaces/kv/moves")[1]
    finally:
        d.stop()


def test_hash_lookup_and_tags():
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces",
               {"name": "h", "sharder": "hash", "partitions": 16, "slots": 1024})
        _, a = d.call("GET", "/v1/namespaces/h/lookup?key=%7Buser42%7D.profile")
        _, b = d.call("GET", "/v1/namespaces/h/lookup?key=%7Buser42%7D.orders")
        assert a["partition"] == b["partition"] and a["slot"] == b["slot"], (a, b)
        assert 0 <= a["slot"] < 1024
        _, st = d.call("GET", "/v1/namespaces/h/state")
        owned = sum(hi - lo for p in st["partitions"] for lo, hi in p["slots"])
        assert owned == 1024, owned
        expect_error(lambda: d.call("GET", "/v1/namespaces/h/lookup"), 400)
    finally:
        d.stop()


def test_hash_slots_survive_restart():
    d = Daemon(BIN).start()
    d.call("POST", "/v1/namespaces", {"name": "h", "sharder": "hash", "partitions": 6,
                                      "slots": 256})
    d.call("DELETE", "/v1/namespaces/h/partitions/2")
    d.call("POST", "/v1/namespaces/h/partitions", {"ids": ["x"]})
    keys = [f"key{i}" for i in range(200)]
    before = {k: d.call("GET", f"/v1/namespaces/h/lookup?key={k}")[1]["partition"] for k in keys}
    slots = {p["id"]: p["slots"] for p in d.call("GET", "/v1/namespaces/h/state")[1]["partitions"]}
    d.stop()
    d2 = Daemon(BIN, data=d.data).start()
    try:
        after = {k: d2.call("GET", f"/v1/namespaces/h/lookup?key={k}")[1]["partition"]
                 for k in keys}
        assert before == after, "keys route differently after a restart"
        slots2 = {p["id"]: p["slots"]
                  for p in d2.call("GET", "/v1/namespaces/h/state")[1]["partitions"]}
        assert slots == slots2
    finally:
        d2.stop()


def test_watch_wakes_on_change():
    d = Daemon(BIN).start()
    try:
        _, ns = d.call("POST", "/v1/namespaces", {"name": "kv", "partitions": 1})
        rev = ns["revision"]
        _, same = d.call("GET", f"/v1/namespaces/kv/watch?revision={rev}&timeout_ms=50")
        assert same.get("unchanged") is True, same
        got = {}

        def watch():
            got["body"] = d.call("GET", f"/v1/namespaces/kv/watch?revision={rev}&timeout_ms=10000",
                                 timeout=15)[1]

        th = threading.Thread(target=watch)
        th.start()
        time.sleep(0.3)
        d.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["new"]})
        th.join()
        # woken by the change, not by its 10 s timeout (which answers "unchanged")
        assert "unchanged" not in got["body"], got
        assert got["body"]["revision"] > rev and any(
            p["id"] == "new" for p in got["body"]["partitions"]), got
        expect_error(lambda: d.call("GET", "/v1/namespaces/kv/watch?revision=abc"), 400)
        expect_error(lambda: d.call("GET", "/v1/namespaces/kv/watch?timeout_ms=999999"), 400)
    finally:
        d.stop()


def test_secret():
    d = Daemon(BIN, extra=["--secret", "s3cret"]).start()
    try:
        assert d.call("GET", "/healthz")[0] == 200
        e = expect_error(lambda: d.call("GET", "/v1/namespaces"), 401)
        assert e["code"] == "EPROTO"
        assert d.call("GET", "/v1/namespaces", headers={"Authorization": "Bearer s3cret"})[0] == 200
    finally:
        d.stop()


def test_state_survives_restart():
    d = Daemon(BIN).start()
    d.call("POST", "/v1/namespaces", {"name": "kv", "replicas": 2, "partitions": 5})
    d.call("POST", "/v1/namespaces/kv/nodes", {"id": "w1", "address": "127.0.0.1:9"})
    d.stop()
    d2 = Daemon(BIN, data=d.data).start()
    try:
        _, ns = d2.call("GET", "/v1/namespaces/kv")
        assert ns["partitions"] == 5 and ns["replicas"] == 2, ns
        assert [n["id"] for n in d2.call("GET", "/v1/namespaces/kv/nodes")[1]["nodes"]] == ["w1"]
    finally:
        d2.stop()


def test_bad_flags():
    import subprocess
    r = subprocess.run([BIN, "--fsync", "sometimes"], capture_output=True, text=True)
    assert r.returncode != 0 and "fsync" in r.stderr, r
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--listen" in r.stdout
    r = subprocess.run([BIN, "--data", "/proc/nope/x"], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "store" in r.stderr, r


def test_config_file_both_spellings():
    """--config FILE and --config=FILE read the same file: a bad line in it stops the daemon
    either way, and a good one sets what it says (the secret here)."""
    import subprocess
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("no equals sign\n")
        bad = f.name
    for args in (["--config", bad], [f"--config={bad}"]):
        r = subprocess.run([BIN, "--memory", *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "expected key=value" in r.stderr, (args, r)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("secret = fr0m-file\n")
        good = f.name
    for args in (["--config", good], [f"--config={good}"]):
        d = Daemon(BIN, extra=["--memory", *args]).start()
        try:
            expect_error(lambda: d.call("GET", "/v1/namespaces"), 401)
            assert d.call("GET", "/v1/namespaces",
                          headers={"Authorization": "Bearer fr0m-file"})[0] == 200
        finally:
            d.stop()


run([test_health_and_status, test_namespace_crud_and_bad_input, test_bulk_partition_list,
     test_partitions_and_nodes_routes,
     test_hash_lookup_and_tags, test_hash_slots_survive_restart, test_watch_wakes_on_change, test_secret,
     test_state_survives_restart, test_bad_flags, test_config_file_both_spellings])
