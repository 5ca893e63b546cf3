import CoilCore

/// Multi-producer, single-consumer channels (Tokio's `mpsc`).
///
/// ```swift
/// let (tx, rx) = MPSC.channel(of: String.self, capacity: 64)   // bounded: send waits when full
/// let (utx, urx) = MPSC.unboundedChannel(of: Int.self)          // unbounded: send never waits
/// ```
///
/// Senders are references; `clone()` makes another sender. When the last sender is gone the
/// receiver drains what was sent and then yields nil. When the receiver is gone sends fail and
/// give the value back.
public enum MPSC {
    /// A bounded channel: at most `capacity` values are buffered; `send` waits for room, in
    /// FIFO order among waiting senders.
    public static func channel<T>(of type: T.Type = T.self, capacity: Int) -> (Sender<T>, Receiver<T>) {
        precondition(capacity > 0, "a bounded channel needs a capacity of at least 1")
        let channel = Channel<T>(capacity: capacity)
        return (Sender(channel: channel), Receiver(channel: channel))
    }

    /// An unbounded channel: `send` never waits.
    public static func unboundedChannel<T>(of type: T.Type = T.self) -> (UnboundedSender<T>, Receiver<T>) {
        let channel = Channel<T>(capacity: nil)
        return (UnboundedSender(channel: channel), Receiver(channel: channel))
    }

    /// Why a send failed; the value comes back.
    public enum SendError<T>: Error {
        /// The receiver is gone.
        case closed(T)
        /// (trySend only) the channel is full.
        case full(T)
    }

    /// Why `tryReceive` returned nothing.
    public enum TryReceiveError: Error, Equatable {
        /// Nothing buffered now; senders remain.
        case empty
        /// Nothing buffered and every sender is gone.
        case disconnected
    }

    final class Channel<T>: @unchecked Sendable {
        // SAFETY: `state` is behind its lock; `permits` is thread-safe.
        struct State {
            var buffer: [T?] = []
            var head = 0
            var count = 0
            var senders = 0
            var receiverClosed = false
            var receiverWaker: RawWaker? = nil
        }

        let state = ConditionLock(State())
        /// Room in a bounded channel: one permit per free slot.
        let permits: Semaphore?

        init(capacity: Int?) {
            permits = capacity.map { Semaphore(permits: $0) }
            state.withLock { $0.buffer = Array(repeating: nil, count: max(capacity ?? 16, 1)) }
        }

        deinit {
            state.withLock { state in
                if let raw = state.receiverWaker { raw.vtable.pointee.drop(raw.data) }
            }
        }

        func addSender() { state.withLock { $0.senders += 1 } }

        func dropSender() {
            let waker = state.withLock { state -> RawWaker? in
                state.senders -= 1
                guard state.senders == 0 else { return nil }
                defer { state.receiverWaker = nil }
                return state.receiverWaker
            }
            if let waker { Waker(unsafeRaw: waker).wake() }
        }

        /// Appends `value` (room was reserved for a bounded channel); nil, or the value back if
        /// the receiver is gone.
        func push(_ value: T) -> T? {
            let result = state.withLock { state -> (T?, RawWaker?) in
                if state.receiverClosed { return (value, nil) }
                if state.count == state.buffer.count {
                    // Grow (unbounded) by re-laying the ring out from index 0.
                    var grown = [T?](repeating: nil, count: state.buffer.count * 2)
                    for i in 0..<state.count { grown[i] = state.buffer[(state.head + i) % state.buffer.count] }
                    state.buffer = grown
                    state.head = 0
                }
                state.buffer[(state.head + state.count) % state.buffer.count] = value
                state.count += 1
                defer { state.receiverWaker = nil }
                return (nil, state.receiverWaker)
            }
            if let waker = result.1 { Waker(unsafeRaw: waker).wake() }
            return result.0
        }

        enum Popped { case value(T), empty, disconnected }

        func pop(registering waker: RawWaker?) -> Popped {
            let popped = state.withLock { state -> Popped in
                if state.count > 0 {
                    let value = state.buffer[state.head].take()!
                    state.head = (state.head + 1) % state.buffer.count
                    state.count -= 1
                    return .value(value)
                }
                if state.senders == 0 { return .disconnected }
                if let waker, state.receiverWaker != waker {
                    if let old = state.receiverWaker { old.vtable.pointee.drop(old.data) }
                    state.receiverWaker = RawWaker(data: waker.vtable.pointee.clone(waker.data), vtable: waker.vtable)
                }
                return .empty
            }
            if case .value = popped { permits?.release() }
            return popped
        }

