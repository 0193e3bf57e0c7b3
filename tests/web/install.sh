#!/usr/bin/env bash
# Installs what the dashboard's browser test needs: Debian's chromium (apt) and playwright-core
# (npm ci from package-lock.json, into tests/web/node_modules). Idempotent: when both are in
# place it returns at once. Needs root for apt-get (as on the project's machines and CI).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nodejs npm >/dev/null
fi

# npm ci only when node_modules does not match the lock file.
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat node_modules/.lock-sha256 2>/dev/null || true)
if [ "$want" != "$have" ] || [ ! -f node_modules/playwright-core/package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.lock-sha256
fi
