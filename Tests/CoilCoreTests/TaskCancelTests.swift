@testable import CoilCore
import Synchronization
import XCTest

/// Abort while idle, while queued, while running, and after completion.
final class TaskCancelTests: XCTestCase {
    func testAbortWhileIdleSchedulesTheTaskWhichDropsItsFuture() {
        let runtime = TestRuntime(), log = runtime.log, gate = Gate()
        var handle = runtime.spawn(GatedFuture(gate, log))
        runtime.runAll()
        handle.abort()
        XCTAssertEqual(runtime.queued, 1, "the cancellation is carried out by a poll")
        XCTAssertEqual(log.count(.futureDrops), 0)
        runtime.runAll()
        XCTAssertEqual(log.count(.polls), 1, "a cancelled task is not polled")
        XCTAssertEqual(log.count(.futureDrops), 1)
        guard case .ready(.failure(let error)) = pollJoin(&handle) else { return XCTFail("expected a JoinError") }
        XCTAssertTrue(error.isCancelled)
        XCTAssertEqual(error.id, handle.id)
        gate.dropWaker()  // the gate held the task's waker: its reference
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
        XCTAssertEqual(log.count(.outputDrops), 0)
    }

    func testAbortWhileQueuedCancelsBeforeTheFirstPoll() {
        let runtime = TestRuntime(), log = runtime.log
        var handle = runtime.spawn(CountingReady(log: log, value: 1))
        let abort = handle.makeAbortHandle()
        abort.abort()
        XCTAssertEqual(runtime.queued, 1, "already notified: no second Notified (rule 4)")
        runtime.runAll()
        XCTAssertEqual(log.count(.polls), 0)
        XCTAssertEqual(log.count(.futureDrops), 1)
        XCTAssertTrue(abort.isFinished)
        guard case .ready(.failure(let error)) = pollJoin(&handle), error.isCancelled else { return XCTFail("not cancelled") }
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 0, "the abort handle still holds a reference")
        _ = consume abort
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testAbortWhileRunningTakesEffectWhenThePollReturns() {
        let runtime = TestRuntime(), log = runtime.log
        let abortSlot = LockedValue<AbortHandle?>(nil)
        let tracker = DeallocToken(log)  // captured by the future: dropped with it
        var handle = runtime.spawn(pollFn { [tracker] _ -> Poll<Int> in
            _ = tracker
            abortSlot.withLock { $0?.abort() }
            return .pending
        })
        abortSlot.withLock { $0 = handle.makeAbortHandle() }
        _ = consume tracker
        runtime.runAll()
        XCTAssertEqual(runtime.queued, 0, "the poller carried out the cancellation itself")
        XCTAssertEqual(log.count(.deallocs), 1, "the future (and the token it captured) was dropped")
        guard case .ready(.failure(let error)) = pollJoin(&handle), error.isCancelled else { return XCTFail("not cancelled") }
        abortSlot.withLock { $0 = nil }
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 2)
    }

    func testAbortAfterCompletionChangesNothing() {
        let runtime = TestRuntime(), log = runtime.log
        var handle = runtime.spawn(CountingReady(log: log, value: 5))
        runtime.runAll()
        handle.abort()
        XCTAssertEqual(runtime.queued, 0)
        guard case .ready(.success(let output)) = pollJoin(&handle) else { return XCTFail("lost the output") }
        XCTAssertEqual(output.value, 5)
    }

    func testAbortTwiceSchedulesOnce() {
        let runtime = TestRuntime(), log = runtime.log, gate = Gate()
        let handle = runtime.spawn(GatedFuture(gate, log))
        runtime.runAll()
        handle.abort()
        handle.abort()
        XCTAssertEqual(runtime.queued, 1)
        gate.open()  // a wake after the abort: already notified
        XCTAssertEqual(runtime.queued, 1)
        runtime.runAll()
        XCTAssertEqual(log.count(.polls), 1)
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
    }
}
