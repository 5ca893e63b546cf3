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

    init() {
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
        if state.compareExchange(expected: Self.notified, desired: Self.empty, ordering: .acquiring).exchanged {
            return
        }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard state.compareExchange(expected: Self.empty, desired: Self.parked, ordering: .relaxed).exchanged else {
            // A token arrived between the two checks.
            state.store(Self.empty, ordering: .relaxed)
            _ = state.load(ordering: .acquiring)
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

/// The waker `blockOn` gives its future: waking sets `woken` and unparks the thread.
final class BlockOnSignal: @unchecked Sendable {
    let parker: ThreadParker
    let woken = Atomic<Bool>(true)  // poll once at the start

    init(parker: ThreadParker) { self.parker = parker }

    func wake() {
        woken.store(true, ordering: .releasing)
        parker.unpark()
    }

    /// A waker owning one retain of this signal.
    func makeWaker() -> Waker {
        Waker(unsafeRaw: RawWaker(data: UnsafeRawPointer(Unmanaged.passRetained(self).toOpaque()),
                                  vtable: blockOnWakerVTable))
    }

    static func from(_ data: UnsafeRawPointer?) -> Unmanaged<BlockOnSignal> {
        Unmanaged.fromOpaque(data!)
    }
}

nonisolated(unsafe) let blockOnWakerVTable: UnsafePointer<WakerVTable> = WakerVTable.makeStatic(
    WakerVTable(
        clone: { data in
            _ = BlockOnSignal.from(data).retain()
            return data
        },
        wake: { data in
            let signal = BlockOnSignal.from(data)
            signal.takeUnretainedValue().wake()
            signal.release()
        },
        wakeByRef: { data in BlockOnSignal.from(data).takeUnretainedValue().wake() },
        drop: { data in BlockOnSignal.from(data).release() }))

/// Runs `future` to completion on the calling thread, sleeping while it is pending until its waker
/// is woken (from any thread).
///
/// ```swift
/// let (a, b) = blockOn(join(ready(1), ready(2)))
/// ```
public func blockOn<F: Future & ~Copyable>(_ future: consuming F) -> F.Output {
    let signal = BlockOnSignal(parker: ThreadParker())
    var future = future
    var context = Context(waker: signal.makeWaker())
    while true {
        if signal.woken.exchange(false, ordering: .acquiring), case .ready(let value) = future.poll(&context) {
            return value
        }
        if !signal.woken.load(ordering: .acquiring) { signal.parker.park() }
    }
}
