import Coil
import CoilTestSupport
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Hammering the scheduler: tiny local queues (overflow and stealing on every few spawns), cross-
/// thread wakes that must each be observed, shutdown in every task state, a million tasks.
/// Sizes scale with COIL_STRESS_SCALE (`make stress`).
final class RuntimeStressTests: XCTestCase {
    /// Spawn trees on 4 workers with local queues of 4: spawns overflow into the inject queue
    /// and idle workers steal. Every task runs exactly once and is freed.
    func testStressTinyLocalQueuesSpawnStealOverflow() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(4).localQueueCapacity(4).build()
        let ran = Counter()
        let fanOut = 50, depth = 20 * stressScale
        let roots = runtime.blockOn(JoinAll(count: fanOut) { _ in
            runtime.spawn(SpawnChain(remaining: depth, ran: ran))
        })
        XCTAssertEqual(roots.count, fanOut)
        let expected = fanOut * (depth + 1) * (1 + SpawnChain.leaves)
        XCTAssertTrue(eventually { ran.value == expected }, "ran \(ran.value) of \(expected)")
        XCTAssertTrue(eventually { runtime.metrics.aliveTasks == 0 })
        XCTAssertEqual(ran.value, expected, "no task ran twice")
        let metrics = runtime.metrics
        XCTAssertGreaterThan(metrics.workers.reduce(0) { $0 + $1.overflows }, 0, "capacity 4 must overflow: \(metrics)")
        XCTAssertTrue(runtime.shutdown())
    }

    /// Ten thousand wakes from a foreign thread, each of which must be observed by its task: with
    /// workers that sleep at once when idle (every wake goes through the futex), with the
    /// default short spin before sleeping, and with a spin so long that wakes land in it.
    func testNoLostWakeupsAcrossThreads() throws {
        let builders = [("current-thread", Runtime.Builder.currentThread()),
                        ("multi-thread(1)", Runtime.Builder.multiThread().workerThreads(1)),
                        ("multi-thread(2)", Runtime.Builder.multiThread().workerThreads(2)),
                        ("multi-thread(4, local queue 4)", Runtime.Builder.multiThread().workerThreads(4).localQueueCapacity(4))]
        for (flavor, builder) in builders {
            for spins in [0, 32, 100_000] {
                let name = "\(flavor), spins \(spins)"
                let runtime = try builder.spinBeforeParking(yields: spins).build()
                try echoRoundsFromAnotherThread(runtime, name)
                let metrics = runtime.metrics
                // Nothing was in flight on any ring: every park was on the futex.
                XCTAssertEqual(metrics.workers.reduce(0) { $0 + $1.ringParks }, 0, name)
                let spinWakes = metrics.workers.reduce(0) { $0 + $1.spinWakes }
                switch spins {
                case 0:
                    XCTAssertGreaterThan(metrics.totalParks, 0, name)
                    XCTAssertEqual(spinWakes, 0, name)
                case 100_000:
                    XCTAssertGreaterThan(spinWakes, 0, "\(name): \(metrics)")
                default:
                    XCTAssertGreaterThan(metrics.totalParks + spinWakes, 0, name)
                }
            }
        }
    }

    /// The same with a read pending on the worker's ring the whole time, so that it waits in the
    /// ring (not on the futex) and, without a spin, every wake from the other thread goes through
    /// its eventfd. With the default spin, wakes also land while the worker yields watching its
    /// ring and its park word; with a spin so long that they all do, they are taken there.
    func testNoLostWakeupsWhileParkedInTheRing() throws {
        var flavours: [(String, Runtime.Builder)] = []
        for (name, builder) in [("current-thread", Runtime.Builder.currentThread()),
                                ("multi-thread(1)", Runtime.Builder.multiThread().workerThreads(1)),
                                ("multi-thread(2)", Runtime.Builder.multiThread().workerThreads(2))] {
            flavours.append(("\(name), spins 0", builder.spinBeforeParking(yields: 0)))
            flavours.append(("\(name), spins 32", builder.spinBeforeParking(yields: 32)))
        }
        flavours.append(("multi-thread(2), spins 100000", Runtime.Builder.multiThread().workerThreads(2).spinBeforeParking(yields: 100_000)))
        for (name, builder) in flavours {
            let runtime = try builder.build()
            let (client, accepted) = try loopbackStreams(on: runtime)
            let pending = Task(executorPreference: runtime) { try await client.read(into: IOBuffer(capacity: 16)) }
            if !name.hasPrefix("current-thread") {
                XCTAssertTrue(eventually { runtime.metrics.ioInFlight == 1 }, name)
            }
            try echoRoundsFromAnotherThread(runtime, name, keepInFlight: true)
            let metrics = runtime.metrics
            if name.hasSuffix("spins 0") {
                XCTAssertGreaterThan(metrics.workers.reduce(0) { $0 + $1.ringParks }, 0, "\(name): \(metrics)")
            } else if name.hasSuffix("spins 100000") {
                XCTAssertGreaterThan(metrics.workers.reduce(0) { $0 + $1.spinWakes }, 0, "\(name): \(metrics)")
            }
            pending.cancel()
            let cancelled = runtime.blockOn { () async -> Bool in (try? await pending.value) == nil }
            XCTAssertTrue(cancelled, name)
            try runtime.blockOn { () async throws in
                try await client.close()
                try await accepted.close()
            }
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(10)), name)
        }
    }

    /// A cancel handed over from another thread (a Swift task cancelled from outside the runtime)
    /// reaches a worker that is idle with the task's read in flight, wherever the hand-over's
    /// unpark lands: while the worker waits in its ring, while it yields before that, or just
    /// before it parks. Each round first keeps the worker busy with wakes from another thread
    /// (1,000 echoes), then cancels. A worker that took the cancel's unpark without waiting and
    /// went back to park without taking in the hand-over waited forever: this test then fails
    /// its round after 5 s (the loop of the test above hung on it about once in 40 runs).
    func testRemoteCancelsReachAnIdleWorker() throws {
        let rounds = 40 * max(1, stressScale / 5)
        for (name, builder) in [("multi-thread(1), spins 0", Runtime.Builder.multiThread().workerThreads(1).spinBeforeParking(yields: 0)),
                                ("multi-thread(1), spins 32", Runtime.Builder.multiThread().workerThreads(1)),
                                ("multi-thread(2), spins 32", Runtime.Builder.multiThread().workerThreads(2))] {
            let runtime = try builder.build()
            let (client, accepted) = try loopbackStreams(on: runtime)
            for round in 0..<rounds {
                let ended = ReadOutcome()
                let reader = Task(executorPreference: runtime) {
                    do throws(IOError) {
                        _ = try await client.read(into: IOBuffer(capacity: 16))
                        ended.state.store(1, ordering: .releasing)
                    } catch {
                        ended.state.store(error.errno == ECANCELED ? 2 : 3, ordering: .releasing)
                    }
                }
                guard eventually({ runtime.metrics.ioInFlight == 1 }) else {
                    XCTFail("\(name), round \(round): the read never started: \(runtime.metrics)")
                    break
                }
                try echoRoundsFromAnotherThread(runtime, name, keepInFlight: true, rounds: 1_000)
                reader.cancel()
                guard eventually({ ended.state.load(ordering: .acquiring) != 0 }) else {
                    XCTFail("\(name), round \(round): the cancel never reached the worker: \(runtime.metrics)")
                    break
                }
                XCTAssertEqual(ended.state.load(ordering: .acquiring), 2, "\(name), round \(round): ends with ECANCELED")
            }
            XCTAssertTrue(eventually { runtime.metrics.ioInFlight == 0 }, name)
            try runtime.blockOn { () async throws in
                try await client.close()
                try await accepted.close()
            }
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(10)), name)
        }
    }

    /// A connected pair of loopback TCP streams made on `runtime` (client side, accepted side).
    private func loopbackStreams(on runtime: Runtime) throws -> (TCPStream, TCPStream) {
        try runtime.blockOn { () async throws -> (TCPStream, TCPStream) in
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
            defer { listener.close() }
            let client = try await TCPStream.connect(to: listener.localAddress)
            return (client, try await listener.accept())
        }
    }

    /// One value at a time from an outside thread to a task and back, ten thousand times: any
    /// lost wake-up hangs a round (caught by the deadline). `keepInFlight`: the I/O the caller
    /// left pending must still be in flight at the end.
    private func echoRoundsFromAnotherThread(_ runtime: Runtime, _ name: String, keepInFlight: Bool = false,
                                             rounds: Int = 10_000 * max(1, stressScale / 5)) throws {
        let (toTask, fromOutside) = MPSC.unboundedChannel(of: Int.self)
        let (toOutside, fromTask) = MPSC.unboundedChannel(of: Int.self)
        let echo = runtime.spawn(EchoLoop(input: fromOutside, output: toOutside))
        let driver = startThreads(1) { _ in
            for round in 0..<rounds {
                toTask.send(round)
                while true {
                    if case .success(let got) = fromTask.tryReceive() {
                        precondition(got == round)
                        break
                    }
                    sched_yield()
                }
            }
        }
        if name.hasPrefix("current-thread") {
            // Someone has to drive a current-thread runtime: this thread, until the driver is
            // done (parking whenever the echo task waits).
            let finishing = Oneshot.channel(of: Void.self)
            let finished = finishing.sender
            let boxed = SendableBox(driver)
            let joiner = startThreads(1) { _ in
                boxed.value.join()
                finished.send(())
            }
            let outcome = runtime.blockOn(finishing.receiver)
            XCTAssertNotNil(try? outcome.get(), name)
            joiner.join()
        } else {
            driver.join()
        }
        echo.abort()
        if keepInFlight { XCTAssertEqual(runtime.metrics.ioInFlight, 1, name) }
        if !keepInFlight {
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(10)), name)
            XCTAssertEqual(runtime.metrics.aliveTasks, 0, name)
        }
    }

    /// Shutdown with tasks pending on a channel, running (spinning through wakes), sleeping,
    /// and blocked in spawnBlocking: every task is cancelled and freed, every thread joined.
    func testShutdownWithTasksInEveryState() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            let dropped = Counter()
            let (tx, rx) = MPSC.unboundedChannel(of: Int.self)
            for _ in 0..<50 { _ = runtime.spawn(DropCounting(inner: rx.receive(), dropped: dropped)) }
            for _ in 0..<50 { _ = runtime.spawn(DropCounting(inner: sleep(for: .seconds(3600)), dropped: dropped)) }
            for _ in 0..<4 {
                _ = runtime.spawn(DropCounting(inner: pollFn { context -> Poll<Void> in
                    context.waker.wakeByRef()
                    return .pending
                }, dropped: dropped))
            }
            let release = Counter()
            let blocking = runtime.spawnBlocking {
                while release.value == 0 { usleep(1000) }
                return 1
            }
            runtime.blockOn(sleep(for: .milliseconds(20)))
            XCTAssertEqual(runtime.metrics.aliveTasks, 104, name)
            // Let the blocking closure finish a little after shutdown begins.
            let releaser = startThreads(1) { _ in
                usleep(30_000)
                release.increment()
            }
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(10)), name)
            releaser.join()
            XCTAssertEqual(dropped.value, 104, "every future dropped exactly once (\(name))")
            XCTAssertEqual(runtime.metrics.aliveTasks, 0, name)
            XCTAssertEqual(runtime.metrics.totalTimers, 0, name)
            XCTAssertEqual(runtime.metrics.blockingThreads, 0, name)
            let result = runtime.blockOn(blocking)
            XCTAssertEqual(try result.get(), 1, "a running blocking closure finishes (\(name))")
            _ = tx
        }
    }

    /// A million tasks spawned from outside and from inside tasks all complete and are freed.
    /// Workers woken by their own timers while a remote spawn picks them: each remote spawn must
    /// still run (a worker that counted itself unparked without leaving the searching count would
    /// silence every later notification).
    func testRemoteSpawnsRunWhileWorkersWakeFromTimers() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let stop = Counter()
        // Sleepers on the workers, waking every millisecond.
        for _ in 0..<4 {
            Task(executorPreference: runtime) {
                while stop.value == 0 { await sleep(for: .milliseconds(1)).value() }
            }
        }
        defer { stop.increment() }
        let rounds = 300 * stressScale
        let ran = Counter()
        for round in 0..<rounds {
            _ = runtime.spawn(sleep(for: .milliseconds(round % 3)).map { _ in () })
            _ = runtime.spawn(pollFn { _ -> Poll<Void> in
                ran.increment()
                return .ready(())
            })
            XCTAssertTrue(eventually(within: .seconds(5)) { ran.value == round + 1 }, "remote spawn \(round) never ran")
            if ran.value != round + 1 { return }
        }
    }

    func testMillionTasksComplete() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let total = 1_000_000
        let ran = Counter()
        let batches = runtime.blockOn(JoinAll(count: 100) { _ in
            runtime.spawn(pollFn { _ -> Poll<Void> in
                for _ in 0..<(total / 100) {
                    _ = spawn(pollFn { _ -> Poll<Void> in
                        ran.increment()
                        return .ready(())
                    })
                }
                return .ready(())
            })
        })
        XCTAssertEqual(batches.count, 100)
        XCTAssertTrue(eventually(within: .seconds(60)) { ran.value == total }, "ran \(ran.value)")
        XCTAssertTrue(eventually { runtime.metrics.aliveTasks == 0 })
    }
}

