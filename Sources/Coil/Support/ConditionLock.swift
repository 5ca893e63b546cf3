#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value behind a pthread mutex, with a condition variable to wait on while holding it.
///
/// Coil's runtime uses pthread primitives rather than `Synchronization.Mutex` for the same reason
/// CoilCore's `LockedValue` does: ThreadSanitizer sees pthread locks and not `Mutex`, and the
/// concurrency tests run under TSan.
final class ConditionLock<Value: ~Copyable>: @unchecked Sendable {
    // SAFETY: `value` is only touched with `mutex` held; the pthread objects live in their own
    // allocations because they must not move.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: consuming Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<R: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Holding the lock, waits until `ready` holds or `deadline` (monotonic nanoseconds) passes,
    /// then runs `body`. `ready` and `body` run with the lock held.
    func wait<R>(until ready: (inout Value) -> Bool, deadline: UInt64? = nil, _ body: (inout Value, _ timedOut: Bool) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !ready(&value) {
            if let deadline {
                if MonotonicTime.nanoseconds() >= deadline { return body(&value, true) }
                var spec = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                pthread_cond_timedwait(condition, mutex, &spec)
            } else {
                pthread_cond_wait(condition, mutex)
            }
        }
        return body(&value, false)
    }

    func signal() { pthread_cond_signal(condition) }
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// CLOCK_MONOTONIC, the clock behind the runtime's timers and condition waits.
enum MonotonicTime {
    @inline(__always)
    static func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return UInt64.max / 2 }
        return whole &+ UInt64(attoseconds / 1_000_000_000)
    }
}
