import CCoil
import Coil
import XCTest

/// Single-thread semantics of the bounded queue: FIFO, full, empty, capacity rounding, bad input.
final class MPMCQueueTests: XCTestCase {
    func testFIFOAndEmpty() throws {
        let queue = try MPMCQueue<Int>(capacity: 8)
        XCTAssertNil(queue.tryPop())
        for value in 1...8 { XCTAssertTrue(queue.tryPush(value)) }
        XCTAssertEqual(queue.countApproximately, 8)
        for value in 1...8 { XCTAssertEqual(queue.tryPop(), value) }
        XCTAssertNil(queue.tryPop())
        XCTAssertEqual(queue.countApproximately, 0)
    }

    func testFullSaysFullAndLosesNothing() throws {
        let queue = try MPMCQueue<UInt64>(capacity: 4)
        for value in 0..<4 { XCTAssertTrue(queue.tryPush(UInt64(value))) }
        XCTAssertFalse(queue.tryPush(99), "a full queue must refuse")
        XCTAssertEqual(queue.tryPop(), 0)
        XCTAssertTrue(queue.tryPush(4), "one pop frees one cell")
        XCTAssertFalse(queue.tryPush(100))
        XCTAssertEqual((0..<4).compactMap { _ in queue.tryPop() }, [1, 2, 3, 4])
    }

    func testWrapsAroundManyLaps() throws {
        for capacity in [2, 4, 16, 64] {
            let queue = try MPMCQueue<Int>(capacity: capacity)
            var next = 0, expected = 0
            for round in 0..<1000 {
                let burst = round % (capacity + 1)
                for _ in 0..<burst where queue.tryPush(next) { next += 1 }
                while let value = queue.tryPop() {
                    XCTAssertEqual(value, expected)
                    expected += 1
                }
            }
            XCTAssertEqual(next, expected)
            XCTAssertGreaterThan(next, capacity * 100)
        }
    }

    func testCapacityRoundsUpToPowerOfTwo() throws {
        XCTAssertEqual(try MPMCQueue<Int>(capacity: 1).capacity, 2)
        XCTAssertEqual(try MPMCQueue<Int>(capacity: 2).capacity, 2)
        XCTAssertEqual(try MPMCQueue<Int>(capacity: 3).capacity, 4)
        XCTAssertEqual(try MPMCQueue<Int>(capacity: 1000).capacity, 1024)
        XCTAssertEqual(try MPMCQueue<Int>(capacity: 65536).capacity, 65536)
        // The rounded capacity is the real one: exactly that many pushes succeed.
        let queue = try MPMCQueue<Int>(capacity: 5)
        var pushed = 0
        while queue.tryPush(pushed) { pushed += 1 }
        XCTAssertEqual(pushed, 8)
    }

    func testBadCapacityThrows() {
        XCTAssertThrowsError(try MPMCQueue<Int>(capacity: 0)) { XCTAssertEqual($0 as? QueueCreationError, .invalidCapacity(0)) }
        XCTAssertThrowsError(try MPMCQueue<Int>(capacity: -3)) { XCTAssertEqual($0 as? QueueCreationError, .invalidCapacity(-3)) }
        XCTAssertThrowsError(try MPMCQueue<Int>(capacity: 1 << 40)) { XCTAssertEqual($0 as? QueueCreationError, .invalidCapacity(1 << 40)) }
        XCTAssertNil(coil_mpmc_create(0), "the C API returns NULL on bad input")
        XCTAssertNil(coil_mpmc_create((1 << 32) + 1))
    }

    func testCarriesSmallTrivialValues() throws {
        struct Pair: Equatable { var a: UInt16; var b: Int32 }
        let pairs = try MPMCQueue<Pair>(capacity: 4)
        XCTAssertTrue(pairs.tryPush(Pair(a: 7, b: -9)))
        XCTAssertEqual(pairs.tryPop(), Pair(a: 7, b: -9))

        let bytes = try MPMCQueue<Int8>(capacity: 4)
        XCTAssertTrue(bytes.tryPush(-1))
        XCTAssertEqual(bytes.tryPop(), -1)

        final class Payload { let id: Int; init(_ id: Int) { self.id = id } }
        weak var watcher: Payload?
        let objects = try MPMCQueue<Unmanaged<Payload>>(capacity: 4)
        do {
            let payload = Payload(42)
            watcher = payload
            XCTAssertTrue(objects.tryPush(.passRetained(payload)))
        }
        XCTAssertNotNil(watcher, "the queue's retained reference keeps it alive")
        XCTAssertEqual(objects.tryPop()?.takeRetainedValue().id, 42)
        XCTAssertNil(watcher, "taking the retained value back releases it exactly once")
    }
}
