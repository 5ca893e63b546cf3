import Coil
import XCTest

/// IOBuffer's data window and BufferPool's reuse.
final class IOBufferTests: XCTestCase {
    func testAppendRemoveFirstAndClear() {
        let buffer = IOBuffer(capacity: 8)
        XCTAssertTrue(buffer.isEmpty)
        buffer.append([1, 2, 3, 4, 5])
        XCTAssertEqual(buffer.count, 5)
        XCTAssertEqual(buffer.freeCapacity, 3)
        buffer.removeFirst(2)
        XCTAssertEqual(buffer.bytes, [3, 4, 5])
        buffer.append([6, 7, 8, 9, 10])
        XCTAssertEqual(buffer.bytes, [3, 4, 5, 6, 7, 8, 9, 10])
        XCTAssertEqual(buffer.freeCapacity, 0)
        buffer.clear()
        XCTAssertEqual(buffer.count, 0)
        XCTAssertEqual(buffer.capacity, 8)
        XCTAssertEqual(IOBuffer(string: "héllo").string, "héllo")
    }

    func testPoolReusesClearedBuffersOfItsSizeOnly() {
        let pool = BufferPool(bufferSize: 64, maxPooled: 2)
        let first = pool.take()
        first.append([1, 2, 3])
        pool.give(first)
        XCTAssertEqual(pool.pooledCount, 1)
        let again = pool.take()
        XCTAssertTrue(again === first)
        XCTAssertEqual(again.count, 0)
        pool.give(IOBuffer(capacity: 32))          // another size: dropped
        XCTAssertEqual(pool.pooledCount, 0)
        for _ in 0..<3 { pool.give(IOBuffer(capacity: 64)) }
        XCTAssertEqual(pool.pooledCount, 2)        // the cap holds
    }
}
