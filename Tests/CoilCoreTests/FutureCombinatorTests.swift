import CoilCore
import CoilTestSupport
import Synchronization
import XCTest

final class FutureCombinatorTests: XCTestCase {
    func pollOnce<F: Future & ~Copyable>(_ future: inout F) -> Poll<F.Output> {
        // An owning context rather than `Context.withWaker { future.poll(&$0) }`: under
        // -sanitize=thread, Swift 6.3 instruments the closure's inout capture of a zero-sized
        // future (Pending) with a bogus address and TSan crashes.
        var context = Context(waker: Waker.noop)
        return future.poll(&context)
    }

    func testReadyAndPending() {
        var a = ready(5)
        XCTAssertEqual(pollOnce(&a).readyValue, 5)
        // Wrapped in a Map: polling the zero-sized Pending through a generic inout parameter
        // crashes TSan's access instrumentation in Swift 6.3 (a toolchain bug, not Coil's).
        var never = pending(Int.self).map { $0 }
        XCTAssertNil(pollOnce(&never).readyValue)
        XCTAssertNil(pollOnce(&never).readyValue)
    }

    func testPollFnRunsTheClosureEachPoll() {
        var calls = 0
        var future = pollFn { _ -> Poll<Int> in
            calls += 1
            return calls == 3 ? .ready(calls) : .pending
        }
        XCTAssertNil(pollOnce(&future).readyValue)
        XCTAssertNil(pollOnce(&future).readyValue)
        XCTAssertEqual(pollOnce(&future).readyValue, 3)
    }

    func testMapTransformsAndDropsTheBaseWhenDone() {
        let log = TaskLog()
        var future = CountingReady(log: log, value: 20).map { $0.value + 1 }
        XCTAssertEqual(pollOnce(&future).readyValue, 21)
        XCTAssertEqual(log.count(.futureDrops), 1, "the base is dropped as soon as it is ready")
    }

    func testJoinWaitsForBothAndPollsBothEachTime() {
        let gate = Gate(), log = TaskLog()
        var future = join(GatedFuture(gate, log, value: 1), ready("b"))
        XCTAssertNil(pollOnce(&future).readyValue)
        XCTAssertEqual(log.count(.polls), 1)
        gate.open()
        guard case .ready(let (a, b)) = pollOnce(&future) else { return XCTFail("join not ready") }
        XCTAssertEqual(a.value, 1)
        XCTAssertEqual(b, "b")
        XCTAssertEqual(log.count(.polls), 2)
    }

    func testSelectReturnsTheFirstAndDropsTheLoser() {
        let gate = Gate(), log = TaskLog()
        var future = select(GatedFuture(gate, log), ready(9))
        guard case .ready(.right(9)) = pollOnce(&future) else { return XCTFail("select picked the wrong side") }
        XCTAssertEqual(log.count(.futureDrops), 1, "the pending loser is dropped at once")
    }

    func testSelectPrefersTheLeftWhenBothAreReady() {
        var future = ready(1).select(ready(2))
        XCTAssertEqual(pollOnce(&future).readyValue, .left(1))
    }

    func testJoinAllKeepsOrderAndDropsEachFutureWhenItFinishes() {
        let log = TaskLog()
        let gates = (0..<4).map { _ in Gate() }
        var future = JoinAll(count: 4) { GatedFuture(gates[$0], log, value: $0) }
        gates[2].open()
        XCTAssertNil(pollOnce(&future).readyValue)
        XCTAssertEqual(log.count(.futureDrops), 1)
        for gate in gates { gate.open() }
        guard case .ready(let outputs) = pollOnce(&future) else { return XCTFail("joinAll not ready") }
        XCTAssertEqual(outputs.map(\.value), [0, 1, 2, 3])
        XCTAssertEqual(log.count(.futureDrops), 4)
        XCTAssertEqual(log.count(.polls), 4 + 3)
    }

    func testJoinAllOfNothingIsReady() {
        var future = joinAll([Ready<Int>]())
        XCTAssertEqual(pollOnce(&future).readyValue, [])
    }

    func testBlockOnReturnsAReadyValue() {
        let (a, b) = blockOn(join(ready(1), ready(2)))
        XCTAssertEqual(a + b, 3)
    }

    func testBlockOnSleepsUntilAnotherThreadWakes() {
        let gate = Gate(), log = TaskLog()
        let opener = startThreads(1) { _ in
            while !gate.hasWaker { sched_yield() }
            gate.open()
        }
        let output = blockOn(GatedFuture(gate, log, value: 11))
        opener.join()
        XCTAssertEqual(output.value, 11)
        XCTAssertGreaterThanOrEqual(log.count(.polls), 2)
    }

    /// A thousand cross-thread wakes of a blockOn that yields before sleeping: none is lost,
    /// whether it lands while the thread spins, as it goes to sleep or while it sleeps.
    func testBlockOnSpinningBeforeSleepLosesNoWake() {
        for spins in [1, 32, 10_000] {
            for round in 0..<1_000 {
                let gate = Gate(), log = TaskLog()
                let opener = startThreads(1) { _ in
                    while !gate.hasWaker { sched_yield() }
                    gate.open()
                }
                let output = blockOn(GatedFuture(gate, log, value: round), spinsBeforeSleeping: spins)
                opener.join()
                XCTAssertEqual(output.value, round)
            }
        }
    }
}

extension Poll where Output: Copyable {
    var readyValue: Output? {
        if case .ready(let value) = self { return value }
        return nil
    }
}
