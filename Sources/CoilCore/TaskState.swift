import Synchronization

// MARK: - The task state protocol
//
// Every task has one 64-bit atomic state word. The low six bits are lifecycle flags; the rest is a
// reference count (in units of `refOne`).
//
//   bit 0  RUNNING        Someone holds the right to touch the future: a poller between to-running and
//                         to-idle/complete, or the scheduler's shutdown. Never two at once.
//   bit 1  COMPLETE       The future is gone and the output (or the cancellation) is stored. Never
//                         cleared. Set together with clearing RUNNING, in one step.
//   bit 2  NOTIFIED       While the task is idle: exactly one `Notified` exists for it (queued or about
//                         to be). While running: the task was woken during the poll and must be
//                         rescheduled at to-idle. Meaningless once COMPLETE.
//   bit 3  JOIN_INTEREST  The JoinHandle exists. Cleared once, when it is dropped.
//   bit 4  JOIN_WAKER     The join-waker field holds a waker that the completer may read (rule 5).
//   bit 5  CANCELLED      Abort or shutdown was requested. Never cleared.
//   bits 6-63             Reference count.
//
// Reference holders. Each holds exactly one counted reference; none is ever inferred:
//   - the scheduler's owned list (`OwnedTask`), from spawn until release at completion or shutdown;
//   - a `Notified` (queued to run), which a poll consumes: the poller holds that reference until
//     to-idle or completion;
//   - the `JoinHandle`, each `AbortHandle`, each `Waker` of the task.
// A spawned task starts with three: owned list, the first Notified, the JoinHandle.
//
// Ownership rules (unsafe sites cite them by number):
//   1. The reference count is the number of live holders listed above. Whoever takes it to zero
//      deallocates the task, exactly once; nobody touches the task after giving up their reference.
//   2. Only the holder of RUNNING may touch the future: poll it, drop it, or store the output.
//   3. After COMPLETE, the stage (output or cancellation) belongs to the JoinHandle while
//      JOIN_INTEREST is set. Whoever clears JOIN_INTEREST after COMPLETE drops the output; a completer
//      that finds JOIN_INTEREST already clear drops it itself (before COMPLETE, still holding
//      RUNNING, when it found it clear before completing: `transitionToCompleteDetached`).
//   4. At most one Notified exists at a time: one is created only when NOTIFIED goes from clear to set
//      on an idle task, or at to-idle when NOTIFIED is set or a wake was left for after the poll
//      (`transitionToIdleNotified`; the poll's own reference becomes it). So one
//      intrusive queue link per task is enough.
//   5. The join-waker field: while JOIN_WAKER is clear and the task is not COMPLETE, only the
//      JoinHandle touches it (write, replace, drop). While JOIN_WAKER is set it is read-only for both
//      sides. After COMPLETE, the completer wakes it, then clears JOIN_WAKER; if JOIN_INTEREST was
//      already clear at that moment the completer drops the waker, otherwise the JoinHandle does.
//   6. A task is deallocated only after COMPLETE: the owned-list reference is given up only by
//      completion or by shutdown (which completes the task itself, or leaves a running poller to).
//
// Every transition below is a pure function `(TaskState) -> (TaskState, Outcome)` (the fuzzer and
// the model checker drive these directly) and `TaskStateCell` applies it with one atomic
// read-modify-write. Outcomes are `@frozen` enums the caller must switch over.

/// A snapshot of a task's state word.
@frozen
public struct TaskState: Hashable, Sendable, CustomStringConvertible {
    public var bits: UInt64

    // Computed and inlinable, so that other modules fold them into constants instead of calling a
    // lazy global's accessor (spawn reads `initial` on every task).
    @inlinable public static var running: UInt64 { 1 << 0 }
    @inlinable public static var complete: UInt64 { 1 << 1 }
    @inlinable public static var notified: UInt64 { 1 << 2 }
    @inlinable public static var joinInterest: UInt64 { 1 << 3 }
    @inlinable public static var joinWaker: UInt64 { 1 << 4 }
    @inlinable public static var cancelled: UInt64 { 1 << 5 }
    @inlinable public static var refShift: UInt64 { 6 }
    @inlinable public static var refOne: UInt64 { 1 << refShift }
    @inlinable public static var flagMask: UInt64 { refOne - 1 }

    /// A freshly spawned task: three references (owned list, first Notified, JoinHandle), notified,
    /// with join interest.
    @inlinable public static var initial: TaskState { TaskState(bits: 3 * refOne | notified | joinInterest) }

    /// The state whose word is `bits`.
    @inlinable public init(bits: UInt64) { self.bits = bits }

