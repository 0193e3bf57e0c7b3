#!/usr/bin/env bash
# Starts a local shardz cluster: the coordinator (shardzd on its embedded store in a temporary
# directory; or, with --coordinators N, a local etcd and N coordinators on it, one leading), a
# namespace, and a few shardz-kv example workers; stores a few keys through their owners, prints
# where to look, and on Ctrl-C stops everything (workers leave gracefully first).
# Usage: examples/run-cluster.sh [--workers N] [--strict] [--exit-after SECONDS] ... (--help)
set -euo pipefail
cd "$(dirname "$0")/.."

workers=3
port=7557
first_worker_port=9101
ns=kv
sharder=hash
partitions=16
replicas=1
consistency=available
build=build/release
exit_after=""
keep=0
ncoord=1
etcd_port=23790

usage() {
    cat <<EOF
usage: examples/run-cluster.sh [options]
  --workers N          shardz-kv workers to start (default $workers)
  --port P             coordinator port on 127.0.0.1 (default $port)
  --worker-port P      first worker port; the others follow (default $first_worker_port)
  --namespace NS       namespace to create (default $ns)
  --sharder KIND       hash or replica (default $sharder)
  --partitions N       partitions (default $partitions)
  --replicas R         replicas per partition (default $replicas)
  --strict             consistency "strict": owners never overlap (default available)
  --build DIR          build tree with src/daemon/shardzd and examples/kv/shardz-kv
                       (default $build; built with scripts/build.sh release when missing)
  --coordinators N     N > 1: start a local etcd (Debian's etcd-server) and N coordinators
                       on it, on ports P, P+1, ... (default 1: one coordinator on SQLite)
  --etcd-port P        etcd's client port with --coordinators (default $etcd_port; P+10 for
                       its peer port)
  --exit-after S       stop the cluster after S seconds instead of waiting for Ctrl-C
  --keep               keep the temporary directory (logs, data) after stopping
Environment: SHARDZ_SECRET, when set, is required by the coordinator and sent by the workers.
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --workers) workers=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --worker-port) first_worker_port=$2; shift 2 ;;
        --namespace) ns=$2; shift 2 ;;
        --sharder) sharder=$2; shift 2 ;;
        --partitions) partitions=$2; shift 2 ;;
        --replicas) replicas=$2; shift 2 ;;
        --strict) consistency=strict; shift ;;
        --build) build=$2; shift 2 ;;
        --exit-after) exit_after=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --coordinators) ncoord=$2; shift 2 ;;
        --etcd-port) etcd_port=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

shardzd=$build/src/daemon/shardzd
kv=$build/examples/kv/shardz-kv
if [ ! -x "$shardzd" ] || [ ! -x "$kv" ]; then
    if [ "$build" = build/release ]; then
        echo "building the release tree (scripts/build.sh release)..." >&2
        scripts/build.sh release >/dev/null
    fi
    for b in "$shardzd" "$kv"; do
        [ -x "$b" ] || { echo "missing $b: build it first" >&2; exit 1; }
    done
fi
command -v curl >/dev/null || { echo "curl is needed (scripts/install-deps.sh)" >&2; exit 1; }

tmp=$(mktemp -d -t shardz-cluster.XXXXXX)
coord=127.0.0.1:$port
auth=()
if [ -n "${SHARDZ_SECRET:-}" ]; then auth=(-H "Authorization: Bearer $SHARDZ_SECRET"); fi
pids=()
coord_pid=""
coord_pids=()
etcd_pid=""