        func closeReceiver() {
            let drained = state.withLock { state -> [T?] in
                state.receiverClosed = true
                defer {
                    state.buffer = []
                    state.count = 0
                    state.head = 0
                }
                return state.buffer
            }
            permits?.close()
            _ = drained  // buffered values are dropped here, outside the lock
        }
    }

    /// A sender of a bounded channel.
    public final class Sender<T>: @unchecked Sendable {
        let channel: Channel<T>

        init(channel: Channel<T>) {
            self.channel = channel
            channel.addSender()
        }

        deinit { channel.dropSender() }

        /// Another sender of the same channel.
        public func clone() -> Sender<T> { Sender(channel: channel) }

        /// A future that waits for room, then sends; `.failure(.closed(value))` if the receiver
        /// is gone.
        public func send(_ value: T) -> Send { Send(channel: channel, value: value, acquire: channel.permits!.acquire()) }

        /// Sends now if there is room.
        public func trySend(_ value: T) -> Result<Void, SendError<T>> {
            if channel.state.withLock({ $0.receiverClosed }) { return .failure(.closed(value)) }
            guard channel.permits!.tryAcquire() else { return .failure(.full(value)) }
            if let back = channel.push(value) { return .failure(.closed(back)) }
            return .success(())
        }

        /// Whether the receiver is gone.
        public var isClosed: Bool { channel.state.withLock { $0.receiverClosed } }

        /// The future of `send(_:)`.
        public struct Send: ~Copyable, Future {
            let channel: Channel<T>
            var value: T?
            var acquire: Semaphore.Acquire

            public mutating func poll(_ context: inout Context) -> Poll<Result<Void, SendError<T>>> {
                switch acquire.poll(&context) {
                case .pending:
                    return .pending
                case .ready(.failure):
                    return .ready(.failure(.closed(value.take()!)))
                case .ready(.success):
                    if let back = channel.push(value.take()!) { return .ready(.failure(.closed(back))) }
                    return .ready(.success(()))
                }
            }
        }
    }

    /// A sender of an unbounded channel.
    public final class UnboundedSender<T>: @unchecked Sendable {
        let channel: Channel<T>

        init(channel: Channel<T>) {
            self.channel = channel
            channel.addSender()
        }

        deinit { channel.dropSender() }

        public func clone() -> UnboundedSender<T> { UnboundedSender(channel: channel) }

        /// Sends at once; `.failure(.closed(value))` if the receiver is gone.
        @discardableResult
        public func send(_ value: T) -> Result<Void, SendError<T>> {
            if let back = channel.push(value) { return .failure(.closed(back)) }
            return .success(())
        }

        public var isClosed: Bool { channel.state.withLock { $0.receiverClosed } }
    }

    /// The receiving half. One task receives at a time.
    public final class Receiver<T>: @unchecked Sendable {
        let channel: Channel<T>

        init(channel: Channel<T>) { self.channel = channel }

        deinit { channel.closeReceiver() }

        /// A future of the next value, or nil once every sender is gone and the buffer is empty.
        public func receive() -> Receive { Receive(channel: channel) }

        /// The next value if one is buffered.
        public func tryReceive() -> Result<T, TryReceiveError> {
            switch channel.pop(registering: nil) {
            case .value(let value): return .success(value)
            case .empty: return .failure(.empty)
            case .disconnected: return .failure(.disconnected)
            }
        }

        /// Refuses further sends; what is buffered can still be received.
        public func close() {
            channel.state.withLock { $0.receiverClosed = true }
            channel.permits?.close()
        }

        /// The future of `receive()`.
        public struct Receive: Future {
            let channel: Channel<T>

            public mutating func poll(_ context: inout Context) -> Poll<T?> {
                guard Coop.proceed(&context) else { return .pending }
                switch channel.pop(registering: context.waker.rawWaker) {
                case .value(let value): return .ready(value)
                case .disconnected: return .ready(nil)
                case .empty: return .pending
                }
            }
        }
    }
}
