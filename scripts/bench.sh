#!/usr/bin/env bash
# Builds the release tree and runs every benchmark, then the simulator's recorded scenarios,
# printing everything (the figures docs/BENCHMARKS.md records, with the machine they ran on).
# `scripts/bench.sh --quick` runs everything small, for a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; fi

scripts/build.sh release >/dev/null
bin=build/release

echo "== machine"
. scripts/bench-lib.sh
machine_block

if [ "$quick" = 1 ]; then
    run "$bin/bench/bench_placement" --quick
    run "$bin/bench/bench_lookup" --lookups 2000000 --keys 100000
    run "$bin/src/sim/shardz-sim" --partitions 20000 --nodes 50
    run "$bin/bench/bench_balancer" --quick
    run "$bin/src/sim/shardz-sim" --scenario hotspot --partitions 2000 --nodes 20 --steps 20
    exit 0
fi

# 5 zones: 1,000 nodes split evenly, so the zone rule does not force any count imbalance
# (with 3 zones of 334/333/333 nodes and 3 replicas it forces max - min of about 9).
run "$bin/bench/bench_placement" --partitions 1000000 --replicas 3 --nodes 1000 --zones 5 \
    --kinds replica,seed,hash --loads equal,lognormal --seed 1
run "$bin/bench/bench_placement" --partitions 1000000 --replicas 3 --nodes 1000 --zones 3 \
    --kinds replica,seed --loads equal --seed 1
run "$bin/bench/bench_lookup" --partitions 1024 --nodes 100 --keys 1000000 --lookups 20000000
run "$bin/bench/bench_router"
run "$bin/src/sim/shardz-sim" --partitions 100000 --replicas 3 --nodes 100 --zones 3 \
    --load lognormal --events join:5,leave:3,zoneloss:1,loadshift,rebalance --kind all --seed 1
run "$bin/src/sim/shardz-sim" --partitions 100000 --replicas 3 --nodes 100 --zones 3 \
    --load equal --events join:5,leave:3,zoneloss:1,rebalance --kind all --seed 1
run "$bin/src/sim/shardz-sim" --partitions 100000 --replicas 3 --nodes 99 --zones 3 \
    --capacity mixed --load zipf --events join:3,leave:3,drain:2,loadshift,rebalance \
    --kind all --seed 1
# The load balancer (issue 4): a hotspot on 10,000 partitions beside the two baselines, and one
# round at 1M partitions / 1,000 nodes; then the simulator's load scenarios over time.
run "$bin/bench/bench_balancer"
run "$bin/bench/bench_balancer" --hot-factor 5 --scale-factor 5 --scale-band 0
run "$bin/bench/bench_balancer" --replicas 3 --hot-factor 5 --scale-band 0 --reps 5
# the fast search beside the brute-force reference on the same state (the reference takes ~25 s)
run "$bin/bench/bench_balancer" --rounds 1 --scale-band 0 --reps 3 --brute
for s in hotspot diurnal zipf halfcap; do
    run "$bin/src/sim/shardz-sim" --scenario "$s" --seed 1
done
