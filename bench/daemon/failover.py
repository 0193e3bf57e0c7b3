"""Benchmark: worker killed -> the new owners' serve returned. Starts a real shardzd and real
worker processes (tests/integration/fakeworker.py, which log serve/delete with wall-clock times),
then, round after round, SIGKILLs one worker and measures from the kill to the last `serve`
event, in the other workers' logs, for the killed worker's partitions. Between rounds a worker
restarts in the victim's place and the namespace settles again. Standard library only.
Usage: failover.py SHARDZD [--rounds N] [--partitions N] [--workers N] [--modes available,strict]"""
import argparse
import os
import random
import re
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon, Worker, read_events, routing, wait_for  # noqa: E402

NS = "fo"


def settled(d, workers, nparts):
    """Every partition served by exactly one node, no move in flight, every node alive, and
    each worker's own log agrees with the coordinator's routing."""
    summary = d.call("GET", f"/v1/namespaces/{NS}")[1]
    if summary["moves"] or summary["missing"] or summary["nodes"]["alive"] != len(workers):
        return None
    r = routing(d, NS)
    if len(r) != nparts or any(len(v) != 1 for v in r.values()):
        return None
    for w in workers:
        if set(w.served()) != {p for p, v in r.items() if v[0] == w.node}:
            return None
    return r


def first_serves_after(workers, parts, t0):
    """partition -> time of its first serve event after t0, in these workers' logs."""
    out = {}
    for w in workers:
        for ev in read_events(w.events):
            if ev["op"] == "serve" and ev["t"] >= t0 and ev["partition"] in parts:
                if ev["partition"] not in out or ev["t"] < out[ev["partition"]]:
                    out[ev["partition"]] = ev["t"]
    return out


DEAD_RE = re.compile(r'^ts=(\S+)Z level=warn msg="node dead" ns=(\S+) node=(\S+)')


def dead_time(log, node, t0):
    """Wall-clock time the daemon logged the node dead after t0, or None."""
    try:
        with open(log) as f:
            for line in f:
                m = DEAD_RE.match(line)
                if m and m.group(2) == NS and m.group(3) == node:
                    t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                        tzinfo=timezone.utc).timestamp()
                    if t >= t0:
                        return t
    except FileNotFoundError:
        pass
    return None


def run_mode(binary, mode, rounds, nparts, nworkers, rng):
    d = Daemon(binary, extra=["--log-level", "warn"]).start()
    workers = []
    incarnation = {}

    def start_worker(node):
        incarnation[node] = incarnation.get(node, 0) + 1
        ev = os.path.join(d.tmp, f"{node}.{incarnation[node]}.events")
        return Worker(d, NS, node, events=ev)

    try:
        _, cfg = d.call("POST", "/v1/namespaces", {"name": NS, "replicas": 1,
                                                    "partitions": nparts, "consistency": mode})
        workers = [start_worker(f"w{i}") for i in range(nworkers)]
        wait_for(lambda: settled(d, workers, nparts), 30, what="initial placement")
        print(f"\n== {mode}: {nparts} partitions, replicas 1, {nworkers} workers, "
              f"ping_interval_ms {cfg['ping_interval_ms']}, dead_after_ms "
              f"{cfg['dead_after_ms']}, lease_ms {cfg['lease_ms']}"
              f"{' (used in strict mode only)' if mode != 'strict' else ''}; {rounds} kills",
              flush=True)
        print("round victim partitions kill->dead(ms) kill->last-serve(ms) settle-after-restart(s)",
              flush=True)
        lat, det = [], []
        for rnd in range(rounds):
            # a random phase against the ping timer
            time.sleep(rng.uniform(0, cfg["ping_interval_ms"] / 1000))
            i = rnd % len(workers)
            victim = workers[i]
            lost = set(victim.served())
            others = [w for w in workers if w is not victim]
            t_kill = time.time()
            victim.kill9()
            got = wait_for(lambda: (lambda s: s if len(s) == len(lost) else None)(
                first_serves_after(others, lost, t_kill)), 15, step=0.01,
                what=f"round {rnd}: the victim's partitions served elsewhere")
            took = max(got.values()) - t_kill
            td = dead_time(d.log, victim.node, t_kill)
            lat.append(took)
            if td is not None:
                det.append(td - t_kill)
            # a new worker process takes the victim's place under its id
            t_r = time.time()
            workers[i] = start_worker(victim.node)
            wait_for(lambda: settled(d, workers, nparts), 30, what=f"round {rnd}: settling")
            print(f"{rnd:5d} {victim.node:6s} {len(lost):10d} "
                  f"{(td - t_kill) * 1000 if td else float('nan'):15.0f} "
                  f"{took * 1000:20.0f} {time.time() - t_r:23.2f}", flush=True)
        lat.sort()
        print(f"{mode}: kill -> last serve of the victim's partitions: median "
              f"{statistics.median(lat) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms, min "
              f"{lat[0] * 1000:.0f} ms (n={len(lat)})")
        if det:
            print(f"{mode}: kill -> daemon logs the node dead: median "
                  f"{statistics.median(det) * 1000:.0f} ms, max {max(det) * 1000:.0f} ms")
        goal = 1500 if mode == "available" else \
            3 * cfg["ping_interval_ms"] + cfg["lease_ms"]
        print(f"{mode}: goal < {goal} ms: {'met' if lat[-1] * 1000 < goal else 'NOT met'} "
              f"(by the max)", flush=True)
    finally:
        for w in workers:
            w.kill9()
        d.stop()
        shutil.rmtree(d.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardzd")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--modes", default="available,strict")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(f"failover: cores online {os.sysconf('SC_NPROCESSORS_ONLN')}; shardzd {a.shardzd} "
          f"(SQLite store, fsync full); workers are tests/integration/fakeworker.py processes",
          flush=True)
    rng = random.Random(a.seed)
    for mode in a.modes.split(","):
        run_mode(a.shardzd, mode, a.rounds, a.partitions, a.workers, rng)


main()
