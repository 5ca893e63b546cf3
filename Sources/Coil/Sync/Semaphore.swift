import CoilCore

/// The error of an acquire on a closed semaphore.
public struct SemaphoreClosedError: Error, Equatable, CustomStringConvertible {
    public init() {}
    public var description: String { "semaphore closed" }
}

/// An async counting semaphore with FIFO fairness: permits go to waiters in the order they
/// started waiting, and a waiter for several permits holds up those behind it.
///
/// ```swift
/// let limit = Semaphore(permits: 8)
/// // in a task:
/// _ = try await limit.acquire().value()
/// defer { limit.release() }
/// ```
public final class Semaphore: @unchecked Sendable {
    // SAFETY: all state is behind `state`'s lock.
    struct State {
        var permits: Int
        var closed = false
        var waiters = WaiterQueue()
    }

    let state: ConditionLock<State>

    public init(permits: Int) {
        precondition(permits >= 0, "a semaphore needs a non-negative number of permits")
        state = ConditionLock(State(permits: permits))
    }

    /// Permits available now.
    public var availablePermits: Int { state.withLock { $0.permits } }
    /// Whether `close()` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// A future that completes when `permits` permits are taken (or fails once the semaphore is
    /// closed). Dropping it before it completes gives back anything it was granted.
    public func acquire(_ permits: Int = 1) -> Acquire {
        precondition(permits >= 0, "cannot acquire a negative number of permits")
        return Acquire(semaphore: self, permits: permits)
    }

    /// Takes `permits` permits if they are available and nobody is waiting ahead.
    public func tryAcquire(_ permits: Int = 1) -> Bool {
        state.withLock { state in
            guard !state.closed, state.waiters.isEmpty, state.permits >= permits else { return false }
            state.permits -= permits
            return true
        }
    }

    /// Gives back `permits` permits, waking the waiters they satisfy.
    public func release(_ permits: Int = 1) {
        var wakes = WakeList()
        state.withLock { state in
            state.permits += permits
            Self.grant(&state, &wakes)
        }
        wakes.wakeAll()
    }

    /// Fails every waiter and every later acquire; permits already held stay valid.
    public func close() {
        var wakes = WakeList()
        state.withLock { state in
            state.closed = true
            for waiter in state.waiters.removeAll() { wakes.add(waiter.takeWaker()) }
        }
        wakes.wakeAll()
    }

    static func grant(_ state: inout State, _ wakes: inout WakeList) {
        while let first = state.waiters.first, first.needed <= state.permits {
            state.permits -= first.needed
            first.granted = true
            _ = state.waiters.popFirst()
            wakes.add(first.takeWaker())
        }
    }

    /// The future of `acquire(_:)`.
    public struct Acquire: ~Copyable, Future {
        let semaphore: Semaphore
        let permits: Int
        var waiter: SyncWaiter? = nil
        var done = false

        public mutating func poll(_ context: inout Context) -> Poll<Result<Void, SemaphoreClosedError>> {
            guard Coop.proceed(&context) else { return .pending }
            let permits = self.permits
            let result: Poll<Result<Void, SemaphoreClosedError>> = semaphore.state.withLock { [waiter] state in
                if let waiter {
                    if waiter.granted { return .ready(.success(())) }
                    if state.closed { return .ready(.failure(SemaphoreClosedError())) }
                    waiter.store(context.waker)
                    return .pending
                }
                if state.closed { return .ready(.failure(SemaphoreClosedError())) }
                if state.waiters.isEmpty && state.permits >= permits {
                    state.permits -= permits
                    return .ready(.success(()))
                }
                let waiter = SyncWaiter(needed: permits)
                waiter.store(context.waker)
                state.waiters.append(waiter)
                self.waiter = waiter
                return .pending
            }
            if case .ready = result { done = true }
            return result
        }

        deinit {
            guard !done, let waiter else { return }
            var wakes = WakeList()
            semaphore.state.withLock { state in
                if waiter.granted {
                    state.permits += waiter.needed
                } else {
                    _ = state.waiters.remove(waiter)
                }
                // Leaving the queue (or handing back a grant) may let the next waiters through.
                Semaphore.grant(&state, &wakes)
            }
            wakes.wakeAll()
        }
    }
}

/// An async mutex: `lock()` completes when the lock is free (FIFO among waiters) and yields a
/// guard; the lock is held until `guard.unlock()`.
///
/// ```swift
/// let counter = AsyncMutex(0)
/// await counter.withLock { $0 += 1 }
/// ```
public final class AsyncMutex<Value>: @unchecked Sendable {
    // SAFETY: `value` is only touched by the holder of the one permit.
    let semaphore = Semaphore(permits: 1)
    var value: Value

    public init(_ value: Value) { self.value = value }

    /// A future of the lock's guard.
    public func lock() -> Map<Semaphore.Acquire, Guard> {
        semaphore.acquire().map { [self] _ in Guard(mutex: self) }
    }

    /// The guard if the lock is free now.
    public func tryLock() -> Guard? { semaphore.tryAcquire() ? Guard(mutex: self) : nil }

    /// Access to the protected value while the lock is held. Use it until `unlock()`, not after.
    public struct Guard {
        let mutex: AsyncMutex<Value>

        public var value: Value {
            get { mutex.value }
            nonmutating _modify { yield &mutex.value }
        }

        /// Releases the lock (once).
        public func unlock() { mutex.semaphore.release() }
    }

    /// Locks, runs `body` on the value, unlocks.
    public func withLock<R>(_ body: (inout Value) throws -> R) async rethrows -> R {
        let held = await lock().value()
        defer { held.unlock() }
        return try body(&value)
    }
}
