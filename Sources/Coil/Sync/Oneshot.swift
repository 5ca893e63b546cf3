import CoilCore
import Synchronization

/// A channel for exactly one value (Tokio's `oneshot`): one allocation, shared by two
/// noncopyable halves. The receiver is a future of the value; dropping either half is seen by the
/// other (a send to a dropped receiver fails, a receiver whose sender was dropped unsent fails).
///
/// ```swift
/// let channel = Oneshot.channel(of: Int.self)
/// let tx = channel.sender, rx = channel.receiver
/// _ = runtime.spawn(pollFn { _ in tx.send(42); return .ready(()) })
/// let value = runtime.blockOn(rx)        // .success(42)
/// ```
///
/// The halves are `~Copyable`, as Tokio's are move-only: a half has one owner, and its drop is
/// what tells the other side. (Swift has no tuples of noncopyable values yet, so `channel` returns
/// a ``OneshotChannel`` whose two fields are taken apart as above.)
public enum Oneshot {
    /// A sender and its receiver.
    @inlinable
    public static func channel<T>(of type: T.Type = T.self) -> OneshotChannel<T> {
        let shared = OneshotState()
        return OneshotChannel(sender: OneshotSender(shared: shared), receiver: OneshotReceiver(shared: shared))
    }
}

/// The two halves of a new oneshot channel; take each field out with `let`.
@frozen
public struct OneshotChannel<T>: ~Copyable {
    public var sender: OneshotSender<T>
    public var receiver: OneshotReceiver<T>

    @inlinable
    init(sender: consuming OneshotSender<T>, receiver: consuming OneshotReceiver<T>) {
        self.sender = sender
        self.receiver = receiver
    }
}

/// Why a oneshot receive has no value: the sender was dropped without sending.
public struct OneshotClosedError: Error, Equatable, CustomStringConvertible {
    @inlinable public init() {}
    public var description: String { "oneshot sender dropped without sending" }
}

/// The bits of `OneshotState.bits`.
@usableFromInline
enum OneshotBits {
    /// The sender claimed its one send (set first, so two racing `send` calls cannot both write).
    @usableFromInline static let sendClaimed: UInt8 = 16
    @usableFromInline static let valueSent: UInt8 = 1
    @usableFromInline static let senderClosed: UInt8 = 2
    @usableFromInline static let receiverClosed: UInt8 = 4
    @usableFromInline static let consumed: UInt8 = 8
    /// The receiver's waker is in `OneshotState.waker` (see there for who may touch it).
    @usableFromInline static let receiverWaiting: UInt8 = 32
    /// Either side's end: after it, nothing more will arrive.
    @usableFromInline static var finished: UInt8 { valueSent | senderClosed }
}

/// The shared state of one channel, in one allocation: `bits`, which decides every race, the
/// receiver's waker, and raw room for the value.
///
/// The value: the sender writes it before it sets `valueSent` (release); the receiver reads it
/// after it sees the bit (acquire); whichever of "receiver closed" and "value sent" comes second
/// owns the value and drops it. So the state itself never holds a value when it is freed, and it
/// need not know the value's type: it is not generic, the halves' deinits reach it at fixed
/// offsets even where they run unspecialized, and freeing it looks up no generic metadata.
///
/// The waker (Tokio's oneshot protocol, with one read-modify-write on each side):
///   W1  While `receiverWaiting` is clear, only the receiver touches `waker`: it drops the old one
///       and stores a clone of its task's, then sets the bit.
///   W2  The side that ends the channel (a send, or the sender's drop) sets its bit with one RMW;
///       if that RMW saw `receiverWaiting`, the waker is now the ender's: it takes it out and
///       wakes it. The receiver never reads `waker` while the bit is set (it compares against
///       its own copy of what it stored), so the take does not race with it.
///   W3  A receiver polled by a different task clears the bit first; if the RMW shows the channel
///       ended meanwhile, the waker belongs to the ender (W2) and the receiver leaves it alone.
///   W4  Whatever is still in `waker` when the state is freed is dropped then.
///
/// The value sits in `storage` when it fits (32 bytes, 8-byte aligned: any reference, most
/// enums and small structs); a larger value goes in a heap cell allocated by the send, whose
/// address `storage` then holds.
@usableFromInline
final class OneshotState: @unchecked Sendable {
    // SAFETY: `storage` is touched by one side at a time, as `bits` hands it over, and `waker`
    // as W1-W4 say.
    @usableFromInline let bits = Atomic<UInt8>(0)
    @exclusivity(unchecked) @usableFromInline var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    @exclusivity(unchecked) @usableFromInline var waker: RawWaker? = nil

