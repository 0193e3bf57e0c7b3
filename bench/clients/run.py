#!/usr/bin/python3
"""The client libraries side by side, in one run (scripts/bench-clients.sh; figures in
docs/BENCHMARKS.md):

1. Router key lookup, ns per lookup, per language: every executable bench/clients/lookup_<lang>
   (C and Python here; Go and JavaScript join by adding theirs) is given the same /state of a
   hash namespace and the same keys: `lookup_<lang> STATE KEYS ROUNDS`, printing one JSON line
   {"lang", "lookups", "ns_per_lookup", "checksum"}. The checksum (the sum of the keys' slots)
   must agree between languages, so they did the same work.
2. Assignment -> serve hook returned, per language: every conformance driver
   (tests/conformance/drivers/<lang>) runs its example worker against a stand-in coordinator;
   this program posts full assignments to it (each drops the previous partition and adds a new
   one) and reads the serve event's time (CLOCK_MONOTONIC, written inside the hook just before
   it returns) against the time the request was sent; it also times the reply (the hooks
   returned and the reply came back). Median and 99th percentile over N assignments.

Prints what it measured and the core count. Usage: run.py [--keys N] [--rounds N]
[--assignments N] [--langs c,python]; SHARDZ_BUILD_DIR names the release build tree."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "python", "src"))
import harness  # noqa: E402
import shardz  # noqa: E402
from standin import StandIn  # noqa: E402


def make_state(partitions=64, replicas=3, nodes=16, slots=16384):
    """A /state of a hash namespace: contiguous slot runs, replicas spread over nodes."""
    parts = []
    per = slots // partitions
    for p in range(partitions):
        reps = [{"node": f"n{(p + r) % nodes}", "address": f"10.0.0.{(p + r) % nodes}:9000",
                 "slot": r, "role": "primary" if r == 0 else "secondary", "state": "serving",
                 "generation": 1} for r in range(replicas)]
        parts.append({"id": str(p), "generation": 1, "replicas": reps,
                      "slots": [[p * per, (p + 1) * per]]})
    return {"namespace": "bench", "revision": 1, "sharder": "hash", "slots": slots,
            "nodes": [{"id": f"n{i}", "address": f"10.0.0.{i}:9000", "zone": "", "state": "alive"}
                      for i in range(nodes)], "partitions": parts}


def make_keys(n):
    keys = []
    for i in range(n):
        keys.append(f"{{user{i % 997}}}:session:{i}" if i % 4 == 0 else f"user:{i}:profile")
    return keys


def env():
    b = os.environ.get("SHARDZ_BUILD_DIR") or os.path.join(ROOT, "build", "release")
    return dict(os.environ, SHARDZ_BUILD_DIR=os.path.abspath(b), SHARDZ_SOURCE_DIR=ROOT)


def langs_of(prefix, folder, only):
    names = sorted(n[len(prefix):] for n in os.listdir(folder)
                   if n.startswith(prefix) and "." not in n
                   and os.access(os.path.join(folder, n), os.X_OK))
    return [n for n in names if not only or n in only]


def bench_lookups(args, only):
    tmp = tempfile.mkdtemp(prefix="shardz-bench-clients-")
    state_path, keys_path = os.path.join(tmp, "state.json"), os.path.join(tmp, "keys.txt")
    with open(state_path, "w") as f:
        json.dump(make_state(), f)
    with open(keys_path, "w") as f:
        f.write("".join(k + "\n" for k in make_keys(args.keys)))
    print(f"\n== router key lookup: hash namespace, 16384 slots, 64 partitions x 3 replicas, "
          f"{args.keys} keys (1 in 4 with a hash tag), one thread")
    results = []
    for lang in langs_of("lookup_", HERE, only):
        rounds = args.rounds if lang in ("c", "go") else max(1, args.rounds // 20)
        cmd = [os.path.join(HERE, f"lookup_{lang}"), state_path, keys_path, str(rounds)]
        print("+ " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            print(f"   {lang}: failed ({p.returncode}): {p.stderr.strip()[-500:]}")
            results.append((lang, None))
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        results.append((lang, r))
    sums = {r["checksum"] for _, r in results if r}
    print(f"{'lang':<8} {'lookups':>12} {'ns/lookup':>10}  checksum")
    for lang, r in results:
        if r:
            print(f"{lang:<8} {r['lookups']:>12} {r['ns_per_lookup']:>10.1f}  {r['checksum']}")
    if len(sums) > 1:
        print(f"CHECKSUMS DISAGREE: {sums}")
        return False
    return all(r for _, r in results)


def post(addr, body):
    req = urllib.request.Request(f"http://{addr}/shardz/v1/assign", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def bench_assign(args, only):
    sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))
    from conftest import DriverWorker, prepare  # the conformance suite's driver runner

    print(f"\n== assignment -> serve hook: {args.assignments} full assignments per language, "
          f"each deletes the previous partition and serves a new one (stand-in coordinator, "
          f"loopback HTTP)")
    print(f"{'lang':<8} {'to hook ms p50':>15} {'p99':>8} {'to reply ms p50':>16} {'p99':>8}")
    ok = True
    drivers = sorted(n for n in os.listdir(os.path.join(ROOT, "tests", "conformance", "drivers"))
                     if not only or n in only)
    reply = {"node": {"id": "g1", "state": "joining"}, "ping_interval_ms": 100,
             "lease_ms": 1000, "consistency": "available", "revision": 1, "features": ["delta"]}
    for lang in drivers:
        os.environ.update(env())
        prepare(lang)
        stand = StandIn(reply)
        tmp = tempfile.mkdtemp(prefix=f"shardz-bench-assign-{lang}-")
        w = DriverWorker(lang, tmp, f"127.0.0.1:{stand.port}", "golden", "g1")
        try:
            w.wait_registered()
            to_hook, to_reply = [], []
            for i in range(args.assignments + 20):  # the first 20 warm up
                body = {"namespace": "golden", "node": "g1", "revision": 10 + i,
                        "replicas": [{"partition": f"p{i}", "slot": 0, "role": "none",
                                      "generation": 1, "state": "adding"}]}
                n_serves = i + 1
                t0 = time.monotonic() * 1000.0
                r = post(w.addr, body)
                t1 = time.monotonic() * 1000.0
                assert r["applied_revision"] == 10 + i, r
                serves = harness.wait_for(lambda: (lambda s: s if len(s) >= n_serves else None)(
                    w.events("serve")), timeout=5, what="the serve event")
                if i >= 20:
                    to_hook.append(serves[n_serves - 1]["t_ms"] - t0)
                    to_reply.append(t1 - t0)
            q = statistics.quantiles
            print(f"{lang:<8} {statistics.median(to_hook):>15.3f} {q(to_hook, n=100)[98]:>8.3f} "
                  f"{statistics.median(to_reply):>16.3f} {q(to_reply, n=100)[98]:>8.3f}")
        except Exception as e:  # report and go on with the next language
            print(f"{lang:<8} failed: {e}")
            ok = False
        finally:
            w.close()
            stand.close()
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--assignments", type=int, default=300)
    ap.add_argument("--langs", default="")
    args = ap.parse_args()
    only = [x for x in args.langs.split(",") if x]
    print(f"cores online: {os.cpu_count()}")
    ok = bench_lookups(args, only)
    ok = bench_assign(args, only) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
