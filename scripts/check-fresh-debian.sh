#!/usr/bin/env bash
# The README's promise, checked: its two commands on a plain Debian 12. As root: debootstraps
# a minimal bookworm (debootstrap --variant=minbase: no compiler, no cmake, no git, no node)
# into a temporary folder, copies the committed tree in (git archive HEAD: what a clone
# holds), and runs there, through chroot, `scripts/run.sh --exit-after 20` (the local cluster
# up, keys stored through their owners, then stopped) and `scripts/test.sh` (the whole suite).
# Each command installs what it needs itself, from Debian (nodejs 18 included) and npm.
# Prints each step's result and time; exits non-zero when one fails. Slow (it builds and tests
# everything, after downloading the dependencies): not part of scripts/test.sh. Results are
# recorded in docs/BENCHMARKS.md ("A fresh Debian 12").
#   scripts/check-fresh-debian.sh [--keep] [--only-run]
#     --keep      keep the chroot (and the build trees in it) afterwards
#     --only-run  run scripts/run.sh only, not scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
only_run=0
. scripts/lib/chroot.sh
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) chroot_keep=1; shift ;;
        --only-run) only_run=1; shift ;;
        *) echo "usage: $0 [--keep] [--only-run]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "$0: run as root (debootstrap, chroot, mount)" >&2; exit 2; }

dir=$(mktemp -d /var/tmp/shardz-fresh-debian.XXXXXX)
trap chroot_cleanup EXIT
status=0
start=$(date +%s)
step() { # step NAME COMMAND: runs it in the chroot, logs to the host, reports the time
    local name=$1 t0 rc
    t0=$(date +%s)
    echo "== $name ($(date -u +%H:%M:%S))"
    set +e
    chroot_run "$2" >"$dir.$name.log" 2>&1
    rc=$?
    set -e
    echo "   exit $rc after $(($(date +%s) - t0)) s; log: $dir.$name.log"
    if [ $rc -ne 0 ]; then tail -40 "$dir.$name.log"; status=1; fi
}

t0=$(date +%s)
chroot_create "$dir"
echo "   minimal bookworm ready after $(($(date +%s) - t0)) s"
mkdir -p "$dir/root/shardz"
git -C "$src" archive --format=tar HEAD | tar -x -C "$dir/root/shardz"
echo "   tree: $(git -C "$src" rev-parse --short HEAD) ($(git -C "$src" log -1 --format=%s | cut -c1-60))"
chroot_run 'echo "   inside: $(. /etc/os-release; echo $PRETTY_NAME), $(dpkg -l | grep -c ^ii) packages, gcc: $(command -v gcc || echo none), node: $(command -v node || echo none)"'

step run "cd /root/shardz && scripts/run.sh --exit-after 20"
if [ $only_run = 0 ]; then
    step test "cd /root/shardz && scripts/test.sh"
    chroot_run 'echo "   node used: $(node --version) ($(dpkg-query -W -f "\${Package} \${Version}" nodejs))"'
    grep -E "ALL TESTS PASSED|TESTS FAILED|tests passed|tests failed" "$dir.test.log" | tail -3 || true
fi
echo "== total $(($(date +%s) - start)) s: $([ $status = 0 ] && echo PASSED || echo FAILED)"
exit $status
