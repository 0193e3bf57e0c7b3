"""Delta assignments end to end (docs/PROTOCOL.md 4.1, 4.3): the real coordinator agrees to
deltas with a worker that offers them and not with one that does not; after the whole set, a
change reaches a delta worker as a delta naming only what changed, while the old worker gets
its whole set; a worker registering again gets the whole set first; both kinds end up serving
exactly what the coordinator routes to them.
Usage: test_daemon_delta.py SHARDZD_BINARY"""
import json
import os
import sys

from harness import Daemon, Worker, run, settled, wait_for

BIN = sys.argv[1]


def assigns(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def agree(d, ns, workers):
    _, st = d.call("GET", f"/v1/namespaces/{ns}/state")
    for w in workers:
        want = {p["id"] for p in st["partitions"]
                for r in p["replicas"] if r["node"] == w.node and r["state"] == "serving"}
        if set(w.served()) != want:
            return False
    return True


def test_deltas_for_those_who_speak_them():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "dl", "replicas": 1, "partitions": 60})
        logs = {n: os.path.join(d.tmp, f"{n}.assigns") for n in ("new1", "new2", "old")}
        ws = [Worker(d, "dl", "new1", extra=["--assign-log", logs["new1"]]),
              Worker(d, "dl", "new2", extra=["--assign-log", logs["new2"]]),
              Worker(d, "dl", "old", extra=["--assign-log", logs["old"], "--no-delta"])]
        wait_for(lambda: settled(d, "dl", 60, 1, nodes=3), 30, what="placement")
        wait_for(lambda: agree(d, "dl", ws), 10, what="workers agreeing with the routing")
        # the first assignment of each is the whole set
        for n in logs:
            first = assigns(logs[n])[0]
            assert first["base_revision"] is None, (n, first)
        # the old worker only ever gets whole sets
        assert all(a["base_revision"] is None for a in assigns(logs["old"]))
        before = {n: len(assigns(logs[n])) for n in logs}
        # +30 partitions: each worker gets about ten; the delta workers are told only those
        d.call("POST", "/v1/namespaces/dl/partitions", {"ids": [f"x{i}" for i in range(30)]})
        wait_for(lambda: settled(d, "dl", 90, 1, nodes=3), 30, what="the new partitions placed")
        wait_for(lambda: agree(d, "dl", ws), 10, what="workers agreeing again")
        for n in ("new1", "new2"):
            new = assigns(logs[n])[before[n]:]
            assert new, f"{n} was told nothing"
            assert all(a["base_revision"] is not None for a in new), (n, new)
            named = sum(a["replicas"] + a["removed"] for a in new)
            held = len(ws[0 if n == "new1" else 1].served())
            assert named < held, f"{n}: deltas named {named} replicas, it holds {held}"
        new_old = assigns(logs["old"])[before["old"]:]
        assert new_old and all(a["base_revision"] is None for a in new_old)
        assert new_old[-1]["replicas"] == len(ws[2].served()), new_old[-1]
        # a worker that registers again starts over from the whole set
        ws[0].kill9()
        before_restart = len(assigns(logs["new1"]))
        # its own events file: the killed process's serves are not the new one's (with the node
        # declared dead meanwhile, as under load, its partitions may have moved elsewhere)
        ws[0] = Worker(d, "dl", "new1", holder="new1#2", extra=["--assign-log", logs["new1"]])
        wait_for(lambda: len(assigns(logs["new1"])) > before_restart, 15,
                 what="an assignment after the restart")
        assert assigns(logs["new1"])[before_restart]["base_revision"] is None
        wait_for(lambda: agree(d, "dl", ws), 20, what="workers agreeing after the restart")
    finally:
        for w in ws:
            w.kill9()
        d.stop()


if __name__ == "__main__":
    run([test_deltas_for_those_who_speak_them])
