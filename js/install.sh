#!/usr/bin/env bash
# Installs the JavaScript package's dependency (lossless-json) into js/node_modules
# with `npm ci` from package-lock.json, and Debian's nodejs + npm when node is missing.
# Idempotent: returns at once when node_modules matches the lock file. scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat node_modules/.lock-sha256 2>/dev/null || true)
if [ "$want" != "$have" ] || [ ! -f node_modules/lossless-json/package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.lock-sha256
fi
