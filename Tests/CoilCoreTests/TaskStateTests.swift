import CoilCore
import XCTest

/// The pure transitions, one case at a time (the model checker covers their combinations).
final class TaskStateTests: XCTestCase {
    typealias S = TaskState

    func state(refs: UInt64, _ flags: UInt64...) -> TaskState {
        TaskState(bits: refs * S.refOne | flags.reduce(0, |))
    }

    func testInitialStateHoldsThreeReferences() {
        XCTAssertEqual(S.initial.refCount, 3)
        XCTAssertTrue(S.initial.isNotified && S.initial.isJoinInterested && S.initial.isIdle)
        XCTAssertFalse(S.initial.isCancelled || S.initial.isJoinWakerSet)
    }

    func testToRunningFromIdleTakesRunningAndKeepsTheReference() {
        let (next, outcome) = S.transitionToRunning(S.initial)
        XCTAssertEqual(outcome, .success)
        XCTAssertEqual(next, state(refs: 3, S.running, S.joinInterest))
    }

    func testToRunningReportsCancellation() {
        let (_, outcome) = S.transitionToRunning(state(refs: 2, S.notified, S.cancelled))
        XCTAssertEqual(outcome, .cancelled)
    }

    func testToRunningOnARunningOrCompleteTaskDropsTheNotified() {
        XCTAssertEqual(S.transitionToRunning(state(refs: 2, S.notified, S.running)).1, .failed)
        XCTAssertEqual(S.transitionToRunning(state(refs: 2, S.notified, S.running)).0.refCount, 1)
        XCTAssertEqual(S.transitionToRunning(state(refs: 1, S.notified, S.complete)).1, .dealloc)
    }

    func testToIdleDropsThePollersReferenceOrReschedules() {
        XCTAssertEqual(S.transitionToIdle(state(refs: 3, S.running)).1, .ok)
        XCTAssertEqual(S.transitionToIdle(state(refs: 3, S.running)).0, state(refs: 2))
        XCTAssertEqual(S.transitionToIdle(state(refs: 1, S.running)).1, .okDealloc)
        let (next, outcome) = S.transitionToIdle(state(refs: 2, S.running, S.notified))
        XCTAssertEqual(outcome, .okNotified)
        XCTAssertEqual(next, state(refs: 2, S.notified))  // the poller's reference is the new Notified's
        XCTAssertEqual(S.transitionToIdle(state(refs: 2, S.running, S.cancelled)).1, .cancelled)
        // A wake left for after the poll: straight to notified, the poller's reference kept for
        // the Notified, whether or not another wake came during the poll.
        XCTAssertEqual(S.transitionToIdleNotified(state(refs: 1, S.running)).1, .okNotified)
        XCTAssertEqual(S.transitionToIdleNotified(state(refs: 1, S.running)).0, state(refs: 1, S.notified))
        XCTAssertEqual(S.transitionToIdleNotified(state(refs: 2, S.running, S.notified)).0, state(refs: 2, S.notified))
        XCTAssertEqual(S.transitionToIdleNotified(state(refs: 2, S.running, S.cancelled)).1, .cancelled)
        XCTAssertEqual(S.transitionToIdleNotified(state(refs: 2, S.running, S.cancelled)).0, state(refs: 2, S.running, S.cancelled))
    }

    func testCompleteSwapsRunningForComplete() {
        let (next, snapshot) = S.transitionToComplete(state(refs: 2, S.running, S.joinInterest))
        XCTAssertEqual(next, state(refs: 2, S.complete, S.joinInterest))
        XCTAssertEqual(next, snapshot)
        XCTAssertEqual(S.transitionToTerminal(next, count: 2).1, true)
        XCTAssertEqual(S.transitionToTerminal(next, count: 1).1, false)
    }

    func testDetachedCompletionPublishesCompleteAndDropsReferencesInOneStep() {
        // The completer and the owned list: both references go, the task is freed.
        XCTAssertEqual(S.transitionToCompleteDetached(state(refs: 2, S.running), count: 2).0, state(refs: 0, S.complete))
        XCTAssertEqual(S.transitionToCompleteDetached(state(refs: 2, S.running), count: 2).1, true)
        // A queued Notified (woken during the poll) keeps it alive; it will find COMPLETE.
        let (next, last) = S.transitionToCompleteDetached(state(refs: 3, S.running, S.notified), count: 2)
        XCTAssertEqual(next, state(refs: 1, S.complete, S.notified))
        XCTAssertFalse(last)
        // Cancelled meanwhile (abort, or shutdown holding the list's reference): still complete.
        XCTAssertEqual(S.transitionToCompleteDetached(state(refs: 2, S.running, S.cancelled), count: 1).0,
                       state(refs: 1, S.complete, S.cancelled))
    }

