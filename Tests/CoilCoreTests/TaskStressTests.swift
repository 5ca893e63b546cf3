@testable import CoilCore
import CoilTestSupport
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Real threads racing wake, spurious wake, abort, join and drop on thousands of tasks while one
/// thread polls them. Afterwards every task must have been deallocated exactly once, every future
/// dropped once, and every output that was made dropped once. Run it under ThreadSanitizer too.
final class TaskStressTests: XCTestCase {
    final class Handles: @unchecked Sendable {
        // SAFETY: slot i is touched only by the joiner thread until the threads are joined.
        let slots: UnsafeMutablePointer<JoinHandle<TrackedOutput>?>
        let count: Int
        init(count: Int) {
            self.count = count
            slots = .allocate(capacity: count)
            for index in 0..<count { (slots + index).initialize(to: nil) }
        }
        deinit {
            slots.deinitialize(count: count)
            slots.deallocate()
        }
    }

    func testWakeAbortJoinAndDropRaceOnThousandsOfTasks() {
        let taskCount = 2_000 * stressScale
        let runtime = TestRuntime(), log = runtime.log
        let gates = (0..<taskCount).map { _ in Gate() }
        let handles = Handles(count: taskCount)
        var aborts: [AbortHandle] = []
        for index in 0..<taskCount {
            let handle = runtime.spawn(GatedFuture(gates[index], log, value: index))
            if index % 3 == 0 || index % 4 == 0 { aborts.append(handle.makeAbortHandle()) }
            handles.slots[index] = consume handle
        }
        let abortHandles = aborts
        let stop = Atomic<Bool>(false)
        let joined = Atomic<Int>(0), cancelled = Atomic<Int>(0)

        let executor = startThreads(1) { _ in
            while !stop.load(ordering: .acquiring) {
                if runtime.runAll() == 0 { sched_yield() }
            }
        }
        runThreads(4) { role in
            switch role {
            case 0:  // opener: wakes by value; every fourth task is left to the aborter
                for index in 0..<taskCount where index % 4 != 0 { gates[index].open() }
            case 1:  // spurious waker: clones whatever waker a gate holds and wakes it by reference
                for _ in 0..<2 {
                    for gate in gates {
                        let waker = gate.state.withLock { $0.waker?.clone() }
                        waker?.wakeByRef()
                    }
                }
            case 2:  // aborter: every fourth task (never opened) and every third (racing the opener)
                for handle in abortHandles.reversed() { handle.abort() }
            default:  // joiner: joins two of three tasks, drops the third after one poll
                let joiner = CountingWaker()
                let waker = joiner.makeWaker()
                for index in 0..<taskCount {
                    var handle = handles.slots[index].take()!
                    if index % 3 == 2 {
                        _ = pollJoin(&handle, waker)
                        continue  // dropped here, racing with completion
                    }
                    joining: while true {
                        switch pollJoin(&handle, waker) {
                        case .pending:
                            sched_yield()
                        case .ready(.success(let output)):
                            precondition(output.value == index)
                            joined.add(1, ordering: .relaxed)
                            break joining
                        case .ready(.failure(let error)):
                            precondition(error.isCancelled && error.id == handle.id)
                            cancelled.add(1, ordering: .relaxed)
                            break joining
                        }
                    }
                }
            }
        }
        stop.store(true, ordering: .releasing)
        executor.join()
        runtime.runAll()
        XCTAssertEqual(runtime.shared.owned.count, 0, "every task finished")
        for gate in gates { gate.dropWaker() }  // the wakers the aborted futures left behind
        _ = consume abortHandles
        aborts.removeAll()
        runtime.shutdown()

        XCTAssertEqual(joined.load(ordering: .relaxed) + cancelled.load(ordering: .relaxed),
                       (0..<taskCount).filter { $0 % 3 != 2 }.count, "every joined task gave exactly one result")
        XCTAssertEqual(log.count(.deallocs), taskCount, "every task freed exactly once")
        XCTAssertEqual(log.count(.futureDrops), taskCount, "every future dropped exactly once")
        XCTAssertEqual(log.count(.outputDrops), log.count(.outputsMade), "every output dropped exactly once")
        XCTAssertGreaterThan(cancelled.load(ordering: .relaxed), 0)
        XCTAssertGreaterThan(joined.load(ordering: .relaxed), 0)
    }
}
