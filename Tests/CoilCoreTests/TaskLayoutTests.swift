@testable import CoilCore
import XCTest

final class TaskLayoutTests: XCTestCase {
    func testHeaderIsAtMostSixtyFourBytes() {
        XCTAssertLessThanOrEqual(MemoryLayout<TaskHeader>.size, 64)
        XCTAssertEqual(MemoryLayout<TaskHeader>.size, 48)
    }

    func testATrivialTaskIsAtMost128Bytes() {
        // A ready Int on the LocalExecutor: header, scheduler reference, future/output union, waker.
        let size = TypedTaskOps<Ready<Int>, Int, LocalScheduler>.size
        XCTAssertLessThanOrEqual(size, 128)
        XCTAssertEqual(size, 88)  // 48 header + 8 scheduler + 1 tag (padded to 8) + 8 Int + 16 waker
    }

    func testTheFutureAndItsOutputShareStorage() {
        typealias Ops = TypedTaskOps<Ready<[Int]>, [Int], LocalScheduler>
        // One union, padded to the join waker's alignment.
        let union = max(MemoryLayout<Ready<[Int]>>.size, MemoryLayout<[Int]>.size)
        XCTAssertEqual(Ops.joinWakerOffset - Ops.stageOffset, Ops.roundUp(union, MemoryLayout<RawWaker?>.alignment))
        XCTAssertEqual(Ops.stageOffset % Ops.stageAlignment, 0)
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
}
