import Coil
import XCTest

/// Single-thread semantics of the unbounded queue, across block boundaries.
final class UnboundedMPMCQueueTests: XCTestCase {
    func testFIFOAcrossManyBlocks() throws {
        let queue = try UnboundedMPMCQueue<Int>()
        XCTAssertNil(queue.tryPop())
        for value in 0..<10_000 { queue.push(value) }
        XCTAssertEqual(queue.countApproximately, 10_000)
        for value in 0..<10_000 { XCTAssertEqual(queue.tryPop(), value) }
        XCTAssertNil(queue.tryPop())
        XCTAssertEqual(queue.countApproximately, 0)
        XCTAssertGreaterThanOrEqual(queue.blocksAllocated, 10_000 / 63)
    }

    func testCountIsExactWhenQuiet() throws {
        let queue = try UnboundedMPMCQueue<UInt64>()
        for n in 1...200 {
            queue.push(UInt64(n))
            XCTAssertEqual(queue.countApproximately, n)
        }
        for n in stride(from: 199, through: 0, by: -1) {
            XCTAssertNotNil(queue.tryPop())
            XCTAssertEqual(queue.countApproximately, n)
        }
    }

    func testSteadyStateAllocatesNoBlocks() throws {
        let queue = try UnboundedMPMCQueue<Int>()
        // Keep about 100 items in flight (two blocks' worth) and churn through many blocks.
        for value in 0..<100 { queue.push(value) }
        let warm = queue.blocksAllocated
        var next = 100, expected = 0
        for _ in 0..<100_000 {
            queue.push(next); next += 1
            XCTAssertEqual(queue.tryPop(), expected); expected += 1
        }
        // 100,000 items crossed ~1,600 blocks; emptied blocks were reused instead of allocated.
        XCTAssertLessThanOrEqual(queue.blocksAllocated - warm, 2)
    }

    func testGrowShrinkGrow() throws {
        let queue = try UnboundedMPMCQueue<Int>()
        var next = 0, expected = 0
        for round in 1...20 {
            for _ in 0..<(round * 37) { queue.push(next); next += 1 }
            for _ in 0..<(round * 29) { XCTAssertEqual(queue.tryPop(), expected); expected += 1 }
        }
        while let value = queue.tryPop() { XCTAssertEqual(value, expected); expected += 1 }
        XCTAssertEqual(expected, next)
    }
}

/// Many threads on the unbounded queue: every item exactly once, per-producer order.
final class UnboundedMPMCQueueStressTests: XCTestCase {
    func stress(producers: Int, consumers: Int, perProducer: Int) throws {
        let queue = try UnboundedMPMCQueue<UInt64>()
        MPMCQueueStressTests.verifyExactlyOnce(
            producers: producers, consumers: consumers, perProducer: perProducer,
            push: { queue.push($0) }, pop: { queue.tryPop() })
        XCTAssertNil(queue.tryPop())
    }

    func test4Producers4Consumers() throws { try stress(producers: 4, consumers: 4, perProducer: 30_000) }
    func test1Producer6Consumers() throws { try stress(producers: 1, consumers: 6, perProducer: 60_000) }
    func test6Producers1Consumer() throws { try stress(producers: 6, consumers: 1, perProducer: 20_000) }
}
