/// What a future is given when it is polled: the waker of whoever is polling it.
///
/// A future that returns `.pending` must first arrange for `context.waker` (or a clone of it) to be
/// woken when it can make progress; otherwise nobody will poll it again.
///
/// A context either owns its waker (`init(waker:)`, for hand-written executors) or borrows one
/// (`withWaker(_:_:)`, and the task harness, which lends the task's waker without touching its
/// reference count). Either way `waker` is only ever lent out, never moved.
public struct Context: ~Copyable {
    @usableFromInline let raw: RawWaker
    @usableFromInline let ownsWaker: Bool
    /// `wakeAfterPoll()`'s state: `.immediate` for a context that cannot defer a wake,
    /// `.deferrable` for a task's own poll, `.requested` once a deferred wake was asked for.
    @usableFromInline var deferredWake: DeferredWake

    @usableFromInline
    enum DeferredWake: UInt8 { case immediate, deferrable, requested }

    /// A context that owns `waker` and drops it with itself.
    @inlinable
    public init(waker: consuming Waker) {
        self.raw = waker.intoRaw()
        self.ownsWaker = true
        self.deferredWake = .immediate
    }

    /// A context lending a waker whose reference someone else holds for longer than the context.
    @inlinable
    init(borrowing raw: RawWaker) {
        self.raw = raw
        self.ownsWaker = false
        self.deferredWake = .immediate
    }

    /// The context of a task's own poll: lends the task's waker, and lets `wakeAfterPoll()`
    /// leave the wake to the harness, which reads `wakeRequestedAfterPoll` when the poll returns.
    @inlinable
    init(taskWaker raw: RawWaker) {
        self.raw = raw
        self.ownsWaker = false
        self.deferredWake = .deferrable
    }

    /// Wakes this context's waker by reference, as `waker.wakeByRef()` does, but lets the task
    /// harness do it once the current poll has returned `.pending`, where it costs no state
    /// transition of its own (the task goes from running straight to notified). That is what
    /// `yieldNow()` and the cooperative budget use. A context that is not a task's own poll (a
    /// combinator's, a hand-written executor's, `blockOn`'s) wakes at once.
    @inlinable
    public mutating func wakeAfterPoll() {
        if deferredWake == .immediate {
            waker.wakeByRef()
        } else {
            deferredWake = .requested
        }
    }

    /// Whether `wakeAfterPoll()` was called on a task's own context (read by the harness).
    @inlinable
    var wakeRequestedAfterPoll: Bool { deferredWake == .requested }

    /// Runs `body` with a context that lends `waker` (no clone, no reference count traffic).
    @inlinable
    public static func withWaker<R: ~Copyable, E: Error>(
        _ waker: borrowing Waker, _ body: (inout Context) throws(E) -> R
    ) throws(E) -> R {
        var context = Context(borrowing: waker.raw)
        return try body(&context)
    }

    /// The waker to register, borrowed for the duration of the access. Clone it to keep it.
    @inlinable
    public var waker: Waker {
        _read {
            // SAFETY: the temporary does not own a reference; it is forgotten, never dropped, after
            // the borrow ends, and `raw` stays valid for the whole life of this context.
            let lent = Waker(unsafeRaw: raw)
            yield lent
            _ = lent.intoRaw()
        }
    }

    @inlinable
    deinit {
        if ownsWaker { raw.vtable.pointee.drop(raw.data) }
    }
}
