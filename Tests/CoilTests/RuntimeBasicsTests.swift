import Coil
import CoilTestSupport
import Synchronization
import XCTest

/// Both flavours, one behaviour per test: spawn, join, blockOn, handles, spawnBlocking, shutdown.
final class RuntimeBasicsTests: XCTestCase {
    nonisolated(unsafe) static let flavors: [(String, () throws -> Runtime)] = [
        ("current-thread", { try Runtime.Builder.currentThread().build() }),
        ("multi-thread(1)", { try Runtime.Builder.multiThread().workerThreads(1).build() }),
        ("multi-thread(2)", { try Runtime.Builder.multiThread().workerThreads(2).build() }),
        ("multi-thread(4, local queue 4)", { try Runtime.Builder.multiThread().workerThreads(4).localQueueCapacity(4).build() }),
    ]

    func testBlockOnReturnsTheFutureOutput() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            XCTAssertEqual(runtime.blockOn(ready(20).map { $0 + 22 }), 42, name)
            XCTAssertTrue(runtime.shutdown(), name)
        }
    }

    func testSpawnedTaskOutputReachesItsJoinHandle() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let handle = runtime.spawn(ready(7).map { $0 * 6 })
            let result = runtime.blockOn(handle)
            XCTAssertEqual(try result.get(), 42, name)
            // The joiner is woken before the finished task leaves the owned list.
            XCTAssertTrue(eventually { runtime.metrics.aliveTasks == 0 }, name)
            runtime.shutdown()
        }
    }

    func testTasksSpawnedInsideTasksAllComplete() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let counter = Counter()
            let outer = runtime.spawn(pollFn { _ -> Poll<Int> in
                var handles = 0
                for _ in 0..<1000 {
                    _ = spawn(pollFn { _ -> Poll<Void> in
                        counter.increment()
                        return .ready(())
                    })
                    handles += 1
                }
                return .ready(handles)
            })
            let spawned = runtime.blockOn(outer)
            XCTAssertEqual(try spawned.get(), 1000, name)
            // Detached tasks: wait until they all ran.
            runtime.blockOn(pollFn { context -> Poll<Void> in
                if counter.value == 1000 { return .ready(()) }
                context.waker.wakeByRef()
                return .pending
            })
            XCTAssertEqual(counter.value, 1000, name)
            XCTAssertTrue(runtime.shutdown(), name)
        }
    }

    /// A runtime with one worker keeps its run queue private and grows it instead of spilling.
    /// Started at 8 slots, with tasks spawning tasks while the queue is being drained (so it
    /// grows while its contents wrap around): a binary tree of 3,000 tasks, where task i spawns
    /// 2i+1 and 2i+2. Current-thread runs them in exactly breadth-first order (FIFO, no LIFO
    /// slot); multi-thread(1) runs each once. The depth metric follows the queue.
    func testSingleWorkerRunQueueGrowsAndKeepsOrder() throws {
        final class Order: @unchecked Sendable {
            // SAFETY: one worker thread appends, then publishes through `finished`.
            var ran: [Int] = []
            var deepest = 0
            let finished = Atomic<Int>(0)
        }
        struct Node: Future {
            let index: Int, total: Int, order: Order, runtime: Runtime
            mutating func poll(_ context: inout Context) -> Poll<Void> {
                order.ran.append(index)
                for child in [2 * index + 1, 2 * index + 2] where child < total {
                    _ = spawn(Node(index: child, total: total, order: order, runtime: runtime))
                }
                order.deepest = max(order.deepest, runtime.metrics.workers[0].localQueueDepth)
                order.finished.add(1, ordering: .releasing)
                return .ready(())
            }
        }
        let total = 3000
        for (name, builder) in [("current-thread", Runtime.Builder.currentThread()),
                                ("multi-thread(1)", Runtime.Builder.multiThread().workerThreads(1))] {
            let runtime = try builder.localQueueCapacity(2).build()
            let order = Order()
            _ = runtime.spawn(Node(index: 0, total: total, order: order, runtime: runtime))
            runtime.blockOn(pollFn { context -> Poll<Void> in
                if order.finished.load(ordering: .acquiring) == total { return .ready(()) }
                context.waker.wakeByRef()
                return .pending
            })
            XCTAssertTrue(runtime.shutdown(), name)
            XCTAssertTrue(order.ran.sorted() == Array(0..<total), "\(name): a task ran twice or never")
            if name == "current-thread" {
                let first = zip(order.ran, 0...).first { $0 != $1 }
                XCTAssertNil(first, "\(name): out of breadth-first order at position \(first?.1 ?? -1)")
            }
            XCTAssertGreaterThan(order.deepest, 8, name)
            XCTAssertEqual(runtime.metrics.workers[0].overflows, 0, name)
        }
    }

    func testHandleCurrentInsideATaskIsItsRuntime() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            XCTAssertNil(Handle.tryCurrent)
            let inside = runtime.blockOn(runtime.spawn(pollFn { _ in .ready(Handle.tryCurrent != nil) }))
            XCTAssertEqual(try inside.get(), true, name)
            XCTAssertTrue(runtime.blockOn(pollFn { _ in .ready(Handle.tryCurrent != nil) }), name)
            XCTAssertNil(Handle.tryCurrent, name)
            runtime.shutdown()
        }
    }

    func testSpawnBlockingRunsOffTheWorkers() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let results = runtime.blockOn(JoinAll(count: 8) { index in runtime.spawnBlocking { index * 2 } })
            let sum = try results.reduce(0) { $0 + (try $1.get()) }
            XCTAssertEqual(sum, 56, name)
            XCTAssertGreaterThanOrEqual(runtime.metrics.blockingThreads, 1, name)
            XCTAssertTrue(runtime.shutdown(), name)
            XCTAssertEqual(runtime.metrics.blockingThreads, 0, name)
        }
    }

    func testYieldNowLetsOtherTasksRun() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let yields = Counter()
            let results = runtime.blockOn(JoinAll(count: 50) { _ in runtime.spawn(YieldLoop(count: 100, yields: yields)) })
            XCTAssertEqual(results.filter { (try? $0.get()) != nil }.count, 50, name)
            XCTAssertEqual(yields.value, 5000, name)
            runtime.shutdown()
        }
    }

    func testHandleSpawnsFromAnotherThreadAndServesAsExecutor() async throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let handle = runtime.handle
        let results = Counter()
        runThreads(2) { index in
            let job = handle.spawn(ready(index + 1).map { results.increment(by: $0) })
            let blocking = handle.spawnBlocking { results.increment(by: 10) }
            _ = runtime.blockOn(join(job, blocking))
        }
        XCTAssertEqual(results.value, 1 + 2 + 10 + 10)
        let onWorker = await Task(executorPreference: handle.executor) { Handle.tryCurrent != nil }.value
        XCTAssertTrue(onWorker, "a Swift task preferring the handle's executor runs on a worker")
    }

    func testSpawnAfterShutdownIsCancelledAtOnce() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            XCTAssertFalse(runtime.isShutDown, name)
            runtime.shutdown()
            XCTAssertTrue(runtime.isShutDown, name)
            let handle = runtime.spawn(ready(1))
            XCTAssertTrue(handle.isFinished, name)
            let result = runtime.blockOn(handle)
            XCTAssertEqual(result.isCancelled, true, name)
        }
    }

    func testInvalidConfigurationIsRejected() {
        XCTAssertThrowsError(try Runtime.Builder.multiThread().workerThreads(0).build())
        XCTAssertThrowsError(try Runtime.Builder.multiThread().localQueueCapacity(1).build())
    }
}

/// Yields `count` times through `YieldNow`, counting each.
struct YieldLoop: Future {
    var count: Int
    let yields: Counter
    var inner = YieldNow()

    init(count: Int, yields: Counter) {
        self.count = count
        self.yields = yields
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while count > 0 {
            guard case .ready = inner.poll(&context) else { return .pending }
            yields.increment()
            count -= 1
            inner = YieldNow()
        }
        return .ready(())
    }
}

/// A shared counter for tasks on any thread.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    init() {}
    func increment(by amount: Int = 1) { atomic.add(amount, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .acquiring) }
}

extension Result where Failure == JoinError {
    var isCancelled: Bool {
        if case .failure(let error) = self { return error.isCancelled }
        return false
    }
}
