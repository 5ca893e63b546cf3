// The Tokio anchor's scheduler shapes on Coil, printing the anchor's RESULT line format so that
// scripts/compare-tokio.py can put both side by side. Usage:
//   coil-sched-bench [--iters N] [--warmup N] [--flavor mt-async|ct|swift-yield|all] [--only NAME]
// (swift-yield: only Swift's Task.yield round trip, on Coil's executor and on the default one)
//   --threaded-process: start (and stop) a thread before measuring. glibc makes pthread mutexes
//   and malloc cheaper while a process has only ever had one thread; a current-thread runtime
//   in a fresh process runs with those fast paths, one in a server process does not.
import BenchmarkSupport
import Coil

#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) var iterations = 20, warmup = 3
var flavorArg = "all", only: String? = nil, threadedProcess = false
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--iters": iterations = Int(arguments.next() ?? "") ?? iterations
    case "--warmup": warmup = Int(arguments.next() ?? "") ?? warmup
    case "--flavor": flavorArg = arguments.next() ?? flavorArg
    case "--only": only = arguments.next()
    case "--threaded-process": threadedProcess = true
    default:
        print("usage: coil-sched-bench [--iters N] [--warmup N] [--flavor mt-async|ct|swift-yield|all] [--only NAME] [--threaded-process]")
        exit(2)
    }
}

func nanoseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
}

func report(_ flavor: String, _ bench: String, units: Int, unit: String, _ samples: [Double]) {
    let sorted = samples.sorted()
    let n = sorted.count
    let median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    print("RESULT flavor=\(flavor) bench=\(bench) iters=\(n) median_ns_iter=\(Int(median)) min_ns_iter=\(Int(sorted[0])) max_ns_iter=\(Int(sorted[n - 1])) per=\(unit) median_ns_per=\(String(format2(median / Double(units))))")
}

func format2(_ value: Double) -> String {
    let scaled = (value * 100).rounded() / 100
    return "\(scaled)"
}

func measure(_ body: () -> Void) -> [Double] {
    let clock = ContinuousClock()
    for _ in 0..<warmup { body() }
    return (0..<iterations).map { _ in
        let start = clock.now
        body()
        return nanoseconds(clock.now - start)
    }
}

let shapes: [(String, Int, String, (Runtime) -> Void)] = [
    ("spawn_many_local", RuntimeShapes.spawnCount, "task", RuntimeShapes.spawnManyLocal),
    ("spawn_many_remote_idle", RuntimeShapes.spawnCount, "task", RuntimeShapes.spawnManyRemoteIdle),
    ("yield_many", RuntimeShapes.yieldTasks * RuntimeShapes.yieldsPerTask, "yield", RuntimeShapes.yieldMany),
    ("ping_pong", RuntimeShapes.pingPairs, "pair", RuntimeShapes.pingPong),
    ("chained_spawn", RuntimeShapes.chainLength, "task", RuntimeShapes.chainedSpawn),
    ("spawn_join_from_block_on", RuntimeShapes.spawnJoinOps, "op", RuntimeShapes.spawnJoinFromBlockOn),
    ("spawn_join_in_task", RuntimeShapes.spawnJoinOps, "op", RuntimeShapes.spawnJoinInTask),
]

if threadedProcess {
    // A one-worker runtime: its thread starts and stops, and the process counts as threaded.
    try Runtime.Builder.multiThread().workerThreads(1).build().shutdown()
}

let flavors: [(String, () throws -> Runtime)] = [
    ("mt2-async", { try Runtime.Builder.multiThread().workerThreads(2).build() }),
    ("ct-async", { try Runtime.Builder.currentThread().build() }),
]

for (flavor, make) in flavors where flavorArg == "all" || flavorArg == flavor || (flavorArg == "ct" && flavor == "ct-async") || (flavorArg == "mt-async" && flavor == "mt2-async") {
    for (name, units, unit, shape) in shapes where only == nil || only == name {
        let runtime = try make()
        report(flavor, name, units: units, unit: unit, measure { shape(runtime) })
        runtime.shutdown()
    }
}

if (flavorArg == "all" || flavorArg == "swift-yield") && (only == nil || only == "swift_task_yield") {
    let yields = 100_000
    let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
    report("coil-executor", "swift_task_yield", units: yields, unit: "yield",
           measure { _ = RuntimeShapes.swiftYields(yields, on: runtime) }.map { _ in nanoseconds(RuntimeShapes.swiftYields(yields, on: runtime)) })
    report("default-executor", "swift_task_yield", units: yields, unit: "yield",
           measure { _ = RuntimeShapes.swiftYields(yields, on: nil) }.map { _ in nanoseconds(RuntimeShapes.swiftYields(yields, on: nil)) })
    runtime.shutdown()
}