    /// The number of reference holders (rule 1).
    @inlinable public var refCount: UInt64 { bits >> TaskState.refShift }
    @inlinable public var isRunning: Bool { bits & TaskState.running != 0 }
    @inlinable public var isComplete: Bool { bits & TaskState.complete != 0 }
    @inlinable public var isNotified: Bool { bits & TaskState.notified != 0 }
    @inlinable public var isJoinInterested: Bool { bits & TaskState.joinInterest != 0 }
    @inlinable public var isJoinWakerSet: Bool { bits & TaskState.joinWaker != 0 }
    @inlinable public var isCancelled: Bool { bits & TaskState.cancelled != 0 }
    @inlinable public var isIdle: Bool { bits & (TaskState.running | TaskState.complete) == 0 }

    @inlinable mutating func set(_ flag: UInt64) { bits |= flag }
    @inlinable mutating func clear(_ flag: UInt64) { bits &= ~flag }

    @inlinable mutating func incrementRef() {
        precondition(refCount < (UInt64.max >> TaskState.refShift), "task reference count overflow")
        bits += TaskState.refOne
    }

    @inlinable mutating func decrementRef(by count: UInt64 = 1) {
        precondition(refCount >= count, "task reference count underflow")  // rule 1
        bits -= count * TaskState.refOne
    }

    /// The count and the set flags, e.g. `TaskState(refs: 3, NOTIFIED|JOIN_INTEREST)`.
    public var description: String {
        var flags: [String] = []
        if isRunning { flags.append("RUNNING") }
        if isComplete { flags.append("COMPLETE") }
        if isNotified { flags.append("NOTIFIED") }
        if isJoinInterested { flags.append("JOIN_INTEREST") }
        if isJoinWakerSet { flags.append("JOIN_WAKER") }
        if isCancelled { flags.append("CANCELLED") }
        return "TaskState(refs: \(refCount), \(flags.joined(separator: "|")))"
    }
}

// MARK: - Outcomes

/// What a poller owns after trying to start a poll (it held a Notified's reference).
@frozen public enum ToRunning: Hashable, Sendable {
    /// RUNNING is ours: poll the future. The Notified's reference is now the poller's.
    case success
    /// RUNNING is ours but the task was cancelled: drop the future and complete.
    case cancelled
    /// Someone else runs or ran it; the Notified's reference was given up.
    case failed
    /// As `failed`, and that was the last reference: deallocate.
    case dealloc
}

/// What a poller owns after a poll returned pending.
@frozen public enum ToIdle: Hashable, Sendable {
    /// Idle; the poller's reference was given up.
    case ok
    /// Woken during the poll: a new reference was taken for a new Notified, which the caller must
    /// schedule; the poller's own reference must still be dropped.
    case okNotified
    /// Idle, and the poller held the last reference: deallocate.
    case okDealloc
    /// Cancelled during the poll: RUNNING is still ours; drop the future and complete.
    case cancelled
}

/// What a waker's wake owns.
@frozen public enum Notify: Hashable, Sendable {
    case doNothing
    /// A new reference was taken for a Notified: schedule it. (Wake-by-value then drops the
    /// waker's own reference, after `schedule` returns.)
    case submit
    /// The waker held the last reference: deallocate.
    case dealloc
}

/// What a JoinHandle must clean up after giving up join interest.
@frozen public struct JoinHandleDrop: Hashable, Sendable {
    /// The join-waker field is the handle's to drop (rule 5).
    public let dropWaker: Bool
    /// The output is the handle's to drop (rule 3).
    public let dropOutput: Bool

    @inlinable public init(dropWaker: Bool, dropOutput: Bool) {
        self.dropWaker = dropWaker
        self.dropOutput = dropOutput
    }
}

// MARK: - Pure transitions

extension TaskState {
    /// A Notified is about to be polled. Requires NOTIFIED.
    @inlinable
    public static func transitionToRunning(_ state: TaskState) -> (TaskState, ToRunning) {
        precondition(state.isNotified, "to-running without a Notified")  // rule 4
        var next = state
        guard state.isIdle else {
            next.decrementRef()
            return (next, next.refCount == 0 ? .dealloc : .failed)
        }
        next.clear(notified)
        next.set(running)
        return (next, next.isCancelled ? .cancelled : .success)
    }

    /// The poll returned pending. Requires RUNNING.
    @inlinable
    public static func transitionToIdle(_ state: TaskState) -> (TaskState, ToIdle) {
        precondition(state.isRunning && !state.isComplete, "to-idle while not running")
        guard !state.isCancelled else { return (state, .cancelled) }
        var next = state
        next.clear(running)
        if next.isNotified {
            // The poller's reference passes to the new Notified (one less RMW than a new
            // reference for it and a drop of the poller's).
            return (next, .okNotified)
        }
        next.decrementRef()
        return (next, next.refCount == 0 ? .okDealloc : .ok)
    }

