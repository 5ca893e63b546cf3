#if canImport(Glibc)
import Glibc
#endif

/// A one-shot latch a plain thread can wait on (for handing results out of Swift tasks).
public final class BlockingLatch: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var released = false

    public init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    public func release() {
        pthread_mutex_lock(&mutex)
        released = true
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    public func wait() {
        pthread_mutex_lock(&mutex)
        while !released { pthread_cond_wait(&condition, &mutex) }
        pthread_mutex_unlock(&mutex)
    }
}

/// A value set by one thread and read by another after a latch.
public final class ResultBox: @unchecked Sendable {
    private var value: Duration = .zero
    public init() {}
    public func set(_ value: Duration) { self.value = value }
    public func get() -> Duration { value }
}
