import CoilCore

/// A parked future of one of the sync primitives: its waker and what it was granted. Touched only
/// under the primitive's lock.
final class SyncWaiter: @unchecked Sendable {
    // SAFETY: every field is read and written with the owning primitive's lock held.
    let needed: Int
    var granted = false
    /// Notify only: the grant came from `notifyWaiters`, so a dropped waiter does not pass it on.
    var broadcast = false
    var waker: RawWaker? = nil

    init(needed: Int = 1) { self.needed = needed }

    deinit { if let raw = waker { raw.vtable.pointee.drop(raw.data) } }

    /// Keeps a clone of `waker` (unless the stored one wakes the same task).
    func store(_ waker: borrowing Waker) {
        if let current = self.waker, current == waker.rawWaker { return }
        if let old = self.waker { old.vtable.pointee.drop(old.data) }
        self.waker = waker.clone().intoRaw()
    }

    /// Takes the waker out, to wake after the lock is released.
    func takeWaker() -> Waker? {
        guard let raw = waker else { return nil }
        waker = nil
        return Waker(unsafeRaw: raw)
    }
}

/// A FIFO of waiters (under the primitive's lock). Removal of a cancelled waiter is linear; the
/// queues are short in practice.
struct WaiterQueue {
    private var items: [SyncWaiter] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: SyncWaiter? { isEmpty ? nil : items[head] }

    mutating func append(_ waiter: SyncWaiter) { items.append(waiter) }

    mutating func popFirst() -> SyncWaiter? {
        guard !isEmpty else { return nil }
        let waiter = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return waiter
    }

    /// Removes `waiter` if queued; whether it was.
    mutating func remove(_ waiter: SyncWaiter) -> Bool {
        guard let index = items[head...].firstIndex(where: { $0 === waiter }) else { return false }
        items.remove(at: index)
        return true
    }

    mutating func removeAll() -> [SyncWaiter] {
        defer {
            items.removeAll()
            head = 0
        }
        return Array(items[head...])
    }
}

/// Wakers collected under a lock, woken after it is released (call `wakeAll` exactly once).
/// The first waker is kept inline, so the common case (one waiter released) allocates nothing.
struct WakeList {
    private var first: RawWaker? = nil
    private var rest: [RawWaker] = []

    mutating func add(_ waker: consuming Waker?) {
        guard let waker else { return }
        if first == nil { first = waker.intoRaw() } else { rest.append(waker.intoRaw()) }
    }

    func wakeAll() {
        if let first { Waker(unsafeRaw: first).wake() }
        for raw in rest { Waker(unsafeRaw: raw).wake() }
    }
}
