#!/usr/bin/env bash
# Runs the dashboard's browser test (tests/web/dashboard.test.mjs) against a build tree:
#   tests/web/run.sh [BUILD_DIR]     (default: build/release)
# BUILD_DIR must hold src/daemon/shardzd and examples/kv/shardz-kv. Installs chromium and
# playwright-core first (tests/web/install.sh, quick when already there). Screenshots:
# BUILD_DIR/tests/web/dashboard.png (and dashboard-failure.png with logs when a step fails).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build/release}
build=$(cd "$build" && pwd)

export SHARDZD=${SHARDZD:-$build/src/daemon/shardzd}
export SHARDZ_KV=${SHARDZ_KV:-$build/examples/kv/shardz-kv}
export FAKEWORKER=${FAKEWORKER:-$root/tests/integration/fakeworker.py}
export SHARDZ_WEB_OUT=${SHARDZ_WEB_OUT:-$build/tests/web}
for f in "$SHARDZD" "$SHARDZ_KV"; do
    [ -x "$f" ] || { echo "tests/web/run.sh: $f is missing: build shardzd and shardz-kv in $build" >&2; exit 1; }
done

"$here/install.sh"
mkdir -p "$SHARDZ_WEB_OUT"
cd "$here"
exec node --test --test-reporter=spec --test-concurrency=1 dashboard.test.mjs scale.test.mjs
