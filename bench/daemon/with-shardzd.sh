#!/usr/bin/env bash
# Runs one command against a fresh shardzd: starts SHARDZD on a free loopback port with a new
# temporary data directory (--log-level warn, then the given flags), waits for /healthz, runs
# the command with SHARDZ_COORDINATOR=127.0.0.1:PORT and SHARDZD_PID set, stops the daemon
# (SIGTERM) and prints its warnings counted by message. Exit status: the command's.
# Usage: bench/daemon/with-shardzd.sh SHARDZD [DAEMON FLAGS...] -- COMMAND [ARGS...]
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 SHARDZD [DAEMON FLAGS...] -- COMMAND [ARGS...]" >&2
    exit 2
fi
bin=$1
shift
flags=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    flags+=("$1")
    shift
done
if [ $# -lt 2 ]; then
    echo "usage: $0 SHARDZD [DAEMON FLAGS...] -- COMMAND [ARGS...]" >&2
    exit 2
fi
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shardz-bench.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
"$bin" --listen "127.0.0.1:$port" --data "$tmp/data" --log-level warn ${flags[@]+"${flags[@]}"} \
    2>"$tmp/shardzd.log" &
pid=$!
cleanup() {
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
python3 - "$port" <<'PY'
import sys, time, urllib.request
end = time.time() + 15
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1)
        break
    except Exception:
        if time.time() > end:
            sys.exit("shardzd did not become ready")
        time.sleep(0.05)
PY
echo "shardzd: pid $pid on 127.0.0.1:$port, flags: --log-level warn ${flags[*]:-}" \
    "(data in a new temporary directory)"
rc=0
SHARDZ_COORDINATOR="127.0.0.1:$port" SHARDZD_PID="$pid" "$@" || rc=$?
if ! kill -0 "$pid" 2>/dev/null; then
    echo "shardzd: EXITED during the run"
fi
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || echo "shardzd: exit status $?"
if [ -s "$tmp/shardzd.log" ]; then
    echo "shardzd log ($(wc -l <"$tmp/shardzd.log") lines), by message:"
    sed -n 's/.*level=\([a-z]*\) msg="\([^"]*\)".*/  \1 \2/p' "$tmp/shardzd.log" | sort | uniq -c
else
    echo "shardzd log: empty"
fi
exit "$rc"
