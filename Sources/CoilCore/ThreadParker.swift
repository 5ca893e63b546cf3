#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Blocks the calling thread until another thread unparks it; an unpark that comes first is not
/// lost (it makes the next `park()` return at once). This is the only piece of CoilCore that touches
/// an OS primitive, and only `blockOn` uses it.
///
/// States: empty (no token), parked (a thread waits on the condition), notified (a token is
/// waiting). `unpark` only takes the mutex when a thread is actually parked.
final class ThreadParker: @unchecked Sendable {
    // SAFETY: the pthread objects live in their own allocation (they must not move) and are only
    // used through pthread calls; `state` is atomic.
    private static let empty = 0, parked = 1, notified = 2

    private let state = Atomic<Int>(ThreadParker.empty)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// Times `park` yields the CPU (`sched_yield`), watching for an unpark, before it sleeps. An
    /// unpark that lands meanwhile is one exchange: no mutex, no signal, no sleep and wake-up.
    let spins: Int

    init(spins: Int = 0) {
        self.spins = spins
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func park() {
        for _ in 0..<spins {
            if state.load(ordering: .relaxed) == Self.notified { break }
            sched_yield()
        }
        if state.compareExchange(expected: Self.notified, desired: Self.empty, ordering: .acquiring).exchanged {
            return
        }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard state.compareExchange(expected: Self.empty, desired: Self.parked, ordering: .relaxed).exchanged else {
            // A token arrived between the two checks (only unpark sets it): consume it, acquiring
            // what the unparker published.
            _ = state.exchange(Self.empty, ordering: .acquiring)
            return
        }
        while true {
            pthread_cond_wait(condition, mutex)
            if state.compareExchange(expected: Self.notified, desired: Self.empty, ordering: .acquiring).exchanged {
                return
            }
            // Spurious wake-up: still parked.
        }
    }

    func unpark() {
        switch state.exchange(Self.notified, ordering: .releasing) {
        case Self.empty, Self.notified:
            return
        default:
            // Taking the mutex orders us after the parker's check-then-wait, so the signal is not lost.
            pthread_mutex_lock(mutex)
            pthread_mutex_unlock(mutex)
            pthread_cond_signal(condition)
        }
    }
}
