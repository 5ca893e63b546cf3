/// A task that is ready to be polled, holding one reference. Schedulers queue these; running it
/// consumes it. There is at most one per task at a time (TaskState rule 4).
///
/// To keep one in a queue of machine words, `intoRaw()` it and rebuild it with `init(unsafeRaw:)`.
@frozen
public struct Notified: ~Copyable, @unchecked Sendable {
    // SAFETY: the task's state word is atomic and the poll is serialised by RUNNING (rule 2).
    @usableFromInline let task: RawTask

    /// Takes ownership of one Notified reference that `task` stands for.
    @inlinable public init(unsafeRaw task: RawTask) { self.task = task }

    /// The task's identity.
    @inlinable public var id: TaskID { task.id }
    /// The task, unowned (for logging or identity; the reference stays with this Notified).
    @inlinable public var raw: RawTask { task }

    /// Polls the task once (or carries out its cancellation), consuming this reference.
    @inlinable
    public consuming func run() {
        let task = self.task
        discard self
        task.ops.poll(task)
    }

    /// Gives up ownership without dropping the reference; `init(unsafeRaw:)` takes it back.
    @inlinable
    public consuming func intoRaw() -> RawTask {
        let task = self.task
        discard self
        return task
    }

    @inlinable deinit { task.dropReference() }
}

/// The owned list's reference to a task. The scheduler gets one back from `OwnedTasks` at shutdown.
@frozen
public struct OwnedTask: ~Copyable, @unchecked Sendable {
    @usableFromInline let task: RawTask

    @inlinable init(unsafeRaw task: RawTask) { self.task = task }

    /// The task's identity.
    @inlinable public var id: TaskID { task.id }

    /// Cancels the task: drops its future now if nobody is polling it, otherwise the poller will.
    /// Consumes the reference.
    @inlinable
    public consuming func shutdown() {
        let task = self.task
        discard self
        task.ops.shutdown(task)
    }

    @inlinable deinit { task.dropReference() }
}

/// Why a task has no output for its JoinHandle.
public struct JoinError: Error, CustomStringConvertible {
    public enum Reason: Sendable {
        /// The task was aborted or its runtime shut down before it finished.
        case cancelled
        /// The task's output was a thrown error (see `JoinHandle.flattened()`).
        case failed(any Error)
    }

    public let id: TaskID
    public let reason: Reason

    /// An error for task `id`.
    public init(id: TaskID, reason: Reason) {
        self.id = id
        self.reason = reason
    }

    /// Whether the task was cancelled (aborted or shut down).
    public var isCancelled: Bool {
        if case .cancelled = reason { return true }
        return false
    }

    /// The error the task threw, if that is why it has no output.
    public var underlyingError: (any Error)? {
        if case .failed(let error) = reason { return error }
        return nil
    }

    /// `task#<n> was cancelled` or `task#<n> failed: <error>`.
    public var description: String {
        switch reason {
        case .cancelled: return "\(id) was cancelled"
        case .failed(let error): return "\(id) failed: \(error)"
        }
    }
}

/// Owned permission to join a spawned task: a future of the task's output, or of why there is none.
///
/// Dropping the handle detaches the task (it keeps running; its output is dropped when it finishes).
/// `abort()` cancels it: the future is dropped the next time a worker would poll it, and the handle
/// then yields `JoinError` with `isCancelled`.
///
/// ```swift
/// let executor = LocalExecutor()
/// let handle = executor.spawn(ready(21).map { $0 * 2 })
/// let answer = executor.blockOn(handle)   // .success(42)
/// ```
public struct JoinHandle<Success>: ~Copyable, Future {
    public typealias Output = Result<Success, JoinError>

    @usableFromInline let task: RawTask

    /// Takes ownership of the JoinHandle reference (and join interest) of a task whose future's
    /// output is `Success`.
    @inlinable init(unsafeRaw task: RawTask) { self.task = task }

    /// The task's identity.
    @inlinable public var id: TaskID { task.id }

    /// Whether the task has finished (completed or been cancelled).
    @inlinable public var isFinished: Bool { task.state.isComplete }

    /// Requests cancellation; see `AbortHandle.abort()`.
    @inlinable public func abort() { task.remoteAbort() }

    /// A handle that can abort the task without being able to join it.
    @inlinable public func makeAbortHandle() -> AbortHandle { AbortHandle(retaining: task) }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        switch task.ops.takeOutput(task, waker: context.raw) {
        case .pending:
            return .pending
        case .output(let stage):
            return .ready(.success(stage.assumingMemoryBound(to: Success.self).move()))
        case .cancelled:
            return .ready(.failure(JoinError(id: task.id, reason: .cancelled)))
        }
    }

    @inlinable
    deinit {
        if !task.header.pointee.state.dropJoinHandleFast() { task.ops.dropJoinHandleSlow(task) }
    }
}

extension JoinHandle: @unchecked Sendable where Success: Sendable {}
// SAFETY: the output crosses threads only when it is Sendable; the join protocol (rules 3 and 5)
// serialises every access to the stage and the join waker.

extension JoinHandle {
    /// For a task whose output is a thrown-or-returned `Result`: a future that reports the thrown
    /// error as `JoinError.Reason.failed`, so one `Result<T, JoinError>` covers cancellation and
    /// failure alike.
    @inlinable
    public consuming func flattened<T>() -> Map<JoinHandle<Success>, Result<T, JoinError>>
    where Success == Result<T, any Error> {
        let id = self.id
        return map { result in
            result.flatMap { $0.mapError { JoinError(id: id, reason: .failed($0)) } }
        }
    }
}

/// A reference that can cancel a task, and nothing else. Copies share one reference.
public final class AbortHandle: @unchecked Sendable {
    // SAFETY: abort and isFinished are atomic operations on the state word.
    @usableFromInline let task: RawTask

    @inlinable
    init(retaining task: RawTask) {
        task.header.pointee.state.incrementRef()  // a new holder (rule 1)
        self.task = task
    }

    /// The task's identity.
    @inlinable public var id: TaskID { task.id }

    /// Whether the task has finished (completed or been cancelled).
    @inlinable public var isFinished: Bool { task.state.isComplete }

    /// Requests cancellation. If the task is idle it is scheduled so that a worker drops its future;
    /// if it is being polled, the poller drops it when the poll returns. A finished task is unaffected.
    @inlinable public func abort() { task.remoteAbort() }

    deinit { task.dropReference() }
}

extension RawTask {
    @inlinable
    func remoteAbort() {
        if updateState(TaskState.transitionToNotifiedAndCancel) {
            ops.schedule(self)  // the transition took the Notified's reference
        }
    }
}
