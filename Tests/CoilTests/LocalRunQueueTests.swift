import CCoil
import CoilTestSupport
import Synchronization
import XCTest

/// The C local run queue (coil_localq): owner push/pop, overflow of half, steal of half.
final class LocalRunQueueTests: XCTestCase {
    func testPushPopIsFIFOAndFullOverflowsHalfPlusTheNewWord() throws {
        let queue = try XCTUnwrap(coil_localq_create(4))
        defer { coil_localq_destroy(queue) }
        var overflow = [UInt64](repeating: 0, count: 3)
        for word in 1...4 as ClosedRange<UInt64> { XCTAssertEqual(coil_localq_push(queue, word, &overflow), 0) }
        XCTAssertEqual(coil_localq_len(queue), 4)
        XCTAssertEqual(coil_localq_push(queue, 5, &overflow), 3, "half the ring plus the word")
        XCTAssertEqual(overflow, [1, 2, 5])
        var word: UInt64 = 0
        var popped: [UInt64] = []
        while coil_localq_pop(queue, &word) { popped.append(word) }
        XCTAssertEqual(popped, [3, 4])
        XCTAssertNil(coil_localq_create(0))
        XCTAssertNil(coil_localq_create(1 << 17))
    }

    func testStealTakesHalfAndReturnsOne() throws {
        let source = try XCTUnwrap(coil_localq_create(8))
        let thief = try XCTUnwrap(coil_localq_create(8))
        defer {
            coil_localq_destroy(source)
            coil_localq_destroy(thief)
        }
        var overflow = [UInt64](repeating: 0, count: 5)
        for word in 1...6 as ClosedRange<UInt64> { _ = coil_localq_push(source, word, &overflow) }
        var got: UInt64 = 0
        XCTAssertTrue(coil_localq_steal_into(source, thief, &got))
        XCTAssertEqual(got, 3, "three stolen (1, 2, 3): the last is returned")
        XCTAssertEqual(coil_localq_len(thief), 2)
        XCTAssertEqual(coil_localq_len(source), 3)
        let empty = try XCTUnwrap(coil_localq_create(8))
        defer { coil_localq_destroy(empty) }
        XCTAssertFalse(coil_localq_steal_into(empty, thief, &got))
    }

    /// The owner pushes and pops through a ring of 4 while three stealers steal into their own
    /// queues: every word is taken exactly once (owner, overflow or a stealer).
    func testStressStealersAndOwnerTakeEveryWordOnce() throws {
        let total = 200_000 * stressScale
        let source = SendableBox(try XCTUnwrap(coil_localq_create(4)))
        let seen = SendableBox(UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: total + 1))
        for i in 0...total { (seen.value + i).initialize(to: Atomic(0)) }
        defer {
            seen.value.deallocate()
            coil_localq_destroy(source.value)
        }
        let done = SendableBox(UnsafeMutablePointer<Atomic<Bool>>.allocate(capacity: 1))
        done.value.initialize(to: Atomic(false))
        defer { done.value.deallocate() }
        @Sendable func mark(_ word: UInt64) { seen.value[Int(word)].add(1, ordering: .relaxed) }
        runThreads(4) { index in
            if index == 0 {
                var overflow = [UInt64](repeating: 0, count: 3)
                var word: UInt64 = 0
                for next in 1...UInt64(total) {
                    let spilled = coil_localq_push(source.value, next, &overflow)
                    for i in 0..<Int(spilled) { mark(overflow[i]) }
                    if next % 3 == 0, coil_localq_pop(source.value, &word) { mark(word) }
                }
                while coil_localq_pop(source.value, &word) { mark(word) }
                done.value.pointee.store(true, ordering: .releasing)
            } else {
                let mine = coil_localq_create(4)!
                defer { coil_localq_destroy(mine) }
                var word: UInt64 = 0
                while !done.value.pointee.load(ordering: .acquiring) || !coil_localq_is_empty(source.value) {
                    if coil_localq_steal_into(source.value, mine, &word) {
                        mark(word)
                        while coil_localq_pop(mine, &word) { mark(word) }
                    }
                }
            }
        }
        var wrong = 0
        for i in 1...total where seen.value[i].load(ordering: .relaxed) != 1 { wrong += 1 }
        XCTAssertEqual(wrong, 0, "words taken other than exactly once")
    }
}
