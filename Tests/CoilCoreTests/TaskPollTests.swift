@testable import CoilCore
import Synchronization
import XCTest

/// Spawn, poll, to-idle, wake, complete: the harness's main path, with exact counts.
final class TaskPollTests: XCTestCase {
    func testAReadyTaskIsPolledOnceCompletesAndIsFreedWhenJoined() {
        let runtime = TestRuntime(), log = runtime.log
        var handle = runtime.spawn(CountingReady(log: log, value: 3))
        XCTAssertEqual(log.count(.schedules), 1)
        XCTAssertEqual(runtime.runAll(), 1)
        XCTAssertEqual(log.count(.polls), 1)
        XCTAssertEqual(log.count(.futureDrops), 1, "the future is dropped when its output is stored")
        XCTAssertTrue(handle.isFinished)
        XCTAssertEqual(log.count(.deallocs), 0, "the JoinHandle still holds a reference")
        guard case .ready(.success(let output)) = pollJoin(&handle) else { return XCTFail("no output") }
        XCTAssertEqual(output.value, 3)
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
        XCTAssertEqual(log.count(.outputDrops), 0, "the output was handed to us, still alive")
        _ = consume output
        XCTAssertEqual(log.count(.outputDrops), 1)
    }

    func testPendingTaskIsPolledAgainOnlyAfterAWake() {
        let runtime = TestRuntime(), log = runtime.log, gate = Gate()
        let handle = runtime.spawn(GatedFuture(gate, log))
        runtime.runAll()
        XCTAssertEqual(log.count(.polls), 1)
        XCTAssertEqual(runtime.runAll(), 0, "nothing is queued without a wake")
        XCTAssertEqual(handle.task.state.refCount, 3, "owned list, JoinHandle and the stored waker")
        XCTAssertTrue(gate.open())
        XCTAssertEqual(log.count(.schedules), 2)
        runtime.runAll()
        XCTAssertEqual(log.count(.polls), 2)
        XCTAssertTrue(handle.isFinished)
        XCTAssertEqual(handle.task.state.refCount, 1, "only the JoinHandle is left")
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
        XCTAssertEqual(log.count(.outputDrops), 1, "dropping an unread output's handle drops the output")
    }

    func testManyWakesWhileIdleQueueOneNotified() {
        let runtime = TestRuntime(), log = runtime.log
        let stored = LockedValue<Waker?>(nil)
        var polls = 0
        let handle = runtime.spawn(pollFn { context -> Poll<Int> in
            polls += 1
            if polls == 2 { return .ready(polls) }
            stored.withLock { $0 = context.waker.clone() }
            return .pending
        })
        runtime.runAll()
        let waker = stored.withLock { $0.take()! }
        for _ in 0..<5 { waker.wakeByRef() }
        XCTAssertEqual(runtime.queued, 1, "rule 4: at most one Notified")
        XCTAssertEqual(log.count(.schedules), 2)
        _ = consume waker
        runtime.runAll()
        XCTAssertEqual(polls, 2)
        XCTAssertTrue(handle.isFinished)
    }

