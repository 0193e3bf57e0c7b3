#!/usr/bin/env bash
# The README's first command, the main job: installs the Debian dependencies, builds the
# release tree, and runs a local cluster - shardzd on its embedded SQLite store, a hash
# namespace, and three shardz-kv example workers - printing where to look, until Ctrl-C.
# Extra arguments go to examples/run-cluster.sh (--workers N, --strict, --exit-after S, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release >/dev/null
exec examples/run-cluster.sh "$@"
