#!/usr/bin/env bash
# Instructions per unit of one coil-sched-bench shape, counted by cachegrind: the difference
# between a 13-iteration and a 3-iteration run, divided by 10 x the shape's units, so start-up
# costs cancel. Deterministic, unlike times on a shared VM, so it shows small changes that
# timing noise hides (it does not see what an atomic read-modify-write or a cache miss costs:
# quote it beside times, not instead of them).
#
#   scripts/instructions-per-unit.sh BINARY SHAPE UNITS [FLAVOR]
#   scripts/instructions-per-unit.sh Benchmarks/.build/release/coil-sched-bench ping_pong 1000 ct
#
# Units per iteration: spawn_many_local 10000, spawn_many_remote_idle 10000, yield_many 1000000,
# ping_pong 1000, chained_spawn 1001, spawn_join_* 10000. Needs valgrind. Swift's DWARF 5 is
# more than valgrind's reader takes, so a copy without debug info is measured.
set -euo pipefail
binary=$1 shape=$2 units=$3 flavor=${4:-ct}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
stripped=$(mktemp)
trap 'rm -f "$stripped"' EXIT
objcopy --strip-debug "$binary" "$stripped"
chmod +x "$stripped"
count() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$stripped" \
        --flavor "$flavor" --only "$shape" --iters "$1" --warmup 0 2>&1 | awk '/I *refs/ {gsub(",", "", $4); print $4}'
}
short=$(count 3)
long=$(count 13)
echo "$shape $flavor: $(( (long - short) / (10 * units) )) instructions per unit"
