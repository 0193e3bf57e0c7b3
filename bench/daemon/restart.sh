#!/usr/bin/env bash
# Restart time at scale: starts SHARDZD (release build) on a new SQLite data directory, creates
# one namespace of PARTITIONS partitions x 3 replicas in one request (no workers), stops it
# (SIGTERM), starts it again on the same directory and measures the time until /healthz
# answers, then the RSS after the load. Prints the figures of docs/BENCHMARKS.md ("shardzd at
# a million partitions", restart). With NODES, that many nodes are registered first, so the
# records name owners; KEEP=1 keeps the data directory and logs. With OTHER binaries (another
# tree's shardzd), each restarts on the same data directory in turn after SHARDZD, ROUNDS times
# (default 1), for figures side by side. SHARDER=hash makes it a hash namespace of SLOTS slots
# (default 1,048,576), whose slot table is restored at the restart. Usage:
# bench/daemon/restart.sh SHARDZD [PARTITIONS] [NODES] [OTHER...]
set -euo pipefail
bin=$1
parts=${2:-1000000}
nodes=${3:-0}
shift $(($# < 3 ? $# : 3))
others=("$@")
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardz-restart.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    [ -n "${KEEP:-}" ] && echo "kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT
wait_ready() {
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.01; done
}
echo "cores online: $(nproc)"
"$bin" --listen "127.0.0.1:$port" --data "$dir/data" --log-level warn 2>"$dir/first.log" &
pid=$!
wait_ready
kind=""
if [ "${SHARDER:-}" = hash ]; then
    kind=",\"sharder\":\"hash\",\"slots\":${SLOTS:-1048576}"
fi
if [ "$nodes" -eq 0 ]; then
    curl -sf -X POST "http://127.0.0.1:$port/v1/namespaces" --max-time 900 -o /dev/null \
        -d "{\"name\":\"big\",\"replicas\":3,\"partitions\":$parts$kind}" \
        -w "create $parts partitions x 3: %{http_code} in %{time_total} s\n"
else
    # NODES registered first (nothing listens at their addresses: the pings fail, so the
    # failure detector is slowed down to keep them alive while the partitions are placed)
    curl -sf -X POST "http://127.0.0.1:$port/v1/namespaces" -o /dev/null -d \
        "{\"name\":\"big\",\"replicas\":3,\"partitions\":0,\"ping_interval_ms\":60000,\"dead_after_ms\":3000000$kind}"
    python3 - "$port" "$nodes" <<'PY'
import json, sys, urllib.request
port, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    body = json.dumps({"id": f"w{i:04d}", "address": f"127.0.0.1:{20000 + i}"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/namespaces/big/nodes", data=body,
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
PY
    python3 -c "import json; print(json.dumps({'ids': [str(i) for i in range($parts)]}))" \
        > "$dir/parts.json"
    curl -sf -X POST "http://127.0.0.1:$port/v1/namespaces/big/partitions" --max-time 900 \
        -o /dev/null --data-binary "@$dir/parts.json" \
        -w "$nodes nodes, then $parts partitions x 3 added: %{http_code} in %{time_total} s\n"
fi
kill -TERM "$pid"
wait "$pid" || true
echo "database: $(du -sh "$dir/data" | cut -f1)"
restart_with() { # restart_with BINARY: one restart on the data directory, its figures, stop
    echo "== $1"
    t0=$(date +%s.%N)
    "$1" --listen "127.0.0.1:$port" --data "$dir/data" --log-level warn 2>>"$dir/second.log" &
    pid=$!
    wait_ready
    t1=$(date +%s.%N)
    echo "restart until /healthz answered: $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"
    # the daemon's CPU time (user + system, all threads) until then: on a shared machine the
    # wall time above waits for other processes too; this does not
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    echo "daemon CPU until then: $(python3 -c "print(f'{$ticks / $(getconf CLK_TCK):.2f}')") s"
    echo "RSS after the load: $(( $(ps -o rss= -p "$pid") / 1024 )) MB"
    echo "loaded: $(curl -sf "http://127.0.0.1:$port/v1/namespaces/big" | python3 -c \
        'import json, sys; j = json.load(sys.stdin); print(j["partitions"], "partitions,", sum(j["nodes"].values()), "nodes")')"
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
}
for ((round = 0; round < ${ROUNDS:-1}; round++)); do
    for b in "$bin" ${others[@]+"${others[@]}"}; do
        restart_with "$b"
    done
done
