import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A lock for critical sections of a few loads and stores (the owned list's link updates, a
/// multishot operation's queue of completions): one compare-and-swap to take it, one plain
/// release store to give it back. A thread that finds it taken spins a little, then yields the
/// CPU between tries (the holder may have been preempted).
///
/// Why not a pthread mutex: once a process has started a second thread, glibc's mutex costs an
/// atomic read-modify-write on unlock as well as on lock, plus its calls, and spawn and
/// completion each take a shard lock. Why not `Synchronization.Mutex`: ThreadSanitizer does not
/// see it (see `LockedValue`); it sees this lock's atomics.
package struct SpinLock: ~Copyable {
    @usableFromInline let word = Atomic<UInt32>(0)

    package init() {}

    @inlinable
    package func lock() {
        if word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { return }
        lockContended()
    }

    @usableFromInline @inline(never)
    package func lockContended() {
        var tries = 0
        while true {
            if word.load(ordering: .relaxed) == 0,
               word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
                return
            }
            tries += 1
            if tries >= 32 { sched_yield() }
        }
    }

    @inlinable
    package func unlock() { word.store(0, ordering: .releasing) }
}