    func testAWakeDuringThePollReschedulesThroughYield() {
        let runtime = TestRuntime(), log = runtime.log
        var polls = 0
        let handle = runtime.spawn(pollFn { context -> Poll<Void> in
            polls += 1
            if polls == 3 { return .ready(()) }
            context.waker.wakeByRef()  // wake ourselves while RUNNING
            return .pending
        })
        XCTAssertEqual(runtime.runAll(), 3)
        XCTAssertEqual(log.count(.yields), 2, "a self-wake goes through yieldNow, not schedule")
        XCTAssertEqual(log.count(.schedules), 1)
        XCTAssertTrue(handle.isFinished)
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testAWakeAfterThePollReschedulesThroughYieldWithoutWakingTheWaker() {
        let runtime = TestRuntime(), log = runtime.log
        var polls = 0
        let handle = runtime.spawn(pollFn { context -> Poll<Void> in
            polls += 1
            if polls == 4 { return .ready(()) }
            context.wakeAfterPoll()
            if polls == 2 { context.waker.wakeByRef() }  // and a real wake in the same poll: one reschedule
            return .pending
        })
        XCTAssertEqual(runtime.runAll(), 4)
        XCTAssertEqual(polls, 4)
        XCTAssertEqual(log.count(.yields), 3, "each deferred wake reschedules once, through yieldNow")
        XCTAssertEqual(log.count(.schedules), 1)
        XCTAssertTrue(handle.isFinished)
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testAWakeAfterThePollThenReadyIsNotRescheduled() {
        let runtime = TestRuntime(), log = runtime.log
        let handle = runtime.spawn(pollFn { context -> Poll<Void> in
            context.wakeAfterPoll()
            return .ready(())
        })
        XCTAssertEqual(runtime.runAll(), 1)
        XCTAssertEqual(log.count(.yields), 0)
        XCTAssertEqual(runtime.queued, 0)
        XCTAssertTrue(handle.isFinished)
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testAWakeAfterPollOutsideATaskWakesAtOnce() {
        let counter = CountingWaker()
        var context = Context(waker: counter.makeWaker())
        context.wakeAfterPoll()
        XCTAssertEqual(counter.counts.wakes, 1)
        // Lent onward (as a combinator or blockOn does), it wakes at once too.
        Context.withWaker(context.waker) { inner in inner.wakeAfterPoll() }
        XCTAssertEqual(counter.counts.wakes, 2)
        _ = consume context
        XCTAssertEqual(counter.counts.drops, 1)
    }

    func testAWakeAfterPollOfACancelledTaskCompletesIt() {
        let runtime = TestRuntime(), log = runtime.log
        let abort = LockedValue<AbortHandle?>(nil)
        let handle = runtime.spawn(pollFn { context -> Poll<Void> in
            abort.withLock { $0!.abort() }  // cancelled while running
            context.wakeAfterPoll()
            return .pending
        })
        abort.withLock { $0 = handle.makeAbortHandle() }
        XCTAssertEqual(runtime.runAll(), 1)
        XCTAssertEqual(log.count(.yields), 0)
        XCTAssertEqual(runtime.queued, 0)
        XCTAssertTrue(handle.isFinished)
        abort.withLock { $0 = nil }
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testWakeByValueDuringThePollAlsoReschedules() {
        let runtime = TestRuntime(), log = runtime.log
        var polls = 0
        let handle = runtime.spawn(pollFn { context -> Poll<Void> in
            polls += 1
            if polls == 2 { return .ready(()) }
            context.waker.clone().wake()
            return .pending
        })
        XCTAssertEqual(runtime.runAll(), 2)
        XCTAssertEqual(log.count(.yields), 1)
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testAWakerOutlivingTheTaskKeepsItAllocatedUntilDropped() {
        let runtime = TestRuntime(), log = runtime.log, gate = Gate()
        let handle = runtime.spawn(GatedFuture(gate, log))
        runtime.runAll()
        let waker = gate.state.withLock { $0.waker!.clone() }
        gate.open()
        runtime.runAll()
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 0, "our waker clone still holds a reference")
        waker.wake()  // waking a completed task only drops the reference
        XCTAssertEqual(log.count(.deallocs), 1)
        XCTAssertEqual(runtime.queued, 0)
    }

    func testDetachedTaskRunsToCompletionAndDropsItsOutput() {
        let runtime = TestRuntime(), log = runtime.log, gate = Gate()
        _ = runtime.spawn(GatedFuture(gate, log))  // detach at once: the fast path
        runtime.runAll()
        XCTAssertEqual(log.count(.deallocs), 0)
        gate.open()
        runtime.runAll()
        XCTAssertEqual(log.count(.outputDrops), 1, "nobody will read it, so the completer drops it")
        XCTAssertEqual(log.count(.futureDrops), 1)
        XCTAssertEqual(log.count(.deallocs), 1)
    }
}

