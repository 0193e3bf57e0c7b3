# Shared by scripts/bench.sh and scripts/bench-daemon.sh (sourced, not run): the machine
# block every benchmark run starts with, and `run`, which echoes a command and runs it.
machine_block() {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cores online: $(getconf _NPROCESSORS_ONLN)"
    grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/^model name[[:space:]]*: /cpu: /' || true
    echo "kernel: $(uname -sr), compiler: $(cc --version | head -1)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    local rev
    rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
    git diff --quiet HEAD 2>/dev/null || rev="$rev (uncommitted changes)"
    echo "tree: $rev"
}

run() {
    echo
    echo "+ $*"
    "$@" || echo "(exit status $?)"
}
