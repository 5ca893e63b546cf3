import Coil
import Synchronization
import CoilTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Waking a ring that waits: from a thread with no ring (eventfd), and from another ring (MSG_RING).
final class RingWakeTests: XCTestCase {
    func testEventfdWakeFromAnotherThreadEndsAWait() throws {
        let ring = try IORing(entries: 8)
        try ring.enableWaker()
        let waker = ring.waker
        let published = Atomic<Int>(0)
        for round in 1...50 {
            let wakerThread = startThreads(1) { _ in
                usleep(500)
                published.store(round, ordering: .releasing) // the work, then the wake
                try! waker.wake()
            }
            // Nothing else is in flight: only the wake can end this wait before its 5 s limit.
            while published.load(ordering: .acquiring) != round {
                XCTAssertTrue(try ring.submitAndWait(minimumCompletions: 1, timeout: .seconds(5)), "woken, not timed out")
                XCTAssertEqual(try ring.forEachCompletion { _ in XCTFail("wake-ups are absorbed") }, 0)
            }
            wakerThread.join()
        }
        XCTAssertGreaterThanOrEqual(ring.wakeupCount, 1)
    }

    func testManyConcurrentWakesAreNeverLost() throws {
        // Each waker publishes an item and wakes; the ring thread must see all of them.
        let ring = try IORing(entries: 8)
        try ring.enableWaker()
        let waker = ring.waker
        let work = try UnboundedMPMCQueue<Int>()
        let total = 4 * 2_500
        var seen = 0
        let wakers = startThreads(4) { _ in
            for item in 0..<2_500 {
                work.push(item) // publish, then wake
                try! waker.wake()
            }
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while seen < total && clock.now < deadline {
            while work.tryPop() != nil { seen += 1 }
            if seen == total { break }
            _ = try ring.submitAndWait(minimumCompletions: 1, timeout: .milliseconds(100))
            try ring.forEachCompletion { _ in }
        }
        wakers.join()
        XCTAssertEqual(seen, total)
    }

    func testMessageRingWakesAndCarriesData() throws {
        // Two rings, each on its own thread: the sender posts a completion into the receiver.
        let receiverFD = Atomic<Int32>(-1)
        let received = Atomic<Int>(0)
        runThreads(2) { index in
            if index == 0 {
                let ring = try! IORing(entries: 8)
                receiverFD.store(ring.fileDescriptor, ordering: .releasing)
                var results: [IOCompletion] = []
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(5)
                while results.count < 3 && clock.now < deadline {
                    _ = try! ring.submitAndWait(minimumCompletions: 1, timeout: .seconds(1))
                    try! ring.forEachCompletion { results.append($0) }
                }
                if results.map(\.userData) == [100, 101, 102] && results.map(\.result) == [7, 8, 9] {
                    received.store(results.count, ordering: .releasing)
                }
            } else {
                while receiverFD.load(ordering: .acquiring) < 0 { sched_yield() }
                let ring = try! IORing(entries: 8)
                for index in 0..<3 {
                    usleep(1000)
                    try! ring.prepareMessage(to: receiverFD.load(ordering: .acquiring), result: Int32(7 + index),
                                             targetUserData: UInt64(100 + index), skipOwnCompletion: false, userData: 1)
                    try! ring.submitAndWait(minimumCompletions: 1, timeout: .seconds(5))
                    try! ring.forEachCompletion { precondition($0.result == 0, "msg_ring failed: \($0.result)") }
                }
            }
        }
        XCTAssertEqual(received.load(ordering: .acquiring), 3)
    }

    func testMessageRingWakeIsAbsorbed() throws {
        let woken = Atomic<Int>(0)
        let targetFD = Atomic<Int32>(-1)
        runThreads(2) { index in
            if index == 0 {
                let ring = try! IORing(entries: 8)
                targetFD.store(ring.fileDescriptor, ordering: .releasing)
                // Nothing else is in flight: only the MSG_RING wake can end this wait in time.
                if try! ring.submitAndWait(minimumCompletions: 1, timeout: .seconds(5)) {
                    let reported = try! ring.forEachCompletion { _ in }
                    if reported == 0 && ring.wakeupCount == 1 { woken.store(1, ordering: .releasing) }
                }
            } else {
                while targetFD.load(ordering: .acquiring) < 0 { sched_yield() }
                usleep(2000)
                let ring = try! IORing(entries: 8)
                try! ring.prepareWake(ringFD: targetFD.load(ordering: .acquiring))
                try! ring.submit()
                // Its own completion is skipped on success: nothing to reap.
                usleep(1000)
                precondition(try! ring.forEachCompletion { _ in } == 0)
            }
        }
        XCTAssertEqual(woken.load(ordering: .acquiring), 1)
    }
}