    /// As `transitionToIdle`, for a poll that returned pending and asked to be woken after it
    /// (`Context.wakeAfterPoll`): the task becomes NOTIFIED at once and the poller's reference
    /// passes to the new Notified, so the outcome is `.okNotified` (or `.cancelled`).
    @inlinable
    public static func transitionToIdleNotified(_ state: TaskState) -> (TaskState, ToIdle) {
        precondition(state.isRunning && !state.isComplete, "to-idle while not running")
        guard !state.isCancelled else { return (state, .cancelled) }
        var next = state
        next.clear(running)
        next.set(notified)
        return (next, .okNotified)
    }

    /// The output (or cancellation) is stored. Requires RUNNING; returns the new state, which tells
    /// the completer whether anyone will read the output and whether a join waker is set.
    @inlinable
    public static func transitionToComplete(_ state: TaskState) -> (TaskState, TaskState) {
        precondition(state.isRunning && !state.isComplete, "to-complete while not running")
        var next = state
        next.clear(running)
        next.set(complete)
        return (next, next)
    }

    /// The completion of a task nobody can join (JOIN_INTEREST was clear when the completer
    /// looked, and it is never set again): the completer, still RUNNING, has dropped the stage
    /// and left the owned list; one RMW now publishes COMPLETE and gives up `count` references
    /// (its own, and the owned list's if it was there), instead of `transitionToComplete` and
    /// `transitionToTerminal`. Returns whether it must deallocate.
    @inlinable
    public static func transitionToCompleteDetached(_ state: TaskState, count: UInt64) -> (TaskState, Bool) {
        precondition(state.isRunning && !state.isComplete && !state.isJoinInterested, "detached completion out of order")
        var next = state
        next.clear(running)
        next.set(complete)
        next.decrementRef(by: count)
        return (next, next.refCount == 0)
    }

    /// The completer gives up `count` references (its own and maybe the owned list's). Returns
    /// whether it must deallocate.
    @inlinable
    public static func transitionToTerminal(_ state: TaskState, count: UInt64) -> (TaskState, Bool) {
        precondition(state.isComplete, "to-terminal before complete")
        var next = state
        next.decrementRef(by: count)
        return (next, next.refCount == 0)
    }

    /// The completer woke the join waker and hands the field back. Requires COMPLETE and JOIN_WAKER.
    /// Returns whether the JoinHandle still exists (if not, the completer drops the waker: rule 5).
    @inlinable
    public static func unsetWakerAfterComplete(_ state: TaskState) -> (TaskState, Bool) {
        precondition(state.isComplete && state.isJoinWakerSet, "unset-waker-after-complete out of order")
        var next = state
        next.clear(joinWaker)
        return (next, next.isJoinInterested)
    }

    /// Wake by value: the waker's reference is consumed.
    @inlinable
    public static func transitionToNotifiedByValue(_ state: TaskState) -> (TaskState, Notify) {
        var next = state
        if state.isRunning {
            // The poller will reschedule at to-idle; our reference goes.
            next.set(notified)
            next.decrementRef()
            precondition(next.refCount > 0, "running task without the poller's reference")
            return (next, .doNothing)
        }
        if state.isComplete || state.isNotified {
            next.decrementRef()
            return (next, next.refCount == 0 ? .dealloc : .doNothing)
        }
        // Idle and not yet notified: a new reference for the Notified (rule 4). The waker keeps
        // its own until the scheduler's `schedule` has returned, because the scheduler value lives
        // inside the task: handing it the waker's reference would let another thread run, finish
        // and free the task while `schedule` still executes.
        next.set(notified)
        next.incrementRef()
        return (next, .submit)
    }

    /// Wake by reference: the waker keeps its reference.
    @inlinable
    public static func transitionToNotifiedByRef(_ state: TaskState) -> (TaskState, Notify) {
        var next = state
        if state.isComplete || state.isNotified { return (state, .doNothing) }
        next.set(notified)
        if state.isRunning { return (next, .doNothing) }
        next.incrementRef()
        return (next, .submit)
    }

    /// Abort from a handle. Returns whether a new Notified reference was taken, which the caller must
    /// schedule so the cancellation is carried out by a poller.
    @inlinable
    public static func transitionToNotifiedAndCancel(_ state: TaskState) -> (TaskState, Bool) {
        if state.isCancelled || state.isComplete { return (state, false) }
        var next = state
        next.set(cancelled)
        if state.isRunning || state.isNotified {
            // A poller (now, or through the queued Notified) will see CANCELLED.
            next.set(notified)
            return (next, false)
        }
        next.set(notified)
        next.incrementRef()
        return (next, true)
    }

    /// Shutdown by the scheduler. Returns whether RUNNING was taken (then the caller cancels and
    /// completes the task); otherwise a poller owns it and will see CANCELLED.
    @inlinable
    public static func transitionToShutdown(_ state: TaskState) -> (TaskState, Bool) {
        var next = state
        next.set(cancelled)
        guard state.isIdle else { return (next, false) }
        next.set(running)
        return (next, true)
    }

