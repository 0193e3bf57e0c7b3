#!/usr/bin/env bash
# Installs the Debian packages shardz builds, tests and runs with; does nothing when they are present.
# The single list of the project's dependencies: add a package here, and nowhere else.
set -euo pipefail

PKGS=(build-essential cmake pkg-config
      libxxhash-dev libcmocka-dev libevent-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev
      sqlite3 curl python3 etcd-server
      clang libclang-rt-14-dev   # clang + libFuzzer: scripts/fuzz.sh
      clang-format               # the format check in scripts/test.sh
      golang-go xxhash)          # the Go module (go/) and its XXH3 vectors (xxhsum)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
