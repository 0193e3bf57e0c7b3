#!/usr/bin/env bash
# ctest install/cmake_install: `cmake --install` of a built tree into a DESTDIR under a prefix,
# then what a user of the installed files relies on:
#   - every file in its place (sbin/bin, libshardz.a and libshardz.so.1, headers, shardz.pc,
#     man pages, bash completion, unit, sysusers entry, config file);
#   - libshardz.so exports shardz_* only, and every function the installed headers declare;
#   - a small worker (tests/install/worker.c) compiled and linked with nothing but
#     `pkg-config --cflags --libs shardz` (and once statically against libshardz.a) registers
#     with the installed shardzd, serves the partitions of a namespace the installed
#     shardzctl created, and reports the version of version.h;
#   - the man pages render without a groff warning, and name every option --help lists;
#   - the bash completion loads; `systemd-analyze verify` accepts the unit (where it exists).
# Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
prefix=/opt/shardz
tmp=$(mktemp -d)
root=$tmp/root
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$root cmake --install "$build" --prefix "$prefix" >/dev/null
p=$root$prefix
pc=$(find "$root" -name shardz.pc)
[ -n "$pc" ] || fail "no shardz.pc installed"
L=$(dirname "$(dirname "$pc")") # the library directory, under DESTDIR

echo "== files"
unit=$p/lib/systemd/system/shardzd.service
conf=$p/etc/shardz/shardzd.conf
for f in "$p/sbin/shardzd" "$p/bin/shardzctl" "$p/bin/shardz-sim" "$L/libshardz.a" \
         "$L/libshardz.so.1" "$L/libshardz.so" "$L/pkgconfig/shardz.pc" \
         "$p/include/shardz/worker.h" "$p/include/shardz/version.h" \
         "$p/share/man/man8/shardzd.8" "$p/share/man/man1/shardzctl.1" \
         "$p/share/man/man1/shardz-sim.1" \
         "$p/share/bash-completion/completions/shardzctl" "$p/lib/sysusers.d/shardz.conf" \
         "$unit" "$conf"; do
    [ -e "$f" ] || fail "missing ${f#$root}"
