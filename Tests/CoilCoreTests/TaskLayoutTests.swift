@testable import CoilCore
import Dispatch
import XCTest

final class TaskLayoutTests: XCTestCase {
    func testHeaderIsAtMostSixtyFourBytes() {
        XCTAssertLessThanOrEqual(MemoryLayout<TaskHeader>.size, 64)
        // Six words, the two layout offsets and the stage tag.
        XCTAssertEqual(MemoryLayout<TaskHeader>.size, 55)
        XCTAssertEqual(MemoryLayout<TaskHeader>.stride, 56)
    }

    func testATrivialTaskIsAtMost128Bytes() {
        // A ready Int on the LocalExecutor: header, scheduler reference, future/output union, waker.
        let size = TypedTaskOps<Ready<Int>, Int, LocalScheduler>.size
        XCTAssertLessThanOrEqual(size, 128)
        XCTAssertEqual(size, 88)  // 56 header (with the stage tag) + 8 scheduler + 8 Int + 16 waker
    }

    func testTheFutureAndItsOutputShareStorage() {
        typealias Ops = TypedTaskOps<Ready<[Int]>, [Int], LocalScheduler>
        // One union, padded to the join waker's alignment.
        let union = max(MemoryLayout<Ready<[Int]>>.size, MemoryLayout<[Int]>.size)
        XCTAssertEqual(Ops.joinWakerOffset - Ops.stageOffset, Ops.roundUp(union, MemoryLayout<RawWaker?>.alignment))
        XCTAssertEqual(Ops.stageOffset % Ops.stageAlignment, 0)
    }

    /// The unspecialized task operations find the stage and the join waker through the offsets
    /// the header records: they must be the ones the typed layout computes, for small and large,
    /// plainly and over-aligned futures, and such tasks must run and join correctly.
    func testTheHeaderRecordsTheTypedOffsets() {
        struct Wide: Future {
            var lanes = SIMD64<UInt64>(repeating: 3)
            var padding = (SIMD64<UInt64>(), SIMD64<UInt64>(), SIMD64<UInt64>(), SIMD64<UInt64>())
            mutating func poll(_ context: inout Context) -> Poll<UInt64> { .ready(lanes.wrappedSum()) }
        }
        func check<F: Future>(_ future: F, _ expected: F.Output) where F.Output: Equatable {
            typealias Ops = TypedTaskOps<F, F.Output, LocalScheduler>
            let executor = LocalExecutor()
            let handle = executor.spawn(future)
            let header = handle.task.header
            XCTAssertEqual(Int(header.pointee.stageOffset), Ops.stageOffset, "\(F.self)")
            XCTAssertEqual(Int(header.pointee.joinWakerOffset), Ops.joinWakerOffset, "\(F.self)")
            XCTAssertEqual(Ops.stageOffset % MemoryLayout<F>.alignment, 0, "\(F.self)")
            let result = executor.blockOn(handle)
            XCTAssertEqual(try result.get(), expected, "\(F.self)")
        }
        check(ready(7), 7)
        check(ready("a string"), "a string")
        check(Wide(), 3 * 64)
        XCTAssertGreaterThan(MemoryLayout<Wide>.size, 2048)
        XCTAssertGreaterThan(MemoryLayout<Wide>.alignment, 8)
    }

    func testReadyIsLaidOutAsItsValue() {
        // Ready._pollStage turns the stage's future into its output without moving a byte.
        XCTAssertEqual(MemoryLayout<Ready<[Int]>>.size, MemoryLayout<[Int]>.size)
        XCTAssertEqual(MemoryLayout<Ready<(UInt8, Int)>>.size, MemoryLayout<(UInt8, Int)>.size)
        XCTAssertEqual(MemoryLayout<Ready<String>>.offset(of: \Ready<String>.value), 0)
        let executor = LocalExecutor()
        let output = executor.blockOn(executor.spawn(ready([1, 2, 3])))
        XCTAssertEqual(try output.get(), [1, 2, 3])
    }

    func testWakersAreTwoWords() {
        XCTAssertEqual(MemoryLayout<Waker>.size, 16)
        XCTAssertEqual(MemoryLayout<RawWaker?>.size, 16)
        XCTAssertEqual(MemoryLayout<Notified>.size, 8)
        XCTAssertEqual(MemoryLayout<JoinHandle<Int>>.size, 8)
    }

    func testTaskIDsAreUnique() {
        let executor = LocalExecutor()
        let a = executor.spawn(ready(1)), b = executor.spawn(ready(2))
        XCTAssertNotEqual(a.id, b.id)
    }

    /// IDs come from per-thread blocks: across threads, past block boundaries, none repeats and
    /// none is 0.
    func testTaskIDsAreUniqueAcrossThreadsAndBlocks() {
        let perThread = 3_000  // about three blocks each
        let ids = LockedValue<[UInt64]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let mine = (0..<perThread).map { _ in TaskID.next().rawValue }
            ids.withLock { $0 += mine }
        }
        let all = ids.withLock { $0 }
        XCTAssertEqual(all.count, 4 * perThread)
        XCTAssertEqual(Set(all).count, all.count, "no ID handed out twice")
        XCTAssertFalse(all.contains(0))
    }
}
