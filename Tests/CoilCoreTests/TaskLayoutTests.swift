@testable import CoilCore
import XCTest

final class TaskLayoutTests: XCTestCase {
    func testHeaderIsAtMostSixtyFourBytes() {
        XCTAssertLessThanOrEqual(MemoryLayout<TaskHeader>.size, 64)
        XCTAssertEqual(MemoryLayout<TaskHeader>.size, 48)
    }

    func testATrivialTaskIsAtMost128Bytes() {
        // A ready Int on the LocalExecutor: header, scheduler reference, future/output union, waker.
        let size = TypedTaskOps<Ready<Int>, LocalScheduler>.size
        XCTAssertLessThanOrEqual(size, 128)
        XCTAssertEqual(size, 96)
    }

    func testTheFutureAndItsOutputShareStorage() {
        typealias Ops = TypedTaskOps<Ready<[Int]>, LocalScheduler>
        XCTAssertEqual(Ops.joinWakerOffset - Ops.stageOffset,
                       max(MemoryLayout<Ready<[Int]>>.size, MemoryLayout<[Int]>.size))
        XCTAssertEqual(Ops.stageOffset % Ops.stageAlignment, 0)
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
