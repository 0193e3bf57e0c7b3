#!/usr/bin/env bash
# Configures and builds one tree: `scripts/build.sh release` (build/release, optimised) or
# `scripts/build.sh asan` (build/asan, AddressSanitizer + UndefinedBehaviorSanitizer),
# `scripts/build.sh tsan` (build/tsan, ThreadSanitizer; ctest -L tsan runs what it checks),
# `scripts/build.sh fuzz` (build/fuzz, clang + libFuzzer: only the fuzz targets, tests/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=$(nproc 2>/dev/null || echo 2)
case "$kind" in
  release) cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null ;;
  asan)    cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSHARDZ_SANITIZE=ON >/dev/null ;;
  fuzz)    cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                 -DSHARDZ_FUZZ=ON >/dev/null
           cmake --build build/fuzz -j "$jobs" --target fuzz
           exit 0 ;;
  tsan)    cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DSHARDZ_TSAN=ON >/dev/null ;;
  *) echo "usage: $0 release|asan|tsan|fuzz" >&2; exit 2 ;;
esac
cmake --build "build/$kind" -j "$jobs"