done
[ "$(stat -c %a "$conf")" = 640 ] || fail "${conf#$root} is mode $(stat -c %a "$conf"), want 640"
grep -q 'SONAME.*\[libshardz\.so\.1\]' <<<"$(readelf -d "$L/libshardz.so.1")" || fail "soname"
for h in "$p"/include/shardz/*.h; do
    grep -q '#include "shardz/\(placement\|store\|range\)\.h"' "$h" &&
        fail "$h includes a header that is not installed"
done

echo "== exports"
exported=$(nm -D --defined-only "$L/libshardz.so.1" | awk '$2 != "A" {sub(/@.*/, "", $3); print $3}' | sort)
stray=$(echo "$exported" | grep -v '^shardz_[a-z]' || true)
[ -z "$stray" ] || fail "libshardz.so exports symbols outside shardz_*: $(echo $stray | head -c 400)"
declared=$(cat "$p"/include/shardz/*.h | tr '\n' ' ' | grep -o '[a-z_0-9 *]\bshardz_[a-z0-9_]*(' |
           grep -v '(\*' | grep -o 'shardz_[a-z0-9_]*' | sort -u)
[ -n "$declared" ] || fail "found no declarations in the installed headers"
for fn in $declared; do
    grep -qx "$fn" <<<"$exported" || fail "$fn is declared in an installed header, not exported"
done
echo "$(echo "$declared" | wc -l) declared functions exported, $(echo "$exported" | wc -l) in all"

echo "== pkg-config"
export PKG_CONFIG_PATH=$L/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
flags=$(pkg-config --cflags --libs shardz)
echo "pkg-config --cflags --libs shardz: $flags"
case "$flags" in *"$src"*) fail "the flags point into the source tree" ;; esac
[ "$(pkg-config --modversion shardz)" = "$("$p/sbin/shardzd" --version | cut -d' ' -f2)" ] ||
    fail "shardz.pc's version is not shardzd's"
cc -std=c11 -Wall -Wextra -Werror -pedantic -o "$tmp/worker" "$src/tests/install/worker.c" $flags
grep -q 'NEEDED.*libshardz\.so\.1' <<<"$(readelf -d "$tmp/worker")" ||
    fail "worker does not need libshardz.so.1"
# statically against libshardz.a: its dependencies are shardz.pc's Requires.private (shared)
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/worker-static" "$src/tests/install/worker.c" \
    $(pkg-config --cflags shardz) "$L/libshardz.a" \
    $(pkg-config --libs $(sed -n 's/^Requires.private: //p' "$pc")) \
    $(sed -n 's/^Libs.private: //p' "$pc")
if grep -q 'NEEDED.*libshardz' <<<"$(readelf -d "$tmp/worker-static")"; then
    fail "static worker needs libshardz.so"
fi

echo "== run: installed shardzd, shardzctl, and the two workers"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$p/sbin/shardzd" --memory --listen "127.0.0.1:$port" --log-level warn 2>"$tmp/shardzd.log" &
pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || fail "shardzd exited: $(cat "$tmp/shardzd.log")"
    sleep 0.1
done
ctl() { "$p/bin/shardzctl" --endpoint "127.0.0.1:$port" "$@"; }
ctl namespace create inst --partitions 4 >/dev/null
v="$(sed -n 's/^#define SHARDZ_VERSION_MAJOR //p' "$src/include/shardz/version.h").$(sed -n 's/^#define SHARDZ_VERSION_MINOR //p' "$src/include/shardz/version.h").$(sed -n 's/^#define SHARDZ_VERSION_PATCH //p' "$src/include/shardz/version.h")"
out=$(LD_LIBRARY_PATH=$L "$tmp/worker" "127.0.0.1:$port" inst w1 4) || fail "worker: $out"
[ "$out" = "serving 4 version $v" ] || fail "worker said '$out', want 'serving 4 version $v'"
deps=$(LD_LIBRARY_PATH=$L ldd "$tmp/worker")
grep -q "libshardz.so.1 => $L/libshardz.so.1" <<<"$deps" ||
    fail "the worker did not load the installed libshardz.so.1"
out=$("$tmp/worker-static" "127.0.0.1:$port" inst w2 4) || fail "static worker: $out"
[ "$out" = "serving 4 version $v" ] || fail "static worker said '$out'"
echo "both workers served the 4 partitions in turn; version $v"

echo "== man pages"
for page in "$p/share/man/man8/shardzd.8" "$p/share/man/man1/shardzctl.1" \
            "$p/share/man/man1/shardz-sim.1"; do
    warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
    [ -z "$warn" ] || fail "groff warns on ${page#$root}: $warn"
done
shardzd_man=$(MANWIDTH=200 man -l "$p/share/man/man8/shardzd.8" 2>/dev/null)
for opt in $("$p/sbin/shardzd" --help | grep -o '^  --[a-z-]*'); do
    # an entry of its own: the line starts with the option
    grep -qE -- "^ +${opt}( |\$)" <<<"$shardzd_man" || fail "shardzd(8) lacks an entry for $opt (in --help)"
done
sim_man=$(MANWIDTH=200 man -l "$p/share/man/man1/shardz-sim.1" 2>/dev/null)
for opt in $("$p/bin/shardz-sim" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    grep -q -- "$opt" <<<"$sim_man" || fail "shardz-sim(1) lacks $opt (in --help)"
done
ctl_man=$(MANWIDTH=200 man -l "$p/share/man/man1/shardzctl.1" 2>/dev/null)
cmds=$(ctl --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z ]*[a-z]\).*/\1/p' |
       sed 's/  .*//; s/ [A-Z].*//')
[ -n "$cmds" ] || fail "no commands found in shardzctl --help"
while read -r cmd; do
    grep -q -- "^ *$cmd" <<<"$ctl_man" || fail "shardzctl(1) lacks '$cmd' (in --help)"
done <<<"$cmds"
for fl in $(ctl --help | grep -o -- '--[a-z-]*' | sort -u); do
    grep -qE -- "^ +(-[a-z], )?${fl}( |\$)" <<<"$ctl_man" || fail "shardzctl(1) lacks an entry for $fl (in --help)"
done

echo "== bash completion"
bash -c "source '$p/share/bash-completion/completions/shardzctl' && complete -p shardzctl" ||
    fail "the completion does not register"

echo "== systemd unit"
grep -q "^ExecStart=$prefix/sbin/shardzd --config " "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
for want in '^User=shardz$' '^StateDirectory=shardz$' '^ProtectSystem=strict$' \
            '^NoNewPrivileges=yes$' '^Restart=on-failure$'; do
    grep -q "$want" "$unit" || fail "the unit lacks $want"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that ExecStart's program exists and that man:shardzd(8) resolves: a copy
    # of the unit naming the DESTDIR's paths
    mkdir -p "$tmp/unit"
    sed "s|$prefix/|$p/|g" "$unit" >"$tmp/unit/shardzd.service"
    out=$(MANPATH=$p/share/man systemd-analyze verify "$tmp/unit/shardzd.service" 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
    echo "systemd-analyze verify: clean"
else
    echo "systemd-analyze not installed: unit checked by its lines only"
fi
echo "PASS"
