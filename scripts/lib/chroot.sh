# Shared by scripts/check-fresh-debian.sh and scripts/check-debian-package.sh (sourced, bash):
# a minimal Debian 12 (debootstrap --variant=minbase bookworm) in a temporary folder, entered
# with chroot, with /proc, /sys, /dev (and /dev/pts, /dev/shm) mounted and everything
# unmounted, every process left inside stopped, and the folder removed on exit.
# Needs root. The mirror is the host's (its apt sources), so debootstrap and apt inside go
# where the host's apt goes. Only the network's own requirements are carried in: the resolver,
# apt's proxy and validity settings, and local CA certificates (a proxy that intercepts TLS).

chroot_dir=""
chroot_keep=0

# The host's Debian mirror (the first deb.debian.org-like URL of its bookworm sources).
chroot_mirror() {
    local url
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
              2>/dev/null | grep -v '^\s*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ')
    echo "${url:-http://deb.debian.org/debian}"
}

chroot_security_mirror() {
    local url
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
              2>/dev/null | grep -v '^\s*#' | grep -oE 'https?://[^ ]+/debian-security/?( |$)' | head -1 |
              tr -d ' ')
    echo "${url:-http://deb.debian.org/debian-security}"
}

# Stops the processes whose root is the chroot (started inside it), then unmounts.
chroot_cleanup() {
    [ -n "$chroot_dir" ] || return 0
    local p root
    for p in /proc/[0-9]*; do
        root=$(readlink "$p/root" 2>/dev/null || true)
        if [ "$root" = "$chroot_dir" ]; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
    done
    sleep 0.5
    for m in dev/shm dev/pts dev sys proc; do
        if mountpoint -q "$chroot_dir/$m"; then
            umount -R "$chroot_dir/$m" 2>/dev/null || umount -lR "$chroot_dir/$m" || true
        fi
    done
    if [ "$chroot_keep" = 1 ]; then
        echo "chroot kept in $chroot_dir"
    elif ! grep -q " $chroot_dir/" /proc/mounts; then
        rm -rf "$chroot_dir"
    else
        echo "chroot $chroot_dir still has mounts: not removed" >&2
    fi
}

# chroot_create DIR: debootstraps bookworm into DIR, prepares it, mounts what it needs.
chroot_create() {
    chroot_dir=$1
    mkdir -p "$chroot_dir"
    chmod 0755 "$chroot_dir" # mktemp's 0700 would keep apt's _apt user out
    local mirror security
    mirror=$(chroot_mirror)
    security=$(chroot_security_mirror)
    if ! command -v debootstrap >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    echo "debootstrap --variant=minbase bookworm $chroot_dir $mirror"
    debootstrap --variant=minbase bookworm "$chroot_dir" "$mirror" >"$chroot_dir.debootstrap.log" 2>&1 ||
        { tail -20 "$chroot_dir.debootstrap.log" >&2; return 1; }
    rm -f "$chroot_dir.debootstrap.log"
    cat >"$chroot_dir/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
    cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
    # no service starts from a package's postinst inside the chroot (the usual chroot policy:
    # nothing of the host's init is there to run it)
    printf '#!/bin/sh\nexit 101\n' >"$chroot_dir/usr/sbin/policy-rc.d"
    chmod +x "$chroot_dir/usr/sbin/policy-rc.d"
    apt-config dump | grep -E '^Acquire::(https?::Proxy|Check-Valid-Until|Check-Date) ' \
        >"$chroot_dir/etc/apt/apt.conf.d/50host-network" || true
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
        mkdir -p "$chroot_dir/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$chroot_dir/usr/local/share/ca-certificates/"
        chroot_run "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates >/dev/null && update-ca-certificates >/dev/null"
    fi
    mount -t proc proc "$chroot_dir/proc"
    mount -t sysfs sysfs "$chroot_dir/sys"
    mount --bind /dev "$chroot_dir/dev"
    mount -t devpts -o newinstance,ptmxmode=0666 devpts "$chroot_dir/dev/pts" 2>/dev/null ||
        mount --bind /dev/pts "$chroot_dir/dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs "$chroot_dir/dev/shm"
}

# chroot_run 'COMMAND': runs a shell command inside, as root, with a clean environment (plus
# the host's proxy variables, when set).
chroot_run() {
    local envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
                LANG=C.UTF-8 TERM=dumb)
    local v
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        if [ -n "${!v:-}" ]; then envs+=("$v=${!v}"); fi
    done
    env -i "${envs[@]}" chroot "$chroot_dir" /bin/bash -c "$1"
}
