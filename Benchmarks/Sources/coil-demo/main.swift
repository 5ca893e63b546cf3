// coil-demo: Coil's queues, io_uring driver and tasks measured beside their baselines, in one run.
//
//   coil-demo                      the short table (`make demo`)
//   coil-demo transfer --impl coil_mpmc_swift|coil_mpmc_c|mutex_deque_swift -m tput|lat
//             -p P -c C -n ITEMS -q CAPACITY -r REPS
//                                  lines in the format of ../shared/anchors/queues, so its run.sh
//                                  and table.py can put Coil beside the other queues
import BenchmarkSupport
import CBenchBaselines
import Coil

#if canImport(Glibc)
import Glibc
#endif

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func fail(_ message: String) -> Never {
    let line = Array("coil-demo: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

/// `value` with `digits` decimals (no Foundation here).
func fmt(_ value: Double, _ digits: Int = 1) -> String {
    guard value.isFinite else { return "nan" }
    var scale = 1
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((abs(value) * Double(scale)).rounded())
    var fraction = String(scaled % scale)
    while fraction.count < digits { fraction = "0" + fraction }
    return (value < 0 ? "-" : "") + String(scaled / scale) + (digits > 0 ? "." + fraction : "")
}

func transferCommand(_ arguments: ArraySlice<String>) {
    var options: [String: String] = ["-m": "tput", "-p": "1", "-c": "1", "-n": "10000000", "-q": "1024", "-r": "1"]
    var iterator = arguments.makeIterator()
    while let key = iterator.next() {
        guard let value = iterator.next() else { fail("\(key) needs a value") }
        options[key == "--impl" ? "impl" : key] = value
    }
    guard let name = options["impl"], let impl = QueueImplementation(rawValue: name) else {
        fail("--impl must be one of \(QueueImplementation.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    guard let p = Int(options["-p"]!), let c = Int(options["-c"]!), let n = UInt64(options["-n"]!),
          let q = Int(options["-q"]!), let reps = Int(options["-r"]!), p >= 1, c >= 1, p <= 64, reps >= 1 else {
        fail("bad numbers")
    }
    let latency = options["-m"] == "lat"
    for rep in 0..<reps {
        let busy0 = cbench_system_busy_seconds(), cpu0 = cbench_cpu_seconds()
        let clock = ContinuousClock(), start = clock.now
        let value: Double
        if latency {
            value = impl.pushPopNanoseconds(pairs: n, capacity: q)
        } else {
            guard let result = impl.transfer(producers: p, consumers: c, items: n, capacity: q), result.verified else {
                fail("\(name): VERIFY FAILED")
            }
            value = result.millionsPerSecond
        }
        if value < 0 { fail("\(name): VERIFY FAILED") }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let cpu = (cbench_cpu_seconds() - cpu0) / seconds
        let ext = max(0, (cbench_system_busy_seconds() - busy0) / seconds - cpu)
        print("run impl=\(name) mode=\(latency ? "lat" : "tput") P=\(latency ? 1 : p) C=\(latency ? 1 : c) cap=\(q) n=\(n) rep=\(rep) "
              + "value=\(fmt(value, 3)) \(latency ? "ns/op" : "Mops/s") cpu=\(fmt(cpu, 2)) "
              + "ext=\(fmt(ext, 2)) deadline=0")
        fflush(nil)
    }
}

func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }

func demo() throws {
    let reps = 3
    let items: UInt64 = 2_000_000
    print("Coil demo: queues and io_uring, measured side by side in this run (median of \(reps)).")
    print("Machine: \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) cores. Full runs: `make bench`; anchors: BENCHMARKS.md.\n")
    print("Bounded MPMC queue, capacity 1024: million items/s moved (every item verified), and one")
    print("push+pop pair on one thread (ns).\n")
    print("| queue                | push+pop ns | 1P1C Mops/s | 2P2C Mops/s |")
    print("|----------------------|-------------|-------------|-------------|")
    var byImpl: [QueueImplementation: [Double]] = [:]
    for impl in QueueImplementation.allCases {
        let pair = median((0..<reps).map { _ in impl.pushPopNanoseconds(pairs: 5_000_000, capacity: 1024) })
        var row = [pair]
        for threads in [1, 2] {
            let runs = (0..<reps).compactMap { _ -> Double? in
                guard let r = impl.transfer(producers: threads, consumers: threads, items: items, capacity: 1024) else { return nil }
                precondition(r.verified, "\(impl.rawValue): an item was lost, duplicated or reordered")
                return r.millionsPerSecond
            }
            row.append(median(runs))
        }
        byImpl[impl] = row
        print("| \(pad(impl.rawValue, 20)) | \(pad(fmt(row[0]), 11)) | \(pad(fmt(row[1]), 11)) | \(pad(fmt(row[2]), 11)) |")
    }
    if let swift = byImpl[.coilSwift], let c = byImpl[.coilC], let mutex = byImpl[.mutexDeque] {
        print("\nSwift/C throughput: 1P1C \(fmt(swift[1] / c[1], 2))x, 2P2C \(fmt(swift[2] / c[2], 2))x; "
              + "Coil/mutex at 2P2C: \(fmt(swift[2] / mutex[2], 1))x")
    }

    print("\nio_uring NOP throughput (million NOPs/s): prepare a batch, one submit-and-wait, reap.\n")
    print("| batch | Coil IORing (Swift) | raw liburing (C) | Swift/C |")
    print("|-------|---------------------|------------------|---------|")
    var setup = ""
    for batch in [1, 8, 32, 128] {
        let nops = batch == 1 ? 500_000 : 2_000_000
        var swiftRuns: [Double] = [], cRuns: [Double] = []
        for _ in 0..<reps {
            let s = try NopHarness.swift(batch: batch, nops: nops)
            setup = "\(s.flags)\(s.registeredFD ? " + registered ring fd" : "")"
            swiftRuns.append(Double(nops) / s.seconds / 1e6)
            let c = NopHarness.c(batch: batch, nops: nops, flags: s.flags, registeredFD: s.registeredFD)
            precondition(c > 0, "raw liburing loop failed: \(c)")
            cRuns.append(Double(nops) / c / 1e6)
        }
        let s = median(swiftRuns), c = median(cRuns)
        print("| \(pad(String(batch), 5)) | \(pad(fmt(s, 2), 19)) | \(pad(fmt(c, 2), 16)) | \(pad(fmt(s / c, 2), 7)) |")
    }
    print("\nRing setup taken by both: \(setup)")
    taskSection(reps: reps)
}

/// Nanoseconds per operation of `body(count)`.
func nanoseconds(per count: Int, _ body: (Int) -> Int) -> Double {
    let clock = ContinuousClock()
    var sink = 0
    let elapsed = clock.measure { sink = body(count) }
    precondition(sink != Int.min)
    return Double(elapsed.components.seconds) * 1e9 / Double(count)
        + Double(elapsed.components.attoseconds) / 1e9 / Double(count)
}

func taskSection(reps: Int) {
    print("\nTasks on the single-thread LocalExecutor (CoilCore), median of \(reps):\n")
    let executor = LocalExecutor()
    let spawn = median((0..<reps).map { _ in
        nanoseconds(per: 1_000_000) { TaskHarness.spawnPollJoin(executor, count: $0) } })
    let wake = median((0..<reps).map { _ in
        nanoseconds(per: 2_000_000) { TaskHarness.wakePollRoundTrips(executor, count: $0) } })
    let footprint = TaskHarness.idleTaskFootprint(count: 1_000_000)
    print("| shape                                   | result       |")
    print("|-----------------------------------------|--------------|")
    print("| spawn + poll + complete + join          | \(pad(fmt(spawn) + " ns", 12)) |")
    print("| wake -> schedule -> poll round trip     | \(pad(fmt(wake) + " ns", 12)) |")
    print("| 1,000,000 idle tasks: heap per task     | \(pad(fmt(footprint.heapBytes, 0) + " B", 12)) |")
    print("| 1,000,000 idle tasks: resident per task | \(pad(fmt(footprint.residentBytes, 0) + " B", 12)) |")
}

let arguments = CommandLine.arguments.dropFirst()
if arguments.first == "transfer" {
    transferCommand(arguments.dropFirst())
} else if arguments.isEmpty {
    do { try demo() } catch { fail("\(error)") }
} else {
    fail("usage: coil-demo [transfer --impl NAME -m tput|lat -p P -c C -n ITEMS -q CAPACITY -r REPS]")
}
