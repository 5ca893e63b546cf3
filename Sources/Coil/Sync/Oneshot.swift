import CoilCore
import Synchronization

/// A channel for exactly one value (Tokio's `oneshot`). The halves are references: the
/// receiver is a future of the value.
///
/// ```swift
/// let (tx, rx) = Oneshot.channel(of: Int.self)
/// _ = runtime.spawn(pollFn { _ in tx.send(42); return .ready(()) })
/// let value = runtime.blockOn(rx)        // .success(42)
/// ```
public enum Oneshot {
    /// A sender and its receiver.
    @inlinable
    public static func channel<T>(of type: T.Type = T.self) -> (OneshotSender<T>, OneshotReceiver<T>) {
        let shared = OneshotState<T>()
        return (OneshotSender(shared: shared), OneshotReceiver(shared: shared))
    }
}

/// Why a oneshot receive has no value: the sender was dropped without sending.
public struct OneshotClosedError: Error, Equatable, CustomStringConvertible {
    @inlinable public init() {}
    public var description: String { "oneshot sender dropped without sending" }
}

/// The bits of `OneshotState.bits` (outside the generic type, so reading them needs no metadata).
@usableFromInline
enum OneshotBits {
    @usableFromInline static let valueSent: UInt8 = 1
    @usableFromInline static let senderClosed: UInt8 = 2
    @usableFromInline static let receiverClosed: UInt8 = 4
    @usableFromInline static let consumed: UInt8 = 8
}

/// The state both halves share. `bits` decides every race: the sender sets `valueSent` after
/// writing the value (release), the receiver reads it after seeing the bit (acquire); whichever
/// of "receiver closed" and "value sent" comes second owns the value and drops it.
@usableFromInline
final class OneshotState<T>: @unchecked Sendable {
    // SAFETY: `value` is written by the sender before `valueSent` is set and read by the receiver
    // after it sees it, or taken back by the sender when it sees `receiverClosed` first.

    @usableFromInline let bits = Atomic<UInt8>(0)
    @usableFromInline let receiverWaker = AtomicWaker()
    @usableFromInline var value: T? = nil

    @usableFromInline init() {}
}

/// The sending half: `send` once. Dropping it (its last reference) unsent tells the receiver.
public final class OneshotSender<T>: @unchecked Sendable {
    // SAFETY: the shared state is synchronised by its atomic bits; `sent` is claimed atomically.
    @usableFromInline let shared: OneshotState<T>
    @usableFromInline let sent = Atomic<Bool>(false)

    @usableFromInline init(shared: OneshotState<T>) { self.shared = shared }

    /// Sends `value`; gives it back as `.failure` if the receiver is gone or a value was sent
    /// already.
    @inlinable @discardableResult
    public func send(_ value: T) -> Result<Void, OneshotSendError<T>> {
        guard !sent.exchange(true, ordering: .acquiringAndReleasing) else { return .failure(OneshotSendError(value: value)) }
        shared.value = value
        let previous = shared.bits.bitwiseOr(OneshotBits.valueSent | OneshotBits.senderClosed,
                                             ordering: .acquiringAndReleasing).oldValue
        if previous & OneshotBits.receiverClosed != 0 {
            return .failure(OneshotSendError(value: shared.value.take()!))
        }
        shared.receiverWaker.wake()
        return .success(())
    }

    /// Whether the receiver was dropped (a send would fail).
    public var isClosed: Bool { shared.bits.load(ordering: .acquiring) & OneshotBits.receiverClosed != 0 }

    deinit {
        guard !sent.load(ordering: .acquiring) else { return }
        shared.bits.bitwiseOr(OneshotBits.senderClosed, ordering: .acquiringAndReleasing)
        shared.receiverWaker.wake()
    }
}

/// A failed oneshot send: the receiver was gone; the value comes back.
public struct OneshotSendError<T>: Error {
    public let value: T
    @inlinable init(value: T) { self.value = value }
}

/// The receiving half: a future of the value, or of `OneshotClosedError` if the sender was dropped
/// without sending. Dropping it makes a later send fail (and drops a value already sent).
public final class OneshotReceiver<T>: Future, @unchecked Sendable {
    // SAFETY: see OneshotState; one task polls the receiver at a time.
    @usableFromInline let shared: OneshotState<T>

    @usableFromInline init(shared: OneshotState<T>) { self.shared = shared }

    @inlinable
    public func poll(_ context: inout Context) -> Poll<Result<T, OneshotClosedError>> {
        guard Coop.proceed(&context) else { return .pending }
        if let ready = tryTake() { return .ready(ready) }
        shared.receiverWaker.register(context.waker)
        if let ready = tryTake() { return .ready(ready) }
        return .pending
    }

    /// The value if it was sent (once), the closed error if the sender is gone, nil otherwise.
    @inlinable
    public func tryReceive() -> Result<T, OneshotClosedError>? { tryTake() }

    @inlinable
    func tryTake() -> Result<T, OneshotClosedError>? {
        let bits = shared.bits.load(ordering: .acquiring)
        if bits & OneshotBits.consumed != 0 { preconditionFailure("oneshot receiver polled after it completed") }
        if bits & OneshotBits.valueSent != 0 {
            shared.bits.bitwiseOr(OneshotBits.consumed, ordering: .relaxed)
            return .success(shared.value.take()!)
        }
        if bits & OneshotBits.senderClosed != 0 {
            shared.bits.bitwiseOr(OneshotBits.consumed, ordering: .relaxed)
            return .failure(OneshotClosedError())
        }
        return nil
    }

    deinit {
        let previous = shared.bits.bitwiseOr(OneshotBits.receiverClosed, ordering: .acquiringAndReleasing).oldValue
        if previous & OneshotBits.valueSent != 0 && previous & OneshotBits.consumed == 0 {
            shared.value = nil  // sent and never received: ours to drop
        }
    }
}
