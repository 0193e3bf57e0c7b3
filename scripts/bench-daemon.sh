#!/usr/bin/env bash
# Builds the release tree and runs the coordinator's benchmarks (bench/daemon), printing the
# machine block, then every command it runs (`+ ...`) followed by its output: the figures of
# docs/BENCHMARKS.md, "The coordinator: shardzd". A few minutes on 2 cores.
# `scripts/bench-daemon.sh --quick` runs everything small, for a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; fi

# The whole tree: a part that does not build stops the benchmarks (no partial fallback).
scripts/build.sh release >/dev/null
bin=build/release
shardzd=$bin/src/daemon/shardzd
fanout=$bin/bench/daemon/bench_fanout
with=bench/daemon/with-shardzd.sh

echo "== machine"
. scripts/bench-lib.sh
machine_block

if [ "$quick" = 1 ]; then
    run python3 bench/daemon/failover.py "$shardzd" --rounds 2
    run "$with" "$shardzd" --memory -- "$fanout" --workers 100 --partitions 1000 --add 100
    run python3 bench/daemon/query.py "$shardzd" --seconds 1 --rounds 1
    run python3 bench/daemon/ha.py "$shardzd" --rounds 2
    run python3 bench/daemon/overload.py "$shardzd" --partitions 1000 --seconds 1
    exit 0
fi

echo
echo "== 1. worker killed -> new owner's serve returned (20 kills per mode, default timings)"
run python3 bench/daemon/failover.py "$shardzd" --rounds 20 --partitions 32 --workers 4 \
    --modes available,strict

echo
echo "== 2. one change told to 1,000 workers (simulated in one process)"
for store in --memory --fsync=full; do
    for i in 1 2; do
        run "$with" "$shardzd" "$store" -- "$fanout" --workers 1000 --partitions 10000 --add 1000
    done
done
echo
echo "-- the same change when each worker holds thousands of replicas (4 workers): the size"
echo "-- of one assignment and of its reply"
for r in 1 3; do
    run "$with" "$shardzd" --memory -- "$fanout" --workers 4 --partitions 10000 --replicas "$r" \
        --add 100
done

echo
echo "== 3. query API requests per second, keep-alive, one client thread"
run python3 bench/daemon/query.py "$shardzd" --partitions 10000 --replicas 1 --workers 4 \
    --connections 16 --seconds 5 --rounds 3

echo
echo "== 4. memory of the daemon: 1,000 nodes, 100,000 partitions"
run "$with" "$shardzd" --fsync=full -- "$fanout" --workers 1000 --partitions 100000 --add 1000 \
    --ping-interval-ms 2000 --timeout-s 60
run "$with" "$shardzd" --memory -- "$fanout" --workers 1000 --partitions 100000 --add 1000 \
    --ping-interval-ms 2000 --timeout-s 60
echo
echo "-- the same at the default timings (ping 200 ms, dead after 800 ms), partitions added in"
echo "-- requests of 10,000, each settled before the next"
run "$with" "$shardzd" --memory -- "$fanout" --workers 1000 --partitions 100000 --chunk 10000 \
    --add 1000 --timeout-s 20
echo
echo "-- and all 100,000 in one request, at the default timings"
run "$with" "$shardzd" --memory -- "$fanout" --workers 1000 --partitions 100000 --add 1000 \
    --timeout-s 20
echo
echo "== 5. several coordinators on etcd: kill -9 of the leader (20 rounds, TTL 2 s), then the"
echo "==    takeover of 101,000 partitions and 1,000 nodes"
run python3 bench/daemon/ha.py "$shardzd" --rounds 20 --ttl 2000 \
    --fanout "$fanout" --partitions 100000
echo
echo "== 6. writes per second to etcd (a fresh single-member etcd) and to SQLite, one put per"
echo "==    transaction and batched 128 to a transaction, every transaction guarded"
etcd_tmp=$(mktemp -d "${TMPDIR:-/tmp}/shardz-etcd-bench.XXXXXX")
etcd_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
peer_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
/usr/bin/etcd --data-dir "$etcd_tmp/d" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" >"$etcd_tmp/etcd.log" 2>&1 &
etcd_pid=$!
sleep 2
run "$bin/bench/daemon/bench_store_writes" --etcd "http://127.0.0.1:$etcd_port" --guard \
    --single 2000 --batched 100000
run "$bin/bench/daemon/bench_store_writes" --sqlite "$etcd_tmp/sqlite" --guard \
    --single 2000 --batched 100000
kill "$etcd_pid"
wait "$etcd_pid" 2>/dev/null || true
rm -rf "$etcd_tmp"
echo
echo "== 7. overload and hostile clients: /healthz latency and ping gaps per shape, with the"
echo "==    daemon at Debian's default soft open-file limit (1024)"
run bash -c "ulimit -Sn 1024 && exec python3 bench/daemon/overload.py $shardzd --seconds 8"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