    /// The JoinHandle goes away. Requires JOIN_INTEREST. Its own reference is dropped separately.
    @inlinable
    public static func transitionToJoinHandleDropped(_ state: TaskState) -> (TaskState, JoinHandleDrop) {
        precondition(state.isJoinInterested, "JoinHandle dropped twice")
        var next = state
        next.clear(joinInterest)
        if !state.isComplete { next.clear(joinWaker) }
        return (next, JoinHandleDrop(dropWaker: !next.isJoinWakerSet, dropOutput: state.isComplete))
    }

    /// The JoinHandle stored a waker and publishes it. Fails (state unchanged) if the task completed
    /// meanwhile: then the handle still owns the waker and can read the output.
    @inlinable
    public static func setJoinWaker(_ state: TaskState) -> (TaskState, Bool) {
        precondition(state.isJoinInterested && !state.isJoinWakerSet, "set-join-waker out of order")
        guard !state.isComplete else { return (state, false) }
        var next = state
        next.set(joinWaker)
        return (next, true)
    }

    /// The JoinHandle takes the join-waker field back to replace it. Fails if the task completed.
    @inlinable
    public static func unsetJoinWaker(_ state: TaskState) -> (TaskState, Bool) {
        precondition(state.isJoinInterested, "unset-join-waker without join interest")
        // Completion first: the completer may have cleared JOIN_WAKER since the handle looked.
        guard !state.isComplete else { return (state, false) }
        precondition(state.isJoinWakerSet, "unset-join-waker out of order")
        var next = state
        next.clear(joinWaker)
        return (next, true)
    }

    /// A new reference (waker clone, abort handle).
    @inlinable
    public static func incrementRef(_ state: TaskState) -> (TaskState, Void) {
        var next = state
        next.incrementRef()
        return (next, ())
    }

    /// A reference goes. Returns whether it was the last.
    @inlinable
    public static func decrementRef(_ state: TaskState) -> (TaskState, Bool) {
        var next = state
        next.decrementRef()
        return (next, next.refCount == 0)
    }
}

// MARK: - The atomic cell

/// The atomic state word in a task header. Each method is one read-modify-write applying the pure
/// transition of the same name.
@frozen
public struct TaskStateCell: ~Copyable {
    @usableFromInline let word: Atomic<UInt64>

    /// A cell holding `state`.
    @inlinable public init(_ state: TaskState) { word = Atomic(state.bits) }

    /// The current state (acquiring).
    @inlinable public func load() -> TaskState { TaskState(bits: word.load(ordering: .acquiring)) }

    /// Applies `transition` with a CAS loop; a transition that changes nothing costs only the load.
    @inlinable
    public func update<Outcome>(_ transition: (TaskState) -> (TaskState, Outcome)) -> Outcome {
        var current = word.load(ordering: .acquiring)
        while true {
            let (next, outcome) = transition(TaskState(bits: current))
            if next.bits == current { return outcome }
            let (exchanged, original) = word.compareExchange(
                expected: current, desired: next.bits,
                successOrdering: .acquiringAndReleasing, failureOrdering: .acquiring)
            if exchanged { return outcome }
            current = original
        }
    }

    /// One more reference, as a single fetch-add (clones are frequent; no CAS loop needed).
    @inlinable
    public func incrementRef() {
        let previous = word.wrappingAdd(TaskState.refOne, ordering: .relaxed).oldValue
        // Relaxed is enough: a new reference is made from an existing one, which keeps the task alive.
        precondition(previous >> TaskState.refShift < (UInt64.max >> TaskState.refShift) - 1,
                     "task reference count overflow")
    }

    /// One reference fewer, as a single fetch-sub. Returns whether it was the last (rule 1).
    @inlinable
    public func decrementRef() -> Bool {
        // Releasing so our writes happen-before the deallocation; acquiring so the deallocator sees
        // every other holder's writes.
        let previous = word.wrappingSubtract(TaskState.refOne, ordering: .acquiringAndReleasing).oldValue
        precondition(previous >> TaskState.refShift >= 1, "task reference count underflow")
        return previous >> TaskState.refShift == 1
    }

    /// Drops a JoinHandle that never did anything: from the initial state straight to one reference
    /// fewer without join interest. Fails if anything else happened, and then the slow path runs.
    @inlinable
    public func dropJoinHandleFast() -> Bool {
        word.compareExchange(
            expected: TaskState.initial.bits,
            desired: (TaskState.initial.bits - TaskState.refOne) & ~TaskState.joinInterest,
            ordering: .acquiringAndReleasing
        ).exchanged
    }
}
