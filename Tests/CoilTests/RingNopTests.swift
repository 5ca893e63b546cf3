import Coil
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// NOPs in batches: every one completes once with its user_data; a full SQ is submitted, not dropped.
final class RingNopTests: XCTestCase {
    func testBatchesOfNops() throws {
        let ring = try IORing(entries: 128)
        for batch in [1, 8, 32, 128] {
            for index in 0..<batch { try ring.prepareNop(userData: UInt64(index)) }
            XCTAssertEqual(ring.pendingSubmissions, batch)
            XCTAssertTrue(try ring.submitAndWait(minimumCompletions: batch, timeout: .seconds(5)))
            var seen: [UInt64] = []
            try ring.forEachCompletion { completion in
                XCTAssertEqual(completion.result, 0)
                seen.append(completion.userData)
            }
            XCTAssertEqual(seen.sorted(), (0..<UInt64(batch)).map { $0 })
        }
    }

    /// A NOP given a result completes with it (Linux 6.10 and later).
    func testNopCompletesWithTheResultItIsGiven() throws {
        try IOTestSupport.requireNopInjectResult()
        let ring = try IORing(entries: 8)
        try ring.prepareNop(result: -EPIPE, userData: 1)
        try ring.prepareNop(result: 7, userData: 2)
        let completions = try ring.collect(2)
        let results = Dictionary(uniqueKeysWithValues: completions.map { ($0.userData, $0.result) })
        XCTAssertEqual(results, [1: -EPIPE, 2: 7])
    }

    func testFullSubmissionQueueIsSubmittedNotDropped() throws {
        let ring = try IORing(entries: 8, completionEntries: 256)
        for index in 0..<100 { try ring.prepareNop(userData: UInt64(index)) }
        XCTAssertLessThanOrEqual(ring.pendingSubmissions, 8)
        let completions = try ring.collect(100)
        XCTAssertEqual(Set(completions.map(\.userData)), Set(0..<100))
    }

    func testReapIntoSmallBufferTakesOnlyWhatFits() throws {
        let ring = try IORing(entries: 16)
        for index in 0..<10 { try ring.prepareNop(userData: UInt64(index)) }
        try ring.submitAndWait(minimumCompletions: 10, timeout: .seconds(5))
        let buffer = UnsafeMutableBufferPointer<IOCompletion>.allocate(capacity: 4)
        defer { buffer.deallocate() }
        var all: [UInt64] = []
        while true {
            let count = try ring.reap(into: buffer)
            XCTAssertLessThanOrEqual(count, 4)
            all += buffer[0..<count].map(\.userData)
            if count == 0 { break }
        }
        XCTAssertEqual(all.sorted(), Array(0..<10))
    }

    func testWaitTimesOutWithNothingInFlight() throws {
        let ring = try IORing(entries: 8)
        let clock = ContinuousClock()
        let start = clock.now
        XCTAssertFalse(try ring.submitAndWait(minimumCompletions: 1, timeout: .milliseconds(20)))
        XCTAssertGreaterThanOrEqual(clock.now - start, .milliseconds(15))
    }
}
