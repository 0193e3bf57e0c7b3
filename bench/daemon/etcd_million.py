"""Benchmark: a large namespace placed through etcd with several coordinators, then the
leader killed (issue 10's targets "1M placed through etcd (3 coordinators) < 60 s" and "leader
kill at 1M, until another is acting < TTL + 1 s"). Starts a real single-member etcd (Debian's
etcd-server) and COORDINATORS shardzd on it (--lease-ttl TTL), runs bench_fanout against the
leader (WORKERS simulated workers, replicas 3, PARTITIONS added CHUNK per request, each chunk
settled before the next), prints its stages, the etcd data directory's size and the store
writes; then, the simulated workers still answering (bench_fanout --hold-s), waits until the
followers' caches are current, kills the leader with SIGKILL and measures the time until another
coordinator logs "elected leader" (its log's timestamp), and how long its takeover of the state
took (its log's load_ms). Prints the machine's core count. Standard library only.
Usage: etcd_million.py SHARDZD BENCH_FANOUT [--partitions N] [--chunk N] [--workers N]
       [--coordinators N] [--ttl MS]"""
import argparse
import calendar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon, Etcd, wait_for  # noqa: E402
from ha import leader_of  # noqa: E402  (bench/daemon/ha.py: the first coordinator acting)


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def cpu_s(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardzd")
    ap.add_argument("fanout")
    ap.add_argument("--partitions", type=int, default=1000000)
    ap.add_argument("--chunk", type=int, default=100000)
    ap.add_argument("--workers", type=int, default=100)
    ap.add_argument("--coordinators", type=int, default=3)
    ap.add_argument("--ttl", type=int, default=5000)
    a = ap.parse_args()
    print(f"cores online: {os.cpu_count()}; {a.coordinators} coordinators on one etcd member, "
          f"lease TTL {a.ttl} ms; {a.workers} simulated workers, replicas 3, "
          f"{a.partitions:,} partitions in requests of {a.chunk:,}", flush=True)
    etcd = Etcd().start()
    extra = ["--store", etcd.url(), "--lease-ttl", str(a.ttl), "--log-level", "info"]
    ds = [Daemon(a.shardzd, extra=extra + ["--id", f"c{i}"]) for i in range(a.coordinators)]
    fan = None
    try:
        for d in ds:
            d.start()
        leader = leader_of(ds, a.ttl / 1000 + 10)
        procs = [(d.extra[-1] + (" (leader)" if d is leader else " (follower)"), d.proc.pid)
                 for d in ds] + [("etcd", p.pid) for p in etcd.procs if p]
        cpu0 = {name: cpu_s(pid) for name, pid in procs}
        t0 = time.time()
        fan = subprocess.Popen([a.fanout, "--coordinator", f"127.0.0.1:{leader.port}", "--pid",
                                str(leader.proc.pid), "--workers", str(a.workers), "--replicas",
                                "3", "--partitions", str(a.partitions), "--chunk", str(a.chunk),
                                "--add", "1000", "--namespace", "big", "--timeout-s", "1200",
                                "--hold-s", "600"], stdout=subprocess.PIPE, text=True)
        for line in fan.stdout:
            print("   bench_fanout: " + line.rstrip(), flush=True)
            if line.startswith("holding the workers"):
                break
        t1 = time.time()
        print("CPU during the placement (s): " +
              ", ".join(f"{name} {cpu_s(pid) - cpu0[name]:.1f}" for name, pid in procs) +
              f"; over {t1 - t0:.1f} s on {os.cpu_count()} cores", flush=True)
        if fan.poll() is not None:
            print(f"bench_fanout exited with {fan.returncode}")
            return
        print(f"\nplaced through the leader: {a.partitions:,} + 1,000 partitions x 3 in "
              f"{t1 - t0:.1f} s with bench_fanout's stages; etcd data directory "
              f"{dir_bytes(etcd.tmp) / 1e6:.0f} MB", flush=True)
        with urllib.request.urlopen(f"http://127.0.0.1:{leader.port}/metrics", timeout=30) as r:
            metrics = r.read().decode()
        for line in metrics.splitlines():
            if re.match(r"shardz_store_(batches|records|bytes)_total", line):
                print("   leader: " + line, flush=True)
        # the leader killed while the workers are still registered in the store (bench_fanout
        # is gone: the next leader would declare them dead in time; only takeover is timed)
        others = [d for d in ds if d is not leader]
        # the followers' caches catch up with the store (the workers stay meanwhile)
        top = leader.call("GET", "/v1/status", timeout=30)[1]["store_revision"]

        def caught_up():
            return all(d.call("GET", "/v1/status", timeout=30)[1].get("cache_revision", 0) >= top
                       for d in others)
        try:
            wait_for(caught_up, 600, step=0.5, what="the followers' caches current")
            print(f"followers current {time.time() - t1:.1f} s after the last request settled",
                  flush=True)
        except AssertionError as e:
            print(f"followers not current: {e}", flush=True)
        for d in others:
            loads = re.findall(r'msg="cache loaded" .*load_ms=(\d+)', d.tail(10**8))
            print(f"   follower {d.extra[-1]}: {len(loads)} full cache loads, the longest "
                  f"{max(map(int, loads)) if loads else 0} ms", flush=True)
        t2 = time.time()
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait()
        # another acts when it logs "elected leader" (its loop may then be busy with the
        # workers bench_fanout took away, so its HTTP answer is not the measure)
        pat = re.compile(r'ts=(\S+) level=info msg="elected leader" .*load_ms=(\d+)')
        found = None
        end = time.time() + a.ttl / 1000 + 300
        while not found and time.time() < end:
            for d in others:
                for ts, load in pat.findall(d.tail(10**8)):
                    t = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
                    t += float("0" + ts[19:-1])
                    if t > t2:
                        found = (d, t, load)
            time.sleep(0.05)
        if not found:
            print("no coordinator elected after the kill")
            return
        d, t, load = found
        print(f"leader killed -> {d.extra[-1]} elected (its log) after {(t - t2) * 1000:.0f} ms "
              f"(TTL {a.ttl} ms; goal under TTL + 1 s = {a.ttl + 1000} ms); its takeover took "
              f"load_ms={load}", flush=True)
        # what the successor logged from the kill to its election (where the time went)
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t2))
        lines = [ln for ln in d.tail(10**8).splitlines()
                 if re.match(r"ts=(\S+)", ln) and ln[3:22] >= since]
        for ln in lines[:30]:
            print("   " + d.extra[-1] + ": " + ln[:300], flush=True)
        fan.terminate()
        fan.wait()
    finally:
        keep = os.environ.get("SHARDZ_BENCH_LOGS")  # a directory: the coordinators' logs kept
        if keep:
            os.makedirs(keep, exist_ok=True)
            for d in ds:
                with open(d.log, "rb") as f, open(os.path.join(keep, d.extra[-1] + ".log"),
                                                   "wb") as out:
                    out.write(f.read())
        if fan is not None and fan.poll() is None:
            fan.kill()
            fan.wait()
        for d in ds:
            if d.proc and d.proc.poll() is None:
                d.proc.send_signal(signal.SIGKILL)
                d.proc.wait()
        etcd.stop()


if __name__ == "__main__":
    main()
