#!/usr/bin/env bash
# The client libraries side by side (bench/clients/run.py): router key lookup ns per language
# and the time from an assignment reaching a worker to its serve hook returning, for every
# language with a lookup_<lang> program / conformance driver. Builds the release tree first.
# Figures go into docs/BENCHMARKS.md with this command's output.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
scripts/install-deps.sh
scripts/build.sh release >/dev/null
machine_block
export SHARDZ_BUILD_DIR="$PWD/build/release"
run /usr/bin/python3 bench/clients/run.py "$@"
