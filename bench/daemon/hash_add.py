#!/usr/bin/env python3
"""A hash namespace's re-partitioning at scale: against the shardzd that SHARDZ_COORDINATOR
names (bench/daemon/with-shardzd.sh starts one), creates a hash namespace of --slots slots and
--partitions partitions (no workers), then times --adds adds of --batch partitions each and
--removes removals of one partition, each an API request answered once durable, with the
bytes the store lane wrote for it (shardz_store_bytes_total). Every add and removal changes the
slot table: on main it rewrote every partition's record (slot runs inside them), with the slot
table in pages (docs/STORE.md 5) it writes the new partitions' records and the changed pages.
Prints what it measured and the core count.
Usage: with-shardzd.sh SHARDZD [--store ...] -- hash_add.py [--partitions N] [--slots S]
       [--batch B] [--adds K] [--removes R]"""
import argparse
import json
import os
import re
import statistics
import time
import urllib.request


def call(base, method, path, body=None, timeout=1800):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
        return r.status, (json.loads(raw) if raw and raw[:1] in b"{[" else raw.decode())


def store_bytes(base):
    _, text = call(base, "GET", "/metrics")
    m = re.search(r"^shardz_store_bytes_total (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=100000)
    ap.add_argument("--slots", type=int, default=1 << 20)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--adds", type=int, default=3)
    ap.add_argument("--removes", type=int, default=3)
    a = ap.parse_args()
    base = "http://" + os.environ["SHARDZ_COORDINATOR"]
    print(f"cores online: {os.cpu_count()}", flush=True)
    t0 = time.time()
    st, _ = call(base, "POST", "/v1/namespaces",
                 {"name": "h", "sharder": "hash", "slots": a.slots, "partitions": a.partitions})
    print(f"create {a.partitions} partitions, {a.slots} slots: {st} in "
          f"{time.time() - t0:.2f} s", flush=True)
    adds, add_bytes = [], []
    for k in range(a.adds):
        ids = [f"x{k}-{i}" for i in range(a.batch)]
        b0, t0 = store_bytes(base), time.time()
        st, _ = call(base, "POST", "/v1/namespaces/h/partitions", {"ids": ids})
        adds.append(time.time() - t0)
        add_bytes.append(store_bytes(base) - b0)
        assert st == 201, st
    rems, rem_bytes = [], []
    for k in range(a.removes):
        b0, t0 = store_bytes(base), time.time()
        st, _ = call(base, "DELETE", f"/v1/namespaces/h/partitions/x0-{k}")
        rems.append(time.time() - t0)
        rem_bytes.append(store_bytes(base) - b0)
        assert 200 <= st < 300, st
    if adds:
        print(f"add {a.batch} partitions (x{a.adds}): median {statistics.median(adds):.3f} s, "
              f"max {max(adds):.3f} s, store bytes {statistics.median(add_bytes) / 1e6:.1f} MB",
              flush=True)
    if rems:
        print(f"remove 1 partition (x{a.removes}): median {statistics.median(rems):.3f} s, "
              f"max {max(rems):.3f} s, store bytes {statistics.median(rem_bytes) / 1e6:.1f} MB",
              flush=True)


if __name__ == "__main__":
    main()
