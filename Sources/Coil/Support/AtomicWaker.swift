import Synchronization

/// One waker slot that a single registrant (the future being polled) fills and any thread may
/// wake, without a lock: the usual `AtomicWaker` protocol.
///
/// States: `waiting` (idle), `registering` (the registrant is writing the slot), `waking` (a
/// waker is taking the slot). A wake that arrives while the registrant is writing sets `waking`;
/// the registrant sees it when it tries to go back to `waiting` and wakes the new waker itself,
/// so a wake is never lost between "register" and "check the condition again".
///
/// A state object that needs one waker slot inherits from it (`TimerEntry`), so
/// the slot lives in the same allocation as the state it guards; its methods are `final`.
@usableFromInline
class AtomicWaker: @unchecked Sendable {
    // SAFETY: `slot` is only touched by whoever moved `state` out of `waiting` (rule above).
    private static let waiting = 0, registering = 1, waking = 2
    private let state = Atomic<Int>(AtomicWaker.waiting)
    private var slot: RawWaker? = nil

    @usableFromInline init() {}

    deinit { if let raw = slot { raw.vtable.pointee.drop(raw.data) } }

    /// Stores a clone of `waker` (unless the stored one would wake the same task).
    @usableFromInline
    final func register(_ waker: borrowing Waker) {
        switch state.compareExchange(expected: Self.waiting, desired: Self.registering, ordering: .acquiring) {
        case (true, _):
            var old: RawWaker? = nil
            if let current = slot, current == waker.rawWaker {
                // same waker: keep it
            } else {
                old = slot
                slot = waker.clone().intoRaw()
            }
            let (exchanged, _) = state.compareExchange(expected: Self.registering, desired: Self.waiting, ordering: .acquiringAndReleasing)
            if !exchanged {
                // A wake came in while we were writing: it is ours to deliver.
                let taken = slot
                slot = nil
                state.store(Self.waiting, ordering: .releasing)
                if let taken { Waker(unsafeRaw: taken).wake() }
            }
            if let old { old.vtable.pointee.drop(old.data) }
        case (false, Self.waking):
            // Being woken right now: make sure this poller runs again.
            waker.wakeByRef()
        default:
            // Concurrent registration is a misuse; wake so that nothing hangs.
            waker.wakeByRef()
        }
    }

    /// Wakes and clears the stored waker, if any.
    @usableFromInline
    final func wake() {
        if let raw = take() { Waker(unsafeRaw: raw).wake() }
    }

    /// Takes the stored waker out (the caller wakes or drops it).
    final func take() -> RawWaker? {
        let previous = state.bitwiseOr(Self.waking, ordering: .acquiringAndReleasing).oldValue
        guard previous == Self.waiting else { return nil }  // the registrant will see `waking`
        let taken = slot
        slot = nil
        state.bitwiseAnd(~Self.waking, ordering: .releasing)
        return taken
    }
}
