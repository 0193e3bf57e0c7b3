#!/usr/bin/env bash
# Restart time at scale: starts SHARDZD (release build) on a new SQLite data directory, creates
# one namespace of PARTITIONS partitions x 3 replicas in one request (no workers), stops it
# (SIGTERM), starts it again on the same directory and measures the time until /healthz
# answers, then the RSS after the load. Prints the figures of docs/BENCHMARKS.md ("shardzd at
# a million partitions", restart). Usage: bench/daemon/restart.sh SHARDZD [PARTITIONS]
set -euo pipefail
bin=$1
parts=${2:-1000000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardz-restart.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
wait_ready() {
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.01; done
}
echo "cores online: $(nproc)"
"$bin" --listen "127.0.0.1:$port" --data "$dir/data" --log-level warn 2>"$dir/first.log" &
pid=$!
wait_ready
curl -sf -X POST "http://127.0.0.1:$port/v1/namespaces" --max-time 900 -o /dev/null \
    -d "{\"name\":\"big\",\"replicas\":3,\"partitions\":$parts}" \
    -w "create $parts partitions x 3: %{http_code} in %{time_total} s\n"
kill -TERM "$pid"
wait "$pid" || true
echo "database: $(du -sh "$dir/data" | cut -f1)"
t0=$(date +%s.%N)
"$bin" --listen "127.0.0.1:$port" --data "$dir/data" --log-level warn 2>"$dir/second.log" &
pid=$!
wait_ready
t1=$(date +%s.%N)
echo "restart until /healthz answered: $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"
echo "RSS after the load: $(( $(ps -o rss= -p "$pid") / 1024 )) MB"
