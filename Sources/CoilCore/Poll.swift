/// The result of polling a future once: its output, or "not yet" (and the poller's waker has been
/// registered to be woken when progress is possible).
@frozen
public enum Poll<Output: ~Copyable>: ~Copyable {
    case ready(Output)
    case pending
}

extension Poll: Copyable where Output: Copyable {}
extension Poll: Sendable where Output: Sendable & Copyable {}

extension Poll where Output: Copyable {
    /// Whether the poll produced a value.
    @inlinable public var isReady: Bool {
        if case .ready = self { return true }
        return false
    }

    /// Transforms a ready value, keeps `.pending` as it is.
    @inlinable public func map<T>(_ transform: (Output) throws -> T) rethrows -> Poll<T> {
        switch self {
        case .ready(let value): return .ready(try transform(value))
        case .pending: return .pending
        }
    }
}
