#!/usr/bin/env python3
"""Coil's queue against the anchors, paired round by round (a log of scripts/anchors-queues.sh).

Every round runs each queue once per configuration, so within a round the runs share the VM's
state of the moment (which physical cores the two vCPUs sit on changes over time and moves a
run's throughput by 2-5x). For each configuration this prints the median over rounds of
coil / other (for push+pop, where lower is better, other / coil: above 1 means Coil is faster)
with a 95% bootstrap interval of that median. Rows: coil_mpmc from C against each anchor,
MPMCQueue from Swift against coil_mpmc from C, and the control: the anchors' Vyukov queue against
itself run under a second name (vyukov_c11_again), whose medians differ only by the machine.
"""
import collections
import random
import re
import statistics
import sys

if len(sys.argv) != 2:
    sys.exit("usage: queue-parity.py LOG")
runs = collections.defaultdict(dict)  # (round, cap, mode, threads) -> impl -> value
round_index = 0
for line in open(sys.argv[1]):
    if line.startswith("# round"):
        round_index += 1
    elif line.startswith("run impl="):
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        runs[(round_index, int(kv["cap"]), kv["mode"], int(kv["P"]))][kv["impl"]] = float(kv["value"])

random.seed(2026)


def interval(ratios):
    medians = sorted(statistics.median(random.choices(ratios, k=len(ratios))) for _ in range(4000))
    return medians[int(0.025 * len(medians))], medians[int(0.975 * len(medians)) - 1]


def ratios(coil, other, cap, mode, threads):
    out = []
    for key, values in runs.items():
        if key[1:] == (cap, mode, threads) and coil in values and other in values:
            r = values[coil] / values[other]
            out.append(1 / r if mode == "lat" else r)
    return out


COLUMNS = [("lat", 1, "push+pop"), ("tput", 1, "1P1C"), ("tput", 2, "2P2C"), ("tput", 4, "4P4C")]
impls = sorted({impl for values in runs.values() for impl in values})
anchors = [i for i in impls if not i.startswith("coil_") and not i.endswith("_again")]
pairs = [("coil_mpmc_c", a) for a in anchors] + [("coil_mpmc_swift", "coil_mpmc_c")]
pairs += [(i, i[: -len("_again")]) for i in impls if i.endswith("_again")]
rounds = max((k[0] for k in runs), default=0)
print(f"Paired ratios over {rounds} rounds: median (95% interval); above 1.00 = the first faster\n")
for cap in sorted({k[1] for k in runs}):
    print(f"capacity {cap}\n")
    print("| pair | " + " | ".join(c[2] for c in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for coil, other in pairs:
        cells = []
        for mode, threads, _ in COLUMNS:
            xs = ratios(coil, other, cap, mode, threads)
            if not xs:
                cells.append("-")
                continue
            low, high = interval(xs)
            cells.append(f"{statistics.median(xs):.2f} ({low:.2f}-{high:.2f})")
        print(f"| {coil} / {other} | " + " | ".join(cells) + " |")
    print()
