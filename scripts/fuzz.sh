#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz) for a bounded time, one after another, starting from
# its seed corpus (tests/fuzz/corpus/<target>, read only: what a run finds goes to a scratch
# directory). `scripts/fuzz.sh [SECONDS]` (default 25 per target). Prints each target's
# execution count; exits non-zero when a target crashes, leaks or times out (the input that
# did it is kept in build/fuzz/artifacts/). Builds build/fuzz first (scripts/build.sh fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-25}
scripts/build.sh fuzz >/dev/null
bin=build/fuzz/tests/fuzz
art=build/fuzz/artifacts
mkdir -p "$art"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
targets=$(find "$bin" -maxdepth 1 -type f -executable -name 'fuzz_*' -printf '%f\n' | sort)
[ -n "$targets" ] || { echo "fuzz: no targets built in $bin"; exit 1; }
for t in $targets; do
  dir=tests/fuzz/corpus/$t
  [ -d "$dir" ] || { echo "fuzz $t: no seed corpus in $dir"; status=1; continue; }
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  if "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$art/$t-" "$scratch/$t" "$dir" >"$log" 2>&1; then
    echo "fuzz $t: $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") executions in ${seconds}s, no crash"
  else
    echo "fuzz $t: FAILED (artifacts in $art)"
    tail -40 "$log"
    status=1
  fi
done
exit $status
