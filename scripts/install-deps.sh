#!/usr/bin/env bash
# Installs the Debian packages shardz builds, tests and runs with; does nothing when they are present.
# The single list of the project's dependencies: add a package here, and nowhere else.
set -euo pipefail

PKGS=(build-essential cmake pkg-config
      libxxhash-dev libcmocka-dev libevent-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev
      zlib1g-dev                 # compressed assignment pages (src/daemon/apage.c)
      sqlite3 curl python3 etcd-server
      clang libclang-rt-14-dev   # clang + libFuzzer: scripts/fuzz.sh
      clang-format-15            # the format check in scripts/test.sh (InsertBraces needs 15)
      # the Python package (python/) and the conformance suite (tests/conformance/), run by
      # Debian's /usr/bin/python3: pytest, the xxhash binding the package declares, and xxhsum
      # (tests/conformance/golden/make_keyslot.sh makes the key -> slot vectors with it; go/ and
      # js/ test their XXH3 against it too)
      python3-pytest python3-xxhash xxhash
      golang-go                  # the Go module (go/), its tests and conformance driver
      wrk                        # HTTP load for bench/daemon/query.py and overload.py
      man-db groff-base          # tests/install: the installed man pages must render
      prometheus)                # promtool: tests/integration/test_monitoring.py checks ops/

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
