@testable import CoilCore
import CoilTestSupport
import XCTest

/// The owned list's lock: mutual exclusion under contention (more threads than cores, so holders
/// are preempted and waiters reach the yielding path), checked by a counter that only the lock
/// protects. Under ThreadSanitizer a missed acquire/release pairing is also reported as a race.
final class SpinLockTests: XCTestCase {
    func testContendedIncrementsAreNeverLost() {
        final class Guarded: @unchecked Sendable {
            // SAFETY: `count` and `inside` are touched only between lock() and unlock().
            let lock = UnsafeMutablePointer<SpinLock>.allocate(capacity: 1)
            var count = 0
            var inside = 0
            var overlaps = 0
            init() { lock.initialize(to: SpinLock()) }
            deinit { lock.deinitialize(count: 1); lock.deallocate() }
        }
        let guarded = Guarded()
        let threads = 6, rounds = 200_000 * stressScale
        runThreads(threads) { _ in
            for _ in 0..<rounds {
                guarded.lock.pointee.lock()
                guarded.inside += 1
                if guarded.inside != 1 { guarded.overlaps += 1 }
                guarded.count += 1
                guarded.inside -= 1
                guarded.lock.pointee.unlock()
            }
        }
        XCTAssertEqual(guarded.count, threads * rounds)
        XCTAssertEqual(guarded.overlaps, 0)
    }
}
