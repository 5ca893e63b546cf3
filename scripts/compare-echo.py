#!/usr/bin/env python3
"""coil-echo beside the C echo servers of the io_uring anchors, one session, one C load client.

Builds the anchor harness in a scratch copy, then for each round and each (message size,
connection count) runs every server once, one after another in an order shuffled per point, each
started fresh on its own port: coil-echo (the styles and worker counts asked for), the C io_uring
server with SINGLE_ISSUER|DEFER_TASKRUN, and the C epoll server. Running the servers of one point
back to back keeps them within seconds of each other, so they mostly share the VM's placement of
its two vCPUs (which moves two-core results by up to 1.4x between runs), and pairs them: for each
Coil server the script prints the median over rounds of its throughput and p99 divided by the C
DEFER_TASKRUN server's in the same round and point, with a 95% bootstrap interval.
Prints medians (min-max) of round trips per second, p99 latency and server CPU per round trip,
the Coil/best-C ratios, and the paired ratios.

--pin CPU runs every server and the client on that one CPU: throughput is then set by the CPU
time client and server spend per round trip together, which takes the placement out entirely.
--control adds the C DEFER_TASKRUN binary a second time under another name (an A/A pair).
"""
import argparse, os, random, re, shutil, socket, statistics, subprocess, sys, time

def wait_listening(port):
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")

