// package-benchmark suites: `swift package --disable-sandbox benchmark` (or `make bench`).
// mallocCountTotal proves the steady state allocates nothing per queue operation or per NOP.
import Benchmark
import BenchmarkSupport
import Coil

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1,
        scalingFactor: .mega,
        maxDuration: .seconds(2),
        maxIterations: 20
    )

    // Tasks on the single-thread executor: one allocation per spawn, none per wake or poll.
    Benchmark("task spawn+poll+complete+join") { benchmark in
        let executor = LocalExecutor()
        benchmark.startMeasurement()
        blackHole(TaskHarness.spawnPollJoin(executor, count: benchmark.scaledIterations.count))
    }
    Benchmark("task wake->poll round trip") { benchmark in
        let executor = LocalExecutor()
        benchmark.startMeasurement()
        blackHole(TaskHarness.wakePollRoundTrips(executor, count: benchmark.scaledIterations.count))
    }

    // A oneshot channel made, sent on, received from and dropped: one allocation.
    Benchmark("oneshot channel+send+receive") { benchmark in
        benchmark.startMeasurement()
        blackHole(RuntimeShapes.oneshotRoundTrips(benchmark.scaledIterations.count))
    }

    // One push and one pop on one thread: the uncontended cost, and no allocation.
    Benchmark("MPMCQueue push+pop") { benchmark in
        let queue = try MPMCQueue<UInt64>(capacity: 1024)
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            blackHole(queue.tryPush(UInt64(i)))
            blackHole(queue.tryPop())
        }
    }
    Benchmark("UnboundedMPMCQueue push+pop") { benchmark in
        let queue = try UnboundedMPMCQueue<UInt64>()
        for i in 0..<100 { queue.push(UInt64(i)) } // a steady length across blocks
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            queue.push(UInt64(i))
            blackHole(queue.tryPop())
        }
    }
    Benchmark("Mutex<Deque> push+pop (baseline)") { benchmark in
        let queue = MutexDequeQueue(capacity: 1024)
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            blackHole(queue.push(word: UInt64(i)))
            blackHole(queue.popWord())
        }
    }

    // Threads moving 1,000,000 verified items per iteration; allocations are the threads' own.
    for impl in QueueImplementation.allCases {
        for threads in [1, 2, 4] {
            for capacity in [1024, 65536] {
                Benchmark("transfer 1M \(impl.rawValue) \(threads)P\(threads)C cap \(capacity)",
                          configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .one,
                                               maxDuration: .seconds(3), maxIterations: 7)) { benchmark in
                    let result = impl.transfer(producers: threads, consumers: threads, items: 1_000_000, capacity: capacity)
                    precondition(result?.verified == true, "\(impl.rawValue): transfer failed verification")
                }
            }
        }
    }

    // io_uring NOPs through IORing: one batch per iteration; no allocation per NOP.
    for batch in [1, 8, 32, 128] {
        Benchmark("IORing NOP batch \(batch)",
                  configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], scalingFactor: .kilo)) { benchmark in
            let ring = try IORing(entries: 256, completionEntries: 512)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                for index in 0..<batch { try ring.prepareNop(userData: UInt64(index)) }
                try ring.submitAndWait(minimumCompletions: batch)
                var reaped = 0
                while reaped < batch { reaped += try ring.forEachCompletion { _ in } }
            }
        }
    }

    // coil-echo's serving loop, one connection, a blocking C-style client: each iteration is
    // 1,000 round trips of 64 bytes, so "Malloc (total)" is the allocations per 1,000 echoed
    // messages (unscaled, so that a fraction per message cannot round away; steady state: 0).
    for (workers, style) in [(1, EchoHarness.Style.async), (2, .async), (1, .receiveStream), (1, .futures), (2, .futures), (1, .linked)] {
        Benchmark("echo 1000 round trips 64 B, \(workers) worker\(workers == 1 ? "" : "s")\(style == .async ? "" : ", \(style.rawValue)")",
                  configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .one)) { benchmark in
            let echo = try EchoHarness(workers: workers, style: style)
            defer { echo.stop() }
            _ = echo.roundTrips(2000)   // warm: pools filled, connection task running
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(echo.roundTrips(1000)) }
            benchmark.stopMeasurement()
        }
    }
}
