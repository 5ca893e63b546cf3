import Coil
import XCTest

/// A completion queue far too small for what is in flight: the kernel keeps the overflow and
/// reaping flushes it, so no completion is lost.
final class RingOverflowTests: XCTestCase {
    func testTinyCompletionQueueLosesNothing() throws {
        let ring = try IORing(entries: 4, completionEntries: 4)
        XCTAssertEqual(ring.completionEntries, 4)
        // 64 NOPs, submitted 4 at a time with no reaping in between: 60 of them overflow.
        for index in 0..<64 {
            try ring.prepareNop(userData: UInt64(index))
            if ring.pendingSubmissions == 4 { try ring.submit() }
        }
        try ring.submit()
        var seen: [UInt64] = []
        try ring.forEachCompletion { seen.append($0.userData) }
        XCTAssertEqual(seen.count, 64)
        XCTAssertEqual(Set(seen), Set(0..<64))
        XCTAssertGreaterThan(ring.overflowFlushCount, 0, "the overflow path was exercised")
    }

    func testOverflowWhileWaiting() throws {
        let ring = try IORing(entries: 8, completionEntries: 8)
        for round in 0..<10 {
            for index in 0..<8 { try ring.prepareNop(userData: UInt64(round * 8 + index)) }
            try ring.submit()
        }
        let completions = try ring.collect(80)
        XCTAssertEqual(Set(completions.map(\.userData)), Set(0..<80))
    }
}
