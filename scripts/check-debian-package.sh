#!/usr/bin/env bash
# Builds shardz's Debian packages and installs them where nothing else is: as root,
#   1. copies the committed tree (git archive HEAD) to a temporary folder, installs the build
#      dependencies (dpkg-checkbuilddeps; debhelper), runs `dpkg-buildpackage -b -us -uc`;
#   2. runs lintian on the result: any error or warning fails (debian/*.lintian-overrides
#      carry the justified ones);
#   3. debootstraps a minimal bookworm (scripts/lib/chroot.sh), installs the three packages
#      there with apt (which fetches their dependencies from the mirror), and checks the
#      system user, the config file's owner and mode, the unit and the man pages;
#   4. starts the service: with systemctl where systemd runs the chroot, otherwise (a chroot
#      has no init) as the unit says, by hand: its ExecStart as its User, in its
#      StateDirectory; then checks /healthz and `shardzctl status` against it, and that a
#      worker compiled in the chroot with `pkg-config --cflags --libs shardz` (libshardz-dev)
#      serves a namespace there;
#   5. purges the packages: the binaries and the data directory are gone.
# Prints each step's time; exits non-zero when one fails. Slow: not part of scripts/test.sh;
# the result is recorded in docs/BENCHMARKS.md ("Debian packages").
#   scripts/check-debian-package.sh [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
. scripts/lib/chroot.sh
[ "${1:-}" = "--keep" ] && chroot_keep=1
[ "$(id -u)" -eq 0 ] || { echo "$0: run as root (apt-get, debootstrap, chroot)" >&2; exit 2; }

work=$(mktemp -d /var/tmp/shardz-deb.XXXXXX)
cleanup() {
    chroot_cleanup
    if [ "$chroot_keep" = 1 ]; then echo "packages kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
start=$(date +%s)
lap() { echo "   ($(($(date +%s) - $1)) s)"; }

echo "== build ($(git rev-parse --short HEAD))"
t0=$(date +%s)
mkdir -p "$work/shardz"
git archive --format=tar HEAD | tar -x -C "$work/shardz"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends dpkg-dev debhelper fakeroot lintian >/dev/null
missing=$(cd "$work/shardz" && dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
          sed 's/([^)]*)//g')
if [ -n "$missing" ]; then apt-get install -y -qq --no-install-recommends $missing >/dev/null; fi
(cd "$work/shardz" && dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) ||
    { tail -30 "$work/build.log"; exit 1; }
ls "$work"/*.deb | sed 's|.*/|   |'
lap "$t0"

echo "== lintian"
lintian --pedantic "$work"/*.changes 2>&1 | grep -v '^running with root privileges' >"$work/lintian.txt" || true
cat "$work/lintian.txt"
if grep -qE '^[EW]:' "$work/lintian.txt"; then echo "lintian: errors or warnings above" >&2; exit 1; fi
echo "   no error, no warning (info and pedantic tags above, if any)"

echo "== a clean bookworm"
t0=$(date +%s)
chroot_create "$work/root"
mkdir -p "$work/root/root/debs"
cp "$work"/shardz_*.deb "$work"/libshardz1_*.deb "$work"/libshardz-dev_*.deb "$work/root/root/debs/"
cp "$src/tests/install/worker.c" "$work/root/root/worker.c"
lap "$t0"

echo "== install the packages"
t0=$(date +%s)
chroot_run 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/debs/*.deb >/dev/null'
chroot_run 'set -e
    getent passwd shardz >/dev/null || { echo "no shardz user"; exit 1; }
    [ "$(stat -c "%U:%G %a" /etc/shardz/shardzd.conf)" = "root:shardz 640" ] ||
        { echo "config: $(stat -c "%U:%G %a" /etc/shardz/shardzd.conf)"; exit 1; }
    for f in /usr/sbin/shardzd /usr/bin/shardzctl /usr/bin/shardz-sim /lib/systemd/system/shardzd.service \
             /usr/share/man/man8/shardzd.8.gz /usr/share/man/man1/shardzctl.1.gz \
             /usr/share/bash-completion/completions/shardzctl /usr/include/shardz/worker.h; do
        [ -e "$f" ] || { echo "missing $f"; exit 1; }
    done
    echo "   installed: $(dpkg-query -W -f "\${Package} \${Version}, " shardz libshardz1 libshardz-dev)"
    echo "   shardzd --version: $(shardzd --version)"'
lap "$t0"

echo "== start the service"
t0=$(date +%s)
chroot_run 'set -e
    unit=/lib/systemd/system/shardzd.service
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl start shardzd
        echo "   started by systemctl"
    else
        # no init in a chroot: what the unit says, by hand
        user=$(sed -n "s/^User=//p" $unit)
        state=/var/lib/$(sed -n "s/^StateDirectory=//p" $unit)
        exec_start=$(sed -n "s/^ExecStart=//p" $unit)
        install -d -o "$user" -g "$user" -m 0750 "$state"
        cd "$state"
        setpriv --reuid "$user" --regid "$user" --init-groups $exec_start >/var/log/shardzd.log 2>&1 &
        echo $! >/run/shardzd.pid
        echo "   no systemd here: started \"$exec_start\" as $user by hand (pid $!)"
    fi
    for i in $(seq 100); do
        if { exec 3<>/dev/tcp/127.0.0.1/7557; } 2>/dev/null; then
            printf "GET /healthz HTTP/1.0\r\n\r\n" >&3
            reply=$(cat <&3)
            exec 3<&-
            case "$reply" in "HTTP/1."?" 200"*) break ;; esac
        fi
        sleep 0.1
    done
    case "$reply" in "HTTP/1."?" 200"*) echo "   GET /healthz: $(head -1 <<<"$reply" | tr -d "\r")" ;;
        *) echo "no healthy shardzd: ${reply:-no answer}"; cat /var/log/shardzd.log; exit 1 ;; esac
    shardzctl status | sed "s/^/   /"
    echo "   data: /var/lib/shardz: $(ls /var/lib/shardz | tr "\n" " ")(owner $(stat -c %U /var/lib/shardz))"'
lap "$t0"

echo "== a worker built against libshardz-dev"
t0=$(date +%s)
chroot_run 'set -e
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev pkg-config >/dev/null
    cd /root
    gcc -std=c11 -Wall -Wextra -Werror -o worker worker.c $(pkg-config --cflags --libs shardz)
    echo "   $(ldd worker | grep libshardz)"
    shardzctl namespace create pkg --partitions 4 >/dev/null
    out=$(./worker 127.0.0.1:7557 pkg w1 4)
    echo "   worker: $out"
    [ "${out%% version*}" = "serving 4" ]'
lap "$t0"

echo "== purge"
t0=$(date +%s)
chroot_run 'set -e
    if [ -f /run/shardzd.pid ]; then kill "$(cat /run/shardzd.pid)"; fi
    if [ -d /run/systemd/system ]; then systemctl stop shardzd || true; fi
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq shardz libshardz-dev libshardz1 >/dev/null
    for f in /usr/sbin/shardzd /var/lib/shardz /etc/shardz/shardzd.conf; do
        [ ! -e "$f" ] || { echo "$f is still there after purge"; exit 1; }
    done
    echo "   binaries, config and data gone"'
lap "$t0"
echo "== total $(($(date +%s) - start)) s: PASSED"
