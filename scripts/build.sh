#!/usr/bin/env bash
# Configures and builds one tree: `scripts/build.sh release` (build/release, optimised) or
# `scripts/build.sh asan` (build/asan, AddressSanitizer + UndefinedBehaviorSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=$(nproc 2>/dev/null || echo 2)
case "$kind" in
  release) cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null ;;
  asan)    cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSHARDZ_SANITIZE=ON >/dev/null ;;
  *) echo "usage: $0 release|asan" >&2; exit 2 ;;
esac
cmake --build "build/$kind" -j "$jobs"
