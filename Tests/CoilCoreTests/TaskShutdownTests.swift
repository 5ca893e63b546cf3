@testable import CoilCore
import Synchronization
import XCTest

/// The scheduler cancels every task it owns.
final class TaskShutdownTests: XCTestCase {
    func testShutdownCancelsIdleAndQueuedTasksKeepsFinishedOutputsAndFreesAll() {
        let runtime = TestRuntime(), log = runtime.log
        let gate = Gate()
        var idle = runtime.spawn(GatedFuture(gate, log))
        runtime.runAll()
        var completed = runtime.spawn(CountingReady(log: log, value: 2))
        var unpolled = runtime.spawn(CountingReady(log: log, value: 3))
        runtime.runOne()  // runs `completed`; `unpolled` stays queued
        XCTAssertEqual(runtime.queued, 1)
        runtime.shutdown()
        XCTAssertEqual(runtime.shared.owned.count, 0)
        XCTAssertTrue(runtime.shared.owned.isClosed)
        guard case .ready(.failure(let e1)) = pollJoin(&idle), e1.isCancelled else { return XCTFail("idle not cancelled") }
        guard case .ready(.success(let v2)) = pollJoin(&completed) else { return XCTFail("completed output lost") }
        guard case .ready(.failure(let e3)) = pollJoin(&unpolled), e3.isCancelled else { return XCTFail("unpolled not cancelled") }
        XCTAssertEqual(v2.value, 2)
        gate.dropWaker()
        _ = consume idle
        _ = consume completed
        _ = consume unpolled
        XCTAssertEqual(log.count(.deallocs), 3)
        XCTAssertEqual(log.count(.futureDrops), 3)
    }

    func testShardedOwnedListCountsReleasesAndShutsDownEveryShard() {
        XCTAssertEqual(OwnedTasks(shards: 3).shardMask, 3, "rounded up to a power of two")
        XCTAssertEqual(OwnedTasks().shardMask, 0)
        let runtime = TestRuntime(), log = runtime.log
        let gates = (0..<20).map { _ in Gate() }
        for i in 0..<20 {
            _ = runtime.spawn(GatedFuture(gates[i], log))
            _ = runtime.spawn(CountingReady(log: log, value: i))
        }
        XCTAssertEqual(runtime.shared.owned.count, 40)
        runtime.runAll()
        XCTAssertEqual(runtime.shared.owned.count, 20, "finished tasks left their shards")
        XCTAssertEqual(runtime.shared.owned.closeAndShutdownAll(), 20, "every shard was shut down")
        XCTAssertEqual(runtime.shared.owned.count, 0)
        XCTAssertTrue(runtime.shared.owned.isClosed)
        for gate in gates { gate.dropWaker() }
        XCTAssertEqual(log.count(.futureDrops), 40)
        XCTAssertEqual(log.count(.deallocs), 40)
    }

    func testShutdownWhileATaskRunsLeavesTheCancellationToItsPoller() {
        let runtime = TestRuntime(), log = runtime.log
        var polls = 0
        var handle = runtime.spawn(pollFn { _ -> Poll<Int> in
            polls += 1
            runtime.shared.owned.closeAndShutdownAll()  // shutdown from inside the poll
            return .pending
        })
        runtime.runAll()
        XCTAssertEqual(polls, 1)
        guard case .ready(.failure(let error)) = pollJoin(&handle), error.isCancelled else { return XCTFail("not cancelled") }
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testSpawnAfterShutdownIsCancelledAtOnce() {
        let runtime = TestRuntime(), log = runtime.log
        runtime.shutdown()
        var handle = runtime.spawn(CountingReady(log: log, value: 1))
        XCTAssertEqual(runtime.queued, 0)
        XCTAssertEqual(log.count(.futureDrops), 1)
        XCTAssertEqual(log.count(.polls), 0)
        guard case .ready(.failure(let error)) = pollJoin(&handle), error.isCancelled else { return XCTFail("not cancelled") }
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
    }
}
