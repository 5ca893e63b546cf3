import CoilCore

/// Wakes tasks without passing data (Tokio's `Notify`).
///
/// `notifyOne()` wakes the longest-waiting `notified()` future, or, if none waits, stores one
/// permit that the next `notified()` consumes at once (permits do not accumulate).
/// `notifyWaiters()` wakes every future waiting now and stores nothing. A `notified()` future
/// waits from its first poll; one that is dropped after `notifyOne` chose it passes the
/// notification on to the next waiter, so it is never lost.
public final class Notify: @unchecked Sendable {
    // SAFETY: all state is behind the lock.
    struct State {
        var permit = false
        var waiters = WaiterQueue()
    }

    let state = ConditionLock(State())

    public init() {}

    public func notifyOne() {
        var wakes = WakeList()
        state.withLock { Self.notifyOne(&$0, &wakes) }
        wakes.wakeAll()
    }

    static func notifyOne(_ state: inout State, _ wakes: inout WakeList) {
        if let waiter = state.waiters.popFirst() {
            waiter.granted = true
            wakes.add(waiter.takeWaker())
        } else {
            state.permit = true
        }
    }

    public func notifyWaiters() {
        var wakes = WakeList()
        state.withLock { state in
            for waiter in state.waiters.removeAll() {
                waiter.granted = true
                waiter.broadcast = true
                wakes.add(waiter.takeWaker())
            }
        }
        wakes.wakeAll()
    }

    /// A future that completes at the next notification (or at once with a stored permit).
    public func notified() -> Notified { Notified(notify: self) }

    /// The future of `notified()`.
    public struct Notified: ~Copyable, Future {
        let notify: Notify
        var waiter: SyncWaiter? = nil
        var done = false

        public mutating func poll(_ context: inout Context) -> Poll<Void> {
            guard Coop.proceed(&context) else { return .pending }
            let ready: Bool = notify.state.withLock { [waiter] state in
                if let waiter {
                    if waiter.granted { return true }
                    waiter.store(context.waker)
                    return false
                }
                if state.permit {
                    state.permit = false
                    return true
                }
                let waiter = SyncWaiter(needed: 1)
                waiter.store(context.waker)
                state.waiters.append(waiter)
                self.waiter = waiter
                return false
            }
            if ready { done = true }
            return ready ? .ready(()) : .pending
        }

        deinit {
            guard !done, let waiter else { return }
            var wakes = WakeList()
            notify.state.withLock { state in
                if !state.waiters.remove(waiter) && waiter.granted && !waiter.broadcast {
                    // Chosen by notifyOne but never observed: hand the notification on.
                    Notify.notifyOne(&state, &wakes)
                }
            }
            wakes.wakeAll()
        }
    }
}