    #if DEBUG
    /// How many channel states are alive (debug builds only): the tests check that every path
    /// frees its state exactly once.
    static let alive = Atomic<Int>(0)
    #endif

    @usableFromInline init() {
        #if DEBUG
        Self.alive.add(1, ordering: .relaxed)
        #endif
    }

    deinit {
        if let raw = waker { raw.vtable.pointee.drop(raw.data) }  // W4
        #if DEBUG
        Self.alive.subtract(1, ordering: .relaxed)
        #endif
    }

    /// The ender's side of W2: `previous` is what its RMW saw.
    @inlinable
    func wakeReceiver(ifWaiting previous: UInt8) {
        guard previous & (OneshotBits.receiverWaiting | OneshotBits.receiverClosed) == OneshotBits.receiverWaiting else { return }
        if let raw = waker {
            waker = nil
            Waker(unsafeRaw: raw).wake()
        }
    }

    @inlinable
    static func fitsInline<T>(_: T.Type) -> Bool {
        MemoryLayout<T>.size <= MemoryLayout<(UInt64, UInt64, UInt64, UInt64)>.size && MemoryLayout<T>.alignment <= 8
    }

    /// Moves `value` in (the sender, before it publishes `valueSent`).
    @inlinable
    func put<T>(_ value: T) {
        withUnsafeMutablePointer(to: &storage) { room in
            if Self.fitsInline(T.self) {
                UnsafeMutableRawPointer(room).initializeMemory(as: T.self, to: value)
            } else {
                let cell = UnsafeMutablePointer<T>.allocate(capacity: 1)
                cell.initialize(to: value)
                UnsafeMutableRawPointer(room).storeBytes(of: UInt(bitPattern: cell), as: UInt.self)
            }
        }
    }

    /// Moves the value out (whoever owns it by the rule above).
    @inlinable
    func take<T>(_: T.Type) -> T {
        withUnsafeMutablePointer(to: &storage) { room in
            if Self.fitsInline(T.self) {
                return UnsafeMutableRawPointer(room).assumingMemoryBound(to: T.self).move()
            }
            let cell = UnsafeMutablePointer<T>(bitPattern: UnsafeMutableRawPointer(room).load(as: UInt.self))!
            defer { cell.deallocate() }
            return cell.move()
        }
    }
}

/// The sending half: `send` once. Dropping it unsent tells the receiver.
@frozen
public struct OneshotSender<T>: ~Copyable, @unchecked Sendable {
    // SAFETY: the shared state is synchronised by its atomic bits; the send is claimed atomically.
    @usableFromInline let shared: OneshotState

    @usableFromInline init(shared: OneshotState) { self.shared = shared }

    /// Sends `value`; gives it back as `.failure` if the receiver is gone or a value was sent
    /// already. (It borrows the sender, so that a closure that captures one can send; the second
    /// send is refused at run time.)
    @inlinable @discardableResult
    public func send(_ value: T) -> Result<Void, OneshotSendError<T>> {
        let claimed = shared.bits.bitwiseOr(OneshotBits.sendClaimed, ordering: .acquiring).oldValue
        guard claimed & (OneshotBits.sendClaimed | OneshotBits.receiverClosed) == 0 else {
            return .failure(OneshotSendError(value: value))
        }
        shared.put(value)
        let previous = shared.bits.bitwiseOr(OneshotBits.valueSent | OneshotBits.senderClosed,
                                             ordering: .acquiringAndReleasing).oldValue
        if previous & OneshotBits.receiverClosed != 0 {
            return .failure(OneshotSendError(value: shared.take(T.self)))
        }
        shared.wakeReceiver(ifWaiting: previous)
        return .success(())
    }

