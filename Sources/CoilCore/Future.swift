/// A value that may not be ready yet, advanced by polling.
///
/// `poll` does a bounded amount of work and returns `.ready(output)` once, or `.pending` after
/// arranging for `context.waker` to be woken when polling again can make progress. Polling a future
/// again after it returned `.ready` is a programming error; futures may trap on it.
///
/// Futures may be noncopyable (a `JoinHandle` is). Dropping a future cancels whatever it was doing.
public protocol Future<Output>: ~Copyable {
    associatedtype Output
    mutating func poll(_ context: inout Context) -> Poll<Output>

    /// For tasks (don't implement it): polls the future stored at `stage` once; when it is
    /// ready, deinitializes it and stores its output in the same memory, and returns true.
    ///
    /// A requirement with a default implementation, so that its witness is emitted (and
    /// specialized) where each future type conforms: a task polling through it needs no runtime
    /// lookup of `Poll<Output>`'s metadata, which unspecialized generic code pays on every poll.
    static func _pollStage(_ stage: UnsafeMutableRawPointer, _ context: inout Context) -> Bool
}

extension Future where Self: ~Copyable {
    @inlinable
    public static func _pollStage(_ stage: UnsafeMutableRawPointer, _ context: inout Context) -> Bool {
        let future = stage.assumingMemoryBound(to: Self.self)
        switch future.pointee.poll(&context) {
        case .pending:
            return false
        case .ready(let value):
            future.deinitialize(count: 1)
            stage.assumingMemoryBound(to: Output.self).initialize(to: value)
            return true
        }
    }
}

/// A future that is ready on its first poll. See `ready(_:)`.
public struct Ready<Output>: Future {
    // The only stored property: a `Ready<Output>` is laid out exactly as its `Output`
    // (`_pollStage` relies on it; TaskLayoutTests checks it).
    @usableFromInline var value: Output

    /// A future whose first poll returns `value`.
    @inlinable public init(_ value: Output) { self.value = value }

    /// Ready with the value (polling again returns it again).
    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        .ready(value)
    }

    /// As a task's future: the stage holds a `Ready<Output>`, which is laid out as the output it
    /// becomes, so there is nothing to move. Written out because `Ready` is generic: the default
    /// witness would run unspecialized and look up the metadata of `Poll<Output>` on every call.
    @inlinable
    public static func _pollStage(_ stage: UnsafeMutableRawPointer, _ context: inout Context) -> Bool {
        true
    }
}

extension Ready: Sendable where Output: Sendable {}

/// A future that never completes. See `pending(_:)`.
public struct Pending<Output>: Future, Sendable {
    /// A future that is pending forever.
    @inlinable public init() {}

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> { .pending }
}

/// A future whose `poll` is the given closure.
///
/// ```swift
/// var remaining = 3
/// let countdown = pollFn { context in
///     remaining -= 1
///     if remaining == 0 { return .ready("done") }
///     context.waker.wakeByRef()   // ask to be polled again
///     return .pending
/// }
/// ```
public struct PollFn<Output>: Future {
    @usableFromInline var body: (inout Context) -> Poll<Output>

    /// A future whose every poll calls `body`.
    @inlinable public init(_ body: @escaping (inout Context) -> Poll<Output>) { self.body = body }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> { body(&context) }
}

/// A future ready with `value` on its first poll.
@inlinable public func ready<T>(_ value: T) -> Ready<T> { Ready(value) }

/// A future that never completes.
@inlinable public func pending<T>(_ type: T.Type = T.self) -> Pending<T> { Pending() }

/// A future whose `poll` is `body`.
@inlinable public func pollFn<T>(_ body: @escaping (inout Context) -> Poll<T>) -> PollFn<T> {
    PollFn(body)
}

/// One of two values; the output of `select`.
public enum Either<Left, Right> {
    case left(Left)
    case right(Right)
}

extension Either: Sendable where Left: Sendable, Right: Sendable {}
extension Either: Equatable where Left: Equatable, Right: Equatable {}
