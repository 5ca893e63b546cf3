#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value behind a pthread mutex.
///
/// Why not `Synchronization.Mutex`: ThreadSanitizer cannot see its synchronisation (the lock is
/// implemented in an uninstrumented library), so every access it protects is reported as a race,
/// which would make `swift test --sanitize=thread` useless for the code that uses it. pthread
/// mutexes are intercepted by TSan. Only spawn, completion, shutdown and run queues of the test
/// executors take these locks; none is on the wake or poll path of the task itself.
package final class LockedValue<Value: ~Copyable>: @unchecked Sendable {
    // SAFETY: `value` is only touched while `mutex` is held; the mutex has its own allocation
    // because a pthread mutex must not move.
    // The value lives behind a pointer rather than in a stored `var`, so that a locked access is
    // not also a dynamically checked exclusive access (the lock already makes it exclusive).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let value = UnsafeMutablePointer<Value>.allocate(capacity: 1)

    package init(_ value: consuming Value) {
        self.value.initialize(to: value)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    package func withLock<Result: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