    /// Whether the receiver was dropped (a send would fail).
    public var isClosed: Bool { shared.bits.load(ordering: .acquiring) & OneshotBits.receiverClosed != 0 }

    deinit {
        guard shared.bits.load(ordering: .acquiring) & OneshotBits.sendClaimed == 0 else { return }
        let previous = shared.bits.bitwiseOr(OneshotBits.senderClosed, ordering: .acquiringAndReleasing).oldValue
        shared.wakeReceiver(ifWaiting: previous)
    }
}

/// A failed oneshot send: the receiver was gone; the value comes back.
public struct OneshotSendError<T>: Error {
    public let value: T
    @inlinable init(value: T) { self.value = value }
}

/// The receiving half: a future of the value, or of `OneshotClosedError` if the sender was dropped
/// without sending. Dropping it makes a later send fail (and drops a value already sent).
@frozen
public struct OneshotReceiver<T>: ~Copyable, Future, @unchecked Sendable {
    // SAFETY: see OneshotState; one task polls the receiver at a time.
    @usableFromInline let shared: OneshotState
    /// What this receiver last stored in `shared.waker`, to compare with (W2: it never reads
    /// the shared slot while the sender may take it). Not an owning reference.
    @usableFromInline var stored: RawWaker? = nil

    @usableFromInline init(shared: OneshotState) { self.shared = shared }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<T, OneshotClosedError>> {
        guard Coop.proceed(&context) else { return .pending }
        var bits = shared.bits.load(ordering: .acquiring)
        if let ready = take(bits) { return .ready(ready) }
        if bits & OneshotBits.receiverWaiting != 0 {
            if stored == context.waker.rawWaker { return .pending }  // the same task waits already
            bits = shared.bits.bitwiseAnd(~OneshotBits.receiverWaiting, ordering: .acquiringAndReleasing).newValue
            if bits & OneshotBits.finished != 0 {
                return .ready(take(bits)!)  // W3: ended meanwhile; the waker is the ender's
            }
        }
        // W1: the slot is ours.
        if let old = shared.waker { old.vtable.pointee.drop(old.data) }
        let raw = context.waker.clone().intoRaw()
        shared.waker = raw
        stored = raw
        bits = shared.bits.bitwiseOr(OneshotBits.receiverWaiting, ordering: .acquiringAndReleasing).newValue
        if let ready = take(bits) { return .ready(ready) }
        return .pending
    }

    /// The value if it was sent (once), the closed error if the sender is gone, nil otherwise.
    @inlinable
    public func tryReceive() -> Result<T, OneshotClosedError>? { take(shared.bits.load(ordering: .acquiring)) }

    /// The outcome, if `bits` (the current state, loaded with acquire) has one.
    @inlinable
    func take(_ bits: UInt8) -> Result<T, OneshotClosedError>? {
        if bits & OneshotBits.consumed != 0 { preconditionFailure("oneshot receiver polled after it completed") }
        // Once the sender has set `valueSent` or `senderClosed`, its only write to `bits` is a
        // repeated send's claim, which changes no bit (`sendClaimed` is already set, or the
        // sender is gone), and only this receiver writes otherwise; so it marks the outcome
        // consumed with a plain store.
        if bits & OneshotBits.valueSent != 0 {
            shared.bits.store(bits | OneshotBits.consumed, ordering: .relaxed)
            return .success(shared.take(T.self))
        }
        if bits & OneshotBits.senderClosed != 0 {
            shared.bits.store(bits | OneshotBits.consumed, ordering: .relaxed)
            return .failure(OneshotClosedError())
        }
        return nil
    }

    deinit {
        let previous = shared.bits.bitwiseOr(OneshotBits.receiverClosed, ordering: .acquiringAndReleasing).oldValue
        if previous & OneshotBits.valueSent != 0 && previous & OneshotBits.consumed == 0 {
            _ = shared.take(T.self)  // sent and never received: ours to drop
        }
    }
}
