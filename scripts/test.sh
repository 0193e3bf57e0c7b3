#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds an optimised tree and an ASan+UBSan tree,
# and runs every test (ctest) in both. Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
tests/web/install.sh   # chromium and playwright-core for the dashboard's browser test
jobs=$(nproc 2>/dev/null || echo 2)
status=0
for kind in asan release; do
  echo "== build ($kind)"
  scripts/build.sh "$kind"
  echo "== test ($kind)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd "build/$kind" && ctest --output-on-failure -j "$jobs" --timeout 600) || status=1
done
if [ $status -ne 0 ]; then echo "TESTS FAILED"; else echo "ALL TESTS PASSED"; fi
exit $status