def interval(ratios, draws=4000):
    """A 95% bootstrap interval of the median of `ratios`."""
    rng = random.Random(2026)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anchor", required=True)
    ap.add_argument("--coil", required=True, action="append",
                    help="coil-echo binary; give it more than once (as LABEL=PATH) to run builds side by side")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=float, default=2)
    ap.add_argument("--conns", default="1,16,64,256")
    ap.add_argument("--sizes", default="64,1024")
    ap.add_argument("--port", type=int, default=24500)
    ap.add_argument("--styles", default="futures,async",
                    help="coil-echo connection styles to run (futures: Coil tasks; async: Swift tasks)")
    ap.add_argument("--workers", default="1,2", help="coil-echo worker counts to run")
    ap.add_argument("--pin", help="run servers and client on this one CPU (taskset -c)")
    ap.add_argument("--control", action="store_true",
                    help="A/A control: run the C DEFER_TASKRUN server a second time under another name")
    a = ap.parse_args()
    scratch = "/tmp/coil-uring-anchor"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(a.anchor, scratch, ignore=shutil.ignore_patterns("results", "bin"))
    subprocess.run(["make", "-C", scratch, "bin/echo_client", "bin/uring_echo", "bin/epoll_echo"],
                   check=True, stdout=subprocess.DEVNULL)
    servers = {}
    for binary in a.coil:
        tag, path = binary.split("=", 1) if "=" in binary else ("", binary)
        for style in a.styles.split(","):
            for workers in a.workers.split(","):
                label = f"coil-echo{' ' + tag if tag else ''} {style}, {workers} worker{'' if workers == '1' else 's'}"
                servers[label] = (lambda b, s, w: lambda p: [b, "--port", str(p), "--workers", w, "--style", s])(path, style, workers)
    servers |= {
        "C io_uring DEFER_TASKRUN": lambda p: [f"{scratch}/bin/uring_echo", "-p", str(p), "-m", "defer", "-t", "3600"],
        "C epoll": lambda p: [f"{scratch}/bin/epoll_echo", "-p", str(p), "-t", "3600"],
    }
    if a.control:
        # The same binary again: how far apart two medians of one server come out in this session.
        servers["control: C io_uring DEFER_TASKRUN again"] = servers["C io_uring DEFER_TASKRUN"]
    sizes = [int(x) for x in a.sizes.split(",")]
    conns = [int(x) for x in a.conns.split(",")]
    pin = ["taskset", "-c", a.pin] if a.pin is not None else []
    results = {}  # (server, size, conns) -> list of (rps, p99, cpu_per_rt_us, client_cores)
    by_round = {}  # (round, size, conns) -> server -> (rps, p99)
    port = a.port
    for rep in range(a.reps):
        for size in sizes:
            for c in conns:
                order = list(servers.items())
                random.Random(rep * 100_003 + size * 1009 + c).shuffle(order)
                for name, command in order:
                    port += 1
                    proc = subprocess.Popen(pin + command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    try:
                        wait_listening(port)
                        out = subprocess.run(pin + [f"{scratch}/bin/echo_client", "-p", str(port), "-c", str(c), "-s", str(size),
                                              "-d", str(a.duration), "-w", "0.5", "-l", "x", "-P", str(proc.pid)],
                                             capture_output=True, text=True).stdout
                    finally:
                        proc.send_signal(2)
                        try:
                            proc.wait(timeout=10)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                    m = re.search(r"value=(\d+) req/s .*p99_us=(\d+) errors=(\d+) client_cpu=([0-9.]+) server_cpu=([0-9.]+)", out)
                    if not m or m.group(3) != "0":
                        print(f"# {name} {size} B {c} conns: failed: {out.strip()}", file=sys.stderr)
                        continue
                    rps, p99, client, cpu = int(m.group(1)), int(m.group(2)), float(m.group(4)), float(m.group(5))
                    results.setdefault((name, size, c), []).append((rps, p99, cpu / rps * 1e6 if rps else 0, client))
                    by_round.setdefault((rep, size, c), {})[name] = (rps, p99)
        print(f"# round {rep + 1}/{a.reps} done", file=sys.stderr)

    def med(values):
        return statistics.median(values), min(values), max(values)
    for size in sizes:
        print(f"\n### {size}-byte messages: round trips/s (thousands), median of {a.reps} (min-max); p99 µs; server CPU µs per round trip; "
              "cores the load client used (a single-threaded client at 1.00 is saturated)\n")
        print("| server | " + " | ".join(f"{c} conn" for c in conns) + " |")
        print("|---|" + "---|" * len(conns))
        for name in servers:
            cells = []
            for c in conns:
                rows = results.get((name, size, c), [])
                if not rows:
                    cells.append("n/a")
                    continue
                r, lo, hi = med([x[0] for x in rows])
                p99 = statistics.median([x[1] for x in rows])
                cpu = statistics.median([x[2] for x in rows])
                client = statistics.median([x[3] for x in rows])
                cells.append(f"{r/1000:.1f} ({lo/1000:.1f}–{hi/1000:.1f}); p99 {p99:.0f}; {cpu:.2f} µs; client {client:.2f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
        ratios, tails = [], []
        for c in conns:
            def fastest(prefix):
                rows = [(statistics.median([x[0] for x in results[(n, size, c)]]),
                         statistics.median([x[1] for x in results[(n, size, c)]]), n)
                        for n in servers if n.startswith(prefix) and results.get((n, size, c))]
                return max(rows, default=None)
            best_c, best_coil = fastest("C "), fastest("coil")
            if not best_c or not best_coil:
                ratios.append(f"{c} conn n/a")
                continue
            ratios.append(f"{c} conn {best_coil[0] / best_c[0]:.2f}x")
            tails.append(f"{c} conn {best_coil[1]:.0f} vs {best_c[1]:.0f} µs ({best_coil[2]} vs {best_c[2]})")
        print("\nbest Coil / best C: " + ", ".join(ratios))
        print("p99 of the fastest Coil server vs the fastest C server: " + "; ".join(tails))
        if a.control:
            control = []
            for c in conns:
                one, two = (results.get((n, size, c)) for n in ("C io_uring DEFER_TASKRUN", "control: C io_uring DEFER_TASKRUN again"))
                if one and two:
                    control.append(f"{c} conn {statistics.median([x[0] for x in two]) / statistics.median([x[0] for x in one]):.2f}x, "
                                   f"p99 {statistics.median([x[1] for x in two]):.0f} vs {statistics.median([x[1] for x in one]):.0f} µs")
            print("control (the C DEFER_TASKRUN server against itself): " + "; ".join(control))
        reference = "C io_uring DEFER_TASKRUN"
        print(f"\nPaired with {reference} in the same round and point: median over rounds of the ratio "
              "(95% bootstrap interval); throughput above 1.00 and p99 below 1.00 favour the first\n")
        print("| server | " + " | ".join(f"{c} conn" for c in conns) + " |")
        print("|---|" + "---|" * len(conns))
        for name in servers:
            if name == reference:
                continue
            cells = []
            for c in conns:
                pairs = [(r[name][0] / r[reference][0], r[name][1] / r[reference][1])
                         for (rep, sz, cc), r in by_round.items()
                         if sz == size and cc == c and name in r and reference in r and r[reference][0] and r[reference][1]]
                if not pairs:
                    cells.append("n/a")
                    continue
                t, p = [x[0] for x in pairs], [x[1] for x in pairs]
                tl, th = interval(t)
                pl, ph = interval(p)
                cells.append(f"{statistics.median(t):.2f}x ({tl:.2f}–{th:.2f}); p99 {statistics.median(p):.2f}x ({pl:.2f}–{ph:.2f})")
            print(f"| {name} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