/// Spawns `leaves` leaf tasks and the next link of a chain, `remaining` deep, counting every
/// task that runs.
struct SpawnChain: Future {
    static let leaves = 8
    var remaining: Int
    let ran: Counter

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        ran.increment()
        let ran = self.ran
        for _ in 0..<Self.leaves {
            _ = spawn(pollFn { _ -> Poll<Void> in
                ran.increment()
                return .ready(())
            })
        }
        if remaining > 0 { _ = spawn(SpawnChain(remaining: remaining - 1, ran: ran)) }
        return .ready(())
    }
}

/// Echoes every value it receives until the channel ends.
struct EchoLoop: ~Copyable, Future {
    let input: MPSC.Receiver<Int>
    let output: MPSC.UnboundedSender<Int>

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            var next = input.receive()
            switch next.poll(&context) {
            case .pending: return .pending
            case .ready(nil): return .ready(())
            case .ready(let value?): output.send(value)
            }
        }
    }
}

/// Wraps a future and counts its drop.
struct DropCounting<Inner: Future & ~Copyable>: ~Copyable, Future {
    var inner: Inner
    let dropped: Counter

    mutating func poll(_ context: inout Context) -> Poll<Inner.Output> { inner.poll(&context) }

    deinit { dropped.increment() }
}

/// How a read ended (1: bytes, 2: ECANCELED, 3: another error; 0: not yet), set once by the
/// reading task and read by the test thread.
private final class ReadOutcome: Sendable {
    let state = Atomic<Int>(0)
}
