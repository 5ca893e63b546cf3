#!/usr/bin/env python3
"""Runs the Tokio anchor's scheduler shapes and Coil's (coil-sched-bench) in alternating process
runs in one session, and prints a markdown table: median of the per-run medians (ns per unit),
min-max across runs, and Coil/Tokio.

Usage: scripts/compare-tokio.py --tokio PATH/sched_bench --coil PATH/coil-sched-bench [--runs 5]
(`make bench-tokio` builds both and runs this.)"""
import argparse, re, statistics, subprocess, sys

p = argparse.ArgumentParser()
p.add_argument("--tokio", required=True)
p.add_argument("--coil", required=True)
p.add_argument("--runs", type=int, default=5)
args = p.parse_args()

LINE = re.compile(r"RESULT flavor=(\S+) bench=(\S+) .* per=(\S+) median_ns_per=([0-9.]+)")
results = {}  # (impl, flavor, bench, per) -> [values]

def run(impl, cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for m in LINE.finditer(out):
        flavor, bench, per, value = m.groups()
        results.setdefault((impl, flavor, bench, per), []).append(float(value))

for r in range(args.runs):
    print(f"run {r + 1}/{args.runs}", file=sys.stderr)
    # One process per runtime and flavour, as the anchor runs, alternating. (Coil's current-thread
    # shapes run ~30% slower in a process that has ever started a second thread: glibc's
    # single-thread fast paths for pthread mutexes and malloc turn off. See BENCHMARKS.md.)
    for flavor in ("mt-async", "ct"):
        run("tokio", [args.tokio, "--flavor", flavor, "--skip-idle", "1"])
        run("coil", [args.coil, "--flavor", flavor])
    run("coil", [args.coil, "--flavor", "swift-yield"])

def cell(values):
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"

benches = ["spawn_many_local", "spawn_many_remote_idle", "yield_many", "ping_pong", "chained_spawn",
           "spawn_join_from_block_on", "spawn_join_in_task"]
print("| shape | unit | flavour | Tokio 1.24 ns | Coil ns | Coil/Tokio |")
print("|---|---|---|---|---|---|")
for flavor in ("mt2-async", "ct-async"):
    for bench in benches:
        keys = [k for k in results if k[1] == flavor and k[2] == bench and k[0] == "coil"]
        if not keys:
            continue
        per = keys[0][3]
        coil = results[("coil", flavor, bench, per)]
        tokio = results.get(("tokio", flavor, bench, per))
        if not tokio:
            continue
        ratio = statistics.median(coil) / statistics.median(tokio)
        print(f"| {bench} | {per} | {flavor} | {cell(tokio)} | {cell(coil)} | {ratio:.2f}x |")
coil_yield = results.get(("coil", "coil-executor", "swift_task_yield", "yield"))
default_yield = results.get(("coil", "default-executor", "swift_task_yield", "yield"))
if coil_yield and default_yield:
    ratio = statistics.median(coil_yield) / statistics.median(default_yield)
    print()
    print("| Swift `Task.yield()` round trip | ns per yield |")
    print("|---|---|")
    print(f"| Swift's default global executor | {cell(default_yield)} |")
    print(f"| Coil's executor (`Task(executorPreference: runtime)`, 2 workers) | {cell(coil_yield)} |")
    print(f"| Coil / default | {ratio:.2f}x |")
