#!/usr/bin/env bash
# The whole test suite: installs dependencies, checks the C sources' formatting (.clang-format),
# builds an ASan+UBSan tree and runs every test (ctest) there, and an optimised tree for the
# tests only it can run (the language libraries, conformance, install) and the unit tests;
# builds a ThreadSanitizer tree and runs the tests labelled tsan there (libshardz's, the
# daemon's core); then runs each libFuzzer target for FUZZ_SECONDS (default 25) on its own,
# with nothing else running. Exits non-zero when any test fails, ThreadSanitizer reports a
# race, or a fuzz target crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
tests/web/install.sh   # chromium and playwright-core for the dashboard's browser test
js/install.sh          # the JavaScript package's npm dependencies (package-lock.json)
jobs=$(nproc 2>/dev/null || echo 2)
status=0
echo "== format (clang-format-15 --dry-run -Werror against .clang-format)"
if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
  sources=$(git ls-files '*.c' '*.h')
else
  sources=$(find include src tests bench examples -name '*.[ch]')
fi
if ! clang-format-15 --dry-run -Werror $sources; then
  echo "format: the files above differ from .clang-format; run: clang-format-15 -i FILE..."
  status=1
fi
# Every test runs in the ASan+UBSan tree. The release tree runs what that tree cannot hold (the
# Go, Python and JavaScript libraries, the conformance run of every library against the
# release shardzd, the install check) and the C unit tests, not a second copy of the
# integration, CLI, store and browser tests, which are most of the suite's time (their
# processes run one at a time): SHARDZ_TEST_RELEASE_ALL=1 runs everything there too.
release_skip='^(integration|cli|web|store)/'
if [ "${SHARDZ_TEST_RELEASE_ALL:-0}" = 1 ]; then release_skip='^$'; fi
for kind in asan release; do
  echo "== build ($kind)"
  scripts/build.sh "$kind"
  echo "== test ($kind)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  skip='^$'
  if [ "$kind" = release ]; then skip=$release_skip; fi
  (cd "build/$kind" && ctest --output-on-failure -j "$jobs" --timeout 600 -E "$skip") || status=1
done
echo "== build (tsan)"
scripts/build.sh tsan
echo "== test (tsan: ctest -L tsan)"
(cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
   ctest --output-on-failure -j "$jobs" --timeout 600 -L tsan) || status=1
echo "== fuzz (${FUZZ_SECONDS:-25} s per target, one at a time)"
scripts/fuzz.sh "${FUZZ_SECONDS:-25}" || status=1
if [ $status -ne 0 ]; then echo "TESTS FAILED"; else echo "ALL TESTS PASSED"; fi
exit $status