    func testWakeByValue() {
        // Idle, not notified: a new reference for the Notified; the waker drops its own after
        // scheduling (the scheduler lives inside the task).
        XCTAssertEqual(S.transitionToNotifiedByValue(state(refs: 2)).1, .submit)
        XCTAssertEqual(S.transitionToNotifiedByValue(state(refs: 2)).0, state(refs: 3, S.notified))
        // Running: mark, drop the waker's reference.
        XCTAssertEqual(S.transitionToNotifiedByValue(state(refs: 2, S.running)).0, state(refs: 1, S.running, S.notified))
        // Already notified or complete: just drop; the last one deallocates.
        XCTAssertEqual(S.transitionToNotifiedByValue(state(refs: 2, S.notified)).1, .doNothing)
        XCTAssertEqual(S.transitionToNotifiedByValue(state(refs: 1, S.complete)).1, .dealloc)
    }

    func testWakeByRef() {
        let (next, outcome) = S.transitionToNotifiedByRef(state(refs: 2))
        XCTAssertEqual(outcome, .submit)
        XCTAssertEqual(next, state(refs: 3, S.notified))
        XCTAssertEqual(S.transitionToNotifiedByRef(state(refs: 2, S.running)).0, state(refs: 2, S.running, S.notified))
        XCTAssertEqual(S.transitionToNotifiedByRef(state(refs: 2, S.notified)).1, .doNothing)
        XCTAssertEqual(S.transitionToNotifiedByRef(state(refs: 2, S.complete)).1, .doNothing)
    }

    func testAbort() {
        let (idle, submit) = S.transitionToNotifiedAndCancel(state(refs: 2))
        XCTAssertTrue(submit)
        XCTAssertEqual(idle, state(refs: 3, S.notified, S.cancelled))
        XCTAssertFalse(S.transitionToNotifiedAndCancel(state(refs: 2, S.running)).1)
        XCTAssertEqual(S.transitionToNotifiedAndCancel(state(refs: 2, S.running)).0,
                       state(refs: 2, S.running, S.notified, S.cancelled))
        XCTAssertFalse(S.transitionToNotifiedAndCancel(state(refs: 2, S.notified)).1)
        XCTAssertEqual(S.transitionToNotifiedAndCancel(state(refs: 2, S.complete)).0, state(refs: 2, S.complete))
    }

    func testShutdownTakesRunningOnlyFromIdle() {
        XCTAssertEqual(S.transitionToShutdown(state(refs: 1, S.notified)).0, state(refs: 1, S.notified, S.running, S.cancelled))
        XCTAssertTrue(S.transitionToShutdown(state(refs: 1)).1)
        XCTAssertFalse(S.transitionToShutdown(state(refs: 1, S.running)).1)
        XCTAssertFalse(S.transitionToShutdown(state(refs: 1, S.complete)).1)
    }

    func testJoinHandleDropSaysWhatToCleanUp() {
        let pending = S.transitionToJoinHandleDropped(state(refs: 2, S.joinInterest, S.joinWaker))
        XCTAssertEqual(pending.0, state(refs: 2))
        XCTAssertEqual(pending.1, JoinHandleDrop(dropWaker: true, dropOutput: false))
        // Completer still waking: it keeps the waker; the handle drops the output.
        let waking = S.transitionToJoinHandleDropped(state(refs: 2, S.complete, S.joinInterest, S.joinWaker))
        XCTAssertEqual(waking.1, JoinHandleDrop(dropWaker: false, dropOutput: true))
        let done = S.transitionToJoinHandleDropped(state(refs: 2, S.complete, S.joinInterest))
        XCTAssertEqual(done.1, JoinHandleDrop(dropWaker: true, dropOutput: true))
    }

    func testJoinWakerHandOver() {
        XCTAssertTrue(S.setJoinWaker(state(refs: 2, S.joinInterest)).1)
        XCTAssertFalse(S.setJoinWaker(state(refs: 2, S.joinInterest, S.complete)).1)
        XCTAssertTrue(S.unsetJoinWaker(state(refs: 2, S.joinInterest, S.joinWaker)).1)
        XCTAssertFalse(S.unsetJoinWaker(state(refs: 2, S.joinInterest, S.joinWaker, S.complete)).1)
        // Found by the model checker: the handle saw JOIN_WAKER, then the completer cleared it.
        XCTAssertFalse(S.unsetJoinWaker(state(refs: 2, S.joinInterest, S.complete)).1)
        XCTAssertTrue(S.unsetWakerAfterComplete(state(refs: 2, S.joinInterest, S.joinWaker, S.complete)).1)
        XCTAssertFalse(S.unsetWakerAfterComplete(state(refs: 2, S.joinWaker, S.complete)).1)
    }
}
