@testable import CoilCore
import XCTest

/// The JoinHandle protocol: waker registration and replacement, reading the output once, and
/// dropping the handle at every stage.
final class TaskJoinTests: XCTestCase {
    func testJoinWakerIsWokenOnceOnCompletion() {
        let runtime = TestRuntime(), log = runtime.log, gate = Gate()
        var handle = runtime.spawn(GatedFuture(gate, log))
        runtime.runAll()
        let joiner = CountingWaker()
        let waker = joiner.makeWaker()
        XCTAssertNil(pollJoin(&handle, waker).readyValueOrNil)
        XCTAssertTrue(handle.task.state.isJoinWakerSet)
        XCTAssertEqual(joiner.counts.clones, 1)
        // Polling again with the same waker keeps the stored one.
        XCTAssertNil(pollJoin(&handle, waker).readyValueOrNil)
        XCTAssertEqual(joiner.counts.clones, 1)
        gate.open()
        runtime.runAll()
        XCTAssertEqual(joiner.counts.wakes, 1)
        guard case .ready(.success(let output)) = pollJoin(&handle, waker) else { return XCTFail("no output") }
        XCTAssertEqual(output.value, 7)
        _ = consume handle
        XCTAssertEqual(joiner.counts.drops, 1, "the stored clone is dropped by the handle")
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testReplacingTheJoinWakerDropsTheOldOneAndWakesTheNew() {
        let runtime = TestRuntime(), log = runtime.log, gate = Gate()
        var handle = runtime.spawn(GatedFuture(gate, log))
        runtime.runAll()
        let first = CountingWaker(), second = CountingWaker()
        _ = pollJoin(&handle, first.makeWaker())
        _ = pollJoin(&handle, second.makeWaker())
        XCTAssertEqual(first.counts.drops, 2, "its clone was replaced; the original was ours")
        gate.open()
        runtime.runAll()
        XCTAssertEqual(first.counts.wakes, 0)
        XCTAssertEqual(second.counts.wakes, 1)
        _ = consume handle
        XCTAssertEqual(second.counts.drops, 2)
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testDroppingTheHandleWithAStoredWakerDropsTheWaker() {
        let runtime = TestRuntime(), log = runtime.log, gate = Gate()
        var handle = runtime.spawn(GatedFuture(gate, log))
        runtime.runAll()
        let joiner = CountingWaker()
        _ = pollJoin(&handle, joiner.makeWaker())
        _ = consume handle
        XCTAssertEqual(joiner.counts.drops, 2)
        gate.open()
        runtime.runAll()
        XCTAssertEqual(joiner.counts.wakes, 0, "nobody is joining any more")
        XCTAssertEqual(log.count(.outputDrops), 1)
        XCTAssertEqual(log.count(.deallocs), 1)
    }

    func testJoiningAfterCompletionNeedsNoWaker() {
        let runtime = TestRuntime(), log = runtime.log
        var handle = runtime.spawn(CountingReady(log: log, value: 1))
        runtime.runAll()
        let joiner = CountingWaker()
        guard case .ready(.success) = pollJoin(&handle, joiner.makeWaker()) else { return XCTFail("no output") }
        XCTAssertEqual(joiner.counts.clones, 0)
        _ = consume handle
        XCTAssertEqual(log.count(.deallocs), 1)
        XCTAssertEqual(log.count(.outputDrops), 1)
    }

    func testJoinHandleIsAFutureOnTheLocalExecutor() {
        let executor = LocalExecutor()
        let inner = executor.spawn(ready(20))
        let outer = executor.spawn(inner.map { result in (try? result.get()).map { $0 + 1 } })
        let value = executor.blockOn(outer)
        XCTAssertEqual(try value.get(), 21)
    }

    func testFlattenedReportsAThrownErrorAsAJoinError() {
        struct Boom: Error {}
        let executor = LocalExecutor()
        let failing = executor.spawn(ready(Result<Int, any Error>.failure(Boom())))
        let result = executor.blockOn(failing.flattened())
        guard case .failure(let error) = result else { return XCTFail("expected a failure") }
        XCTAssertFalse(error.isCancelled)
        XCTAssertTrue(error.underlyingError is Boom)
        let succeeding = executor.spawn(ready(Result<Int, any Error>.success(4)))
        let value = executor.blockOn(succeeding.flattened())
        XCTAssertEqual(try value.get(), 4)
    }
}

extension Poll where Output: Copyable {
    var readyValueOrNil: Output? {
        if case .ready(let value) = self { return value }
        return nil
    }
}
