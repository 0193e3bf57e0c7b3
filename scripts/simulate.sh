#!/usr/bin/env bash
# The placement simulator: installs the Debian
# dependencies, builds the release tree, then runs the placement simulator on its default
# scenario, every sharder kind side by side, and prints its readable report.
# Extra arguments go to shardz-sim and override the defaults (e.g. --json, --load zipf).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh release >/dev/null

args=(--partitions 100000 --replicas 3 --nodes 100 --zones 3 --load lognormal
      --events join:5,leave:3,zoneloss:1,loadshift,rebalance --kind all --seed 1)
echo "+ build/release/src/sim/shardz-sim ${args[*]} $*" >&2
exec build/release/src/sim/shardz-sim "${args[@]}" "$@"
