import CoilCore

/// A future that completes at a deadline (millisecond resolution, never early). See `sleep(for:)`.
///
/// The first poll that has to wait allocates a timer entry and arms it in the wheel of the
/// worker polling it (from outside a worker, in worker 0's wheel). Dropping the sleep disarms
/// it: at once when dropped on the worker that owns the wheel, otherwise when its slot comes up.
public struct Sleep: ~Copyable, Future {
    let deadline: UInt64
    var entry: TimerEntry? = nil

    init(deadline: UInt64) { self.deadline = deadline }

    /// The deadline as an instant of `ContinuousClock`.
    public var deadlineInstant: ContinuousClock.Instant {
        let now = MonotonicTime.nanoseconds()
        let at = deadline &* 1_000_000
        return ContinuousClock.now + (at > now ? .nanoseconds(Int64(at - now)) : .zero)
    }

    /// Whether the deadline has passed.
    public var isElapsed: Bool { entry?.hasFired ?? (MonotonicTime.milliseconds() >= deadline) }

    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        guard Coop.proceed(&context) else { return .pending }
        return pollUnbudgeted(&context)
    }

    mutating func pollUnbudgeted(_ context: inout Context) -> Poll<Void> {
        if let entry {
            if entry.hasFired { return .ready(()) }
            entry.register(context.waker)
            return entry.hasFired ? .ready(()) : .pending
        }
        if MonotonicTime.milliseconds() >= deadline { return .ready(()) }
        let entry = TimerEntry(deadline: deadline)
        entry.register(context.waker)
        self.entry = entry
        TimeDriver.arm(entry)
        return entry.hasFired ? .ready(()) : .pending
    }

    deinit {
        guard let entry, entry.cancel() else { return }
        TimeDriver.disarm(entry)
    }
}

/// Where timer entries go: the calling worker's wheel, or the runtime's list for worker 0.
enum TimeDriver {
    static func arm(_ entry: TimerEntry) {
        if let worker = Worker.current {
            worker.insertTimer(entry)
        } else if let shared = Shared.current {
            shared.registerRemoteTimer(entry)
        } else {
            preconditionFailure("a Coil timer was polled outside a Coil runtime (enter one with Runtime.blockOn or spawn the future)")
        }
    }

    /// A cancelled entry leaves its wheel at once when its owner drops it; dropped on another
    /// thread, it is handed to the owner, which unlinks it on its next pass. (One not yet in a
    /// wheel is skipped when worker 0 adopts it.)
    ///
    /// SAFETY: `wheelID` is the owning worker's address while the entry is linked. Workers live
    /// as long as their runtime's shared state, and shutdown unlinks every entry (wheelID 0)
    /// before that state can go, so a non-zero id names a live worker. If the owner unlinks the
    /// entry meanwhile, it skips the handed-over entry (its wheelID no longer matches).
    static func disarm(_ entry: TimerEntry) {
        let owner = entry.wheelID.load(ordering: .relaxed)
        guard owner != 0 else { return }
        if let worker = Worker.current, owner == worker.wheel.id {
            worker.wheel.remove(entry)
        } else if let pointer = UnsafeMutableRawPointer(bitPattern: owner) {
            Unmanaged<Worker>.fromOpaque(pointer).takeUnretainedValue().disarmRemotely(entry)
        }
    }
}

/// A future that completes after `duration`.
///
/// ```swift
/// runtime.blockOn(sleep(for: .milliseconds(20)))
/// ```
public func sleep(for duration: Duration) -> Sleep {
    Sleep(deadline: MonotonicTime.deadlineTick(after: duration))
}

/// A future that completes at `deadline`.
public func sleep(until deadline: ContinuousClock.Instant) -> Sleep {
    Sleep(deadline: MonotonicTime.deadlineTick(at: deadline))
}

/// The error of a `timeout` whose time ran out first.
public struct TimeoutError: Error, Equatable, CustomStringConvertible {
    public init() {}
    public var description: String { "deadline elapsed" }
}

/// A future that runs `future` with a deadline: `.success(output)` if it finishes first,
/// `.failure(TimeoutError())` otherwise (the inner future is then dropped with the timeout).
public struct Timeout<Inner: Future & ~Copyable>: ~Copyable, Future {
    public typealias Output = Result<Inner.Output, TimeoutError>
    var inner: Inner
    var delay: Sleep

    init(inner: consuming Inner, delay: consuming Sleep) {
        self.inner = inner
        self.delay = delay
    }

    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        if case .ready(let value) = inner.poll(&context) { return .ready(.success(value)) }
        // The timer is checked even if the inner future spent the budget, so it can still fire.
        let expired = Coop.unconstrained { delay.pollUnbudgeted(&context) }
        if case .ready = expired { return .ready(.failure(TimeoutError())) }
        return .pending
    }
}

/// Runs `future` for at most `duration` (see `Timeout`).
public func timeout<F: Future & ~Copyable>(_ duration: Duration, _ future: consuming F) -> Timeout<F> {
    Timeout(inner: future, delay: sleep(for: duration))
}

/// Runs `future` until `deadline` at most (see `Timeout`).
public func timeout<F: Future & ~Copyable>(until deadline: ContinuousClock.Instant, _ future: consuming F) -> Timeout<F> {
    Timeout(inner: future, delay: sleep(until: deadline))
}