cleanup() {
    trap - EXIT INT TERM
    echo
    if [ ${#pids[@]} -gt 0 ]; then
        echo "stopping: workers leave (each waits at most 5 s to be released)..."
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    if [ ${#coord_pids[@]} -gt 0 ]; then
        kill -TERM "${coord_pids[@]}" 2>/dev/null || true
        wait "${coord_pids[@]}" 2>/dev/null || true
    fi
    if [ -n "$etcd_pid" ]; then
        kill -TERM "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
    fi
    if [ "$keep" = 1 ]; then
        echo "logs and data kept in $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls a URL until it answers 2xx (at most $2 seconds).
wait_http() {
    local url=$1 secs=$2 i
    for ((i = 0; i < secs * 20; i++)); do
        if curl -fsS -o /dev/null "${auth[@]}" "$url" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "no answer from $url after ${secs}s" >&2
    return 1
}

# Reads one field of a JSON body on stdin.
json_field() {
    python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k] if isinstance(v, dict) else v[int(k)]
print(v)' "$1"
}

coords=$coord
if [ "$ncoord" -gt 1 ]; then
    command -v etcd >/dev/null || { echo "etcd is needed (scripts/install-deps.sh)" >&2; exit 1; }
    etcd --data-dir "$tmp/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$((etcd_port + 10))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 10))" \
        --initial-cluster "default=http://127.0.0.1:$((etcd_port + 10))" >"$tmp/etcd.log" 2>&1 &
    etcd_pid=$!
    for ((i = 0; i < 100; i++)); do
        curl -fsS -o /dev/null -X POST --data '{"key":"AA=="}' \
            "http://127.0.0.1:$etcd_port/v3/kv/range" 2>/dev/null && break
        sleep 0.1
    done
    echo "etcd: http://127.0.0.1:$etcd_port (pid $etcd_pid)"
    for ((c = 0; c < ncoord; c++)); do
        a=127.0.0.1:$((port + c))
        "$shardzd" --listen "$a" --store "etcd://127.0.0.1:$etcd_port" --id "c$c" \
            >"$tmp/shardzd-c$c.log" 2>&1 &
        coord_pids+=($!)
        if [ "$c" -gt 0 ]; then coords="$coords,$a"; fi
    done
    coord_pid=${coord_pids[0]}
    for ((c = 0; c < ncoord; c++)); do
        wait_http "http://127.0.0.1:$((port + c))/healthz" 10 ||
            { cat "$tmp/shardzd-c$c.log" >&2; exit 1; }
    done
    # writes go to any coordinator (followers forward them); wait for a leader
    for ((i = 0; i < 100; i++)); do
        if curl -fsS "${auth[@]}" "http://$coord/v1/status" | grep -q '"leader":{'; then break; fi
        sleep 0.1
    done
    echo "coordinators: $coords (pids ${coord_pids[*]}; leader: $(curl -fsS "${auth[@]}" \
        "http://$coord/v1/status" | json_field leader.address))"
else
    "$shardzd" --listen "$coord" --data "$tmp/data" >"$tmp/shardzd.log" 2>&1 &
    coord_pid=$!
    coord_pids=("$coord_pid")
    wait_http "http://$coord/healthz" 10 || { cat "$tmp/shardzd.log" >&2; exit 1; }
    echo "coordinator: http://$coord (pid $coord_pid, data $tmp/data)"
fi

body=$(printf '{"name":"%s","sharder":"%s","replicas":%s,"consistency":"%s","partitions":%s}' \
    "$ns" "$sharder" "$replicas" "$consistency" "$partitions")
code=$(curl -sS -o "$tmp/create.json" -w '%{http_code}' "${auth[@]}" \
    -H 'Content-Type: application/json' -X POST --data "$body" "http://$coord/v1/namespaces")
case "$code" in
    200|201) echo "namespace: $body" ;;
    409) echo "namespace $ns exists already" ;;
    *) echo "creating the namespace failed: HTTP $code $(cat "$tmp/create.json")" >&2; exit 1 ;;
esac

for ((i = 1; i <= workers; i++)); do
    wport=$((first_worker_port + i - 1))
    "$kv" --coordinator "$coords" --namespace "$ns" --id "w$i" --listen "127.0.0.1:$wport" \
        --zone "z$(((i - 1) % 3))" --log "$tmp/w$i.serve.log" \
        --leave-timeout-ms 5000 >"$tmp/w$i.log" 2>&1 &
    pids+=($!)
done
for ((i = 1; i <= workers; i++)); do
    wait_http "http://127.0.0.1:$((first_worker_port + i - 1))/healthz" 10
done

# Wait (at most 10 s) until every replica slot has a serving owner.
missing=""
deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ]; do
    missing=$(curl -fsS "${auth[@]}" "http://$coord/v1/namespaces/$ns" | json_field missing) || true
    [ "$missing" = 0 ] && break
    sleep 0.1
done
echo "workers: $workers shardz-kv on 127.0.0.1:$first_worker_port.." \
    "(replica slots unowned: ${missing:-?})"

# A few keys, each stored through the worker that owns it (hash namespaces route by key).
if [ "$sharder" = hash ]; then
    for k in user:1 user:2 user:3 '{cart}:a' '{cart}:b'; do
        ek=$(python3 -c 'import sys, urllib.parse
print(urllib.parse.quote(sys.argv[1], safe=""))' "$k")
        owner=$(curl -fsS "${auth[@]}" "http://$coord/v1/namespaces/$ns/lookup?key=$ek" |
            python3 -c 'import json,sys
r = json.load(sys.stdin)
s = [x for x in r.get("replicas", []) if x.get("state") == "serving"]
print(s[0].get("address", "") if s else "", r.get("partition", "?"))') || owner=""
        addr=${owner% *}
        if [ -z "$addr" ]; then
            echo "  $k: partition ${owner#* } has no serving owner yet"
        else
            curl -fsS -o /dev/null -X PUT --data-binary "value of $k" "http://$addr/kv/$ek" &&
                echo "  PUT $k -> partition ${owner#* } on $addr" || echo "  PUT $k on $addr failed"
        fi
    done
fi

cat <<EOF

Look around:
  curl -s http://$coord/v1/namespaces/$ns                 # config, revision, node counts
  curl -s http://$coord/v1/namespaces/$ns/state           # who serves what
  curl -s 'http://$coord/v1/namespaces/$ns/lookup?key=user:1'
  curl -s http://127.0.0.1:$first_worker_port/status          # a worker's partitions
  curl -s http://127.0.0.1:$first_worker_port/kv/user:1       # 409 names the owner if not here
  kill -TERM ${pids[0]}      # w1 leaves gracefully: its partitions move, then it exits 0
  kill -9 ${pids[$((workers - 1))]}        # w$workers dies: its partitions are re-placed
Logs: $tmp/shardzd.log, $tmp/w<i>.log; serve/delete events: $tmp/w<i>.serve.log
EOF
if [ "$ncoord" -gt 1 ]; then
    cat <<EOF
Several coordinators:
  curl -s http://$coord/v1/status      # role, leader, every coordinator
  kill -9 <the leader's pid>           # another one leads within the lease TTL (5 s)
Coordinator logs: $tmp/shardzd-c<i>.log; etcd: $tmp/etcd.log
EOF
fi

if [ -n "$exit_after" ]; then
    sleep "$exit_after"
else
    echo "Ctrl-C stops the cluster."
    while :; do
        alive=0
        for p in "${coord_pids[@]}"; do if kill -0 "$p" 2>/dev/null; then alive=1; fi; done
        [ "$alive" = 1 ] || break
        sleep 1
    done
    echo "the coordinators exited" >&2
fi
