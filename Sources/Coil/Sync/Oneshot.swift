import CoilCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// A channel for exactly one value (Tokio's `oneshot`): one allocation (no reference count:
/// the half that lets go second frees it), shared by two noncopyable halves. The receiver is a
/// future of the value; dropping either half is seen by the other (a send to a dropped receiver
/// fails, a receiver whose sender was dropped unsent fails).
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
        let shared = OneshotState.allocate()
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

/// The bits of `OneshotState`'s word.
@usableFromInline
enum OneshotBits {
    @usableFromInline static let valueSent: UInt8 = 1
    @usableFromInline static let senderClosed: UInt8 = 2
    @usableFromInline static let receiverClosed: UInt8 = 4
    /// The sender claimed its one send (set first, so two racing `send` calls cannot both write).
    @usableFromInline static let sendClaimed: UInt8 = 16
    /// The receiver's waker is in the waker slot (see `OneshotState` for who may touch it).
    @usableFromInline static let receiverWaiting: UInt8 = 32
    /// The sender will not touch the state again (R1).
    @usableFromInline static let senderReleased: UInt8 = 64
    /// The receiver will not touch the state again (R1).
    @usableFromInline static let receiverReleased: UInt8 = 128
    /// Either side's end: after it, nothing more will arrive.
    @usableFromInline static var finished: UInt8 { valueSent | senderClosed }
}

/// The shared state of one channel: one `malloc`'d block holding the bits, which decide every
/// race, the receiver's waker and raw room for the value. No Swift object, no reference count.
///
/// Lifetime (R1): each half sets its released bit with one read-modify-write as its very last
/// access to the state; the half whose RMW finds the other's bit already set frees the block.
/// The sender releases in its deinit; the receiver when it takes the outcome (a receiver that
/// has its outcome never looks at the state again: it remembers that it finished) or, failing
/// that, in its deinit.
///
/// The value: the sender writes it before it sets `valueSent` (release); the receiver reads it
/// after it sees the bit (acquire). Whichever of "receiver closed" and "value sent" comes second
/// owns a value that was never received and drops it, before it releases the state. So the
/// block never holds a value when it is freed, and it need not know the value's type: it is not
/// generic, and freeing it looks up no generic metadata.
///
/// The waker (Tokio's oneshot protocol, with one read-modify-write on each side):
///   W1  While `receiverWaiting` is clear, only the receiver touches the slot: it drops the old
///       waker and stores a clone of its task's, then sets the bit.
///   W2  The side that ends the channel (a send, or the sender's drop) sets its bit with one RMW;
///       if that RMW saw `receiverWaiting`, the waker is now the ender's: it takes it out and
///       wakes it. The receiver never reads the slot while the bit is set (it compares against
///       its own copy of what it stored), so the take does not race with it.
///   W3  A receiver polled by a different task clears the bit first; if the RMW shows the channel
///       ended meanwhile, the waker belongs to the ender (W2) and the receiver leaves it alone.
///   W4  Whatever is still in the slot when the state is freed is dropped then.
///
/// The value sits in the block's room when it fits (32 bytes, aligned to 16, malloc's own
/// alignment: any reference, most enums and small structs); a larger value goes in a heap cell
/// allocated by the send, whose address the room then holds.
@usableFromInline
struct OneshotState: @unchecked Sendable {
    // SAFETY: the value room is touched by one side at a time, as `bits` hands it over; the
    // waker slot as W1-W4 say; the block itself lives until both halves have released it (R1).
    //
    // The block: the bits at offset 0, the waker slot at `wakerOffset`, the value room at
    // `roomOffset`. Three separately bound regions rather than one struct, so that writing the
    // value or the waker is not (for ThreadSanitizer) also an access to the atomic.
    @usableFromInline static var wakerOffset: Int { 8 }
    @usableFromInline static var roomOffset: Int { 32 }
    @usableFromInline static var roomSize: Int { 32 }
    @usableFromInline static var blockSize: Int { roomOffset + roomSize }

    @usableFromInline let block: UnsafeMutableRawPointer

    #if DEBUG
    /// How many channel states are alive (debug builds only): the tests check that every path
    /// frees its state exactly once.
    static let alive = Atomic<Int>(0)
    #endif

    @inlinable init(block: UnsafeMutableRawPointer) { self.block = block }

    /// A new state (malloc: `UnsafeMutableRawPointer.allocate` would go through posix_memalign).
    @inlinable
    static func allocate() -> OneshotState {
        precondition(MemoryLayout<RawWaker?>.size <= roomOffset - wakerOffset)
        guard let block = malloc(blockSize) else { fatalError("out of memory allocating a oneshot channel") }
        block.bindMemory(to: Atomic<UInt8>.self, capacity: 1).initialize(to: Atomic(0))
        (block + wakerOffset).bindMemory(to: RawWaker?.self, capacity: 1).initialize(to: nil)
        #if DEBUG
        countAllocation()
        #endif
        return OneshotState(block: block)
    }

    #if DEBUG
    @usableFromInline static func countAllocation() { alive.add(1, ordering: .relaxed) }
    #endif

    @inlinable var bits: UnsafeMutablePointer<Atomic<UInt8>> { block.assumingMemoryBound(to: Atomic<UInt8>.self) }
    @inlinable var waker: UnsafeMutablePointer<RawWaker?> { (block + Self.wakerOffset).assumingMemoryBound(to: RawWaker?.self) }
    @inlinable var room: UnsafeMutableRawPointer { block + Self.roomOffset }

    /// Frees the block: both halves have released it (R1).
    @usableFromInline
    func deallocate() {
        if let raw = waker.pointee { raw.vtable.pointee.drop(raw.data) }  // W4
        waker.deinitialize(count: 1)
        bits.deinitialize(count: 1)
        free(block)
        #if DEBUG
        Self.alive.subtract(1, ordering: .relaxed)
        #endif
    }

    /// Sets `bitsToSet`, which include the caller's released bit, as the caller's last access
    /// (R1); frees the block if the other half had released it already.
    @inlinable
    func release(setting bitsToSet: UInt8, otherReleased: UInt8) {
        let previous = bits.pointee.bitwiseOr(bitsToSet, ordering: .acquiringAndReleasing).oldValue
        if previous & otherReleased != 0 { deallocate() }
    }

    /// The ender's side of W2: `previous` is what its RMW saw.
    @inlinable
    func wakeReceiver(ifWaiting previous: UInt8) {
        guard previous & (OneshotBits.receiverWaiting | OneshotBits.receiverClosed) == OneshotBits.receiverWaiting else { return }
        if let raw = waker.pointee {
            waker.pointee = nil
            Waker(unsafeRaw: raw).wake()
        }
    }

    @inlinable
    static func fitsInline<T>(_: T.Type) -> Bool {
        MemoryLayout<T>.size <= roomSize && MemoryLayout<T>.alignment <= 16
    }

    /// Moves `value` in (the sender, before it publishes `valueSent`).
    @inlinable
    func put<T>(_ value: T) {
        if Self.fitsInline(T.self) {
            room.initializeMemory(as: T.self, to: value)
        } else {
            let boxed = UnsafeMutablePointer<T>.allocate(capacity: 1)
            boxed.initialize(to: value)
            room.storeBytes(of: UInt(bitPattern: boxed), as: UInt.self)
        }
    }

    /// Moves the value out (whoever owns it by the rule above).
    @inlinable
    func take<T>(_: T.Type) -> T {
        if Self.fitsInline(T.self) {
            return room.assumingMemoryBound(to: T.self).move()
        }
        let boxed = UnsafeMutablePointer<T>(bitPattern: room.load(as: UInt.self))!
        defer { boxed.deallocate() }
        return boxed.move()
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
        let claimed = shared.bits.pointee.bitwiseOr(OneshotBits.sendClaimed, ordering: .acquiring).oldValue
        guard claimed & (OneshotBits.sendClaimed | OneshotBits.receiverClosed) == 0 else {
            return .failure(OneshotSendError(value: value))
        }
        shared.put(value)
        let previous = shared.bits.pointee.bitwiseOr(OneshotBits.valueSent | OneshotBits.senderClosed,
                                              ordering: .acquiringAndReleasing).oldValue
        if previous & OneshotBits.receiverClosed != 0 {
            return .failure(OneshotSendError(value: shared.take(T.self)))
        }
        shared.wakeReceiver(ifWaiting: previous)
        return .success(())
    }

    /// Whether the receiver was dropped or has taken its outcome (a send would fail).
    public var isClosed: Bool { shared.bits.pointee.load(ordering: .acquiring) & OneshotBits.receiverClosed != 0 }

    deinit {
        // No send can run now (a deinit has the sender to itself), so the load decides.
        if shared.bits.pointee.load(ordering: .acquiring) & OneshotBits.sendClaimed == 0 {
            let previous = shared.bits.pointee.bitwiseOr(OneshotBits.senderClosed, ordering: .acquiringAndReleasing).oldValue
            shared.wakeReceiver(ifWaiting: previous)
        }
        shared.release(setting: OneshotBits.senderReleased, otherReleased: OneshotBits.receiverReleased)
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
    /// What this receiver last stored in the waker slot, to compare with (W2: it never reads the
    /// slot while the sender may take it). Not an owning reference. `finishedMark` once the
    /// receiver has taken its outcome and released the state (R1): it must never touch it again.
    /// (A mark here rather than a flag of its own: one byte more would push a future holding an
    /// optional receiver, and so its task, into a larger malloc size class.)
    @usableFromInline var stored: RawWaker? = nil

    /// A value no real waker has (its "vtable" is an address nothing is mapped at); only compared.
    @inlinable static var finishedMark: RawWaker { RawWaker(data: nil, vtable: UnsafePointer(bitPattern: 16)!) }

    @inlinable var finished: Bool { stored == Self.finishedMark }

    @usableFromInline init(shared: OneshotState) { self.shared = shared }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<T, OneshotClosedError>> {
        precondition(!finished, "oneshot receiver polled after it completed")
        guard Coop.proceed(&context) else { return .pending }
        var bits = shared.bits.pointee.load(ordering: .acquiring)
        if let ready = take(bits) { return .ready(ready) }
        if bits & OneshotBits.receiverWaiting != 0 {
            if stored == context.waker.rawWaker { return .pending }  // the same task waits already
            bits = shared.bits.pointee.bitwiseAnd(~OneshotBits.receiverWaiting, ordering: .acquiringAndReleasing).newValue
            if bits & OneshotBits.finished != 0 {
                return .ready(take(bits)!)  // W3: ended meanwhile; the waker is the ender's
            }
        }
        // W1: the slot is ours.
        if let old = shared.waker.pointee { old.vtable.pointee.drop(old.data) }
        let raw = context.waker.clone().intoRaw()
        shared.waker.pointee = raw
        stored = raw
        bits = shared.bits.pointee.bitwiseOr(OneshotBits.receiverWaiting, ordering: .acquiringAndReleasing).newValue
        if let ready = take(bits) { return .ready(ready) }
        return .pending
    }

    /// The value if it was sent (once), the closed error if the sender is gone, nil otherwise.
    /// After it returns an outcome the receiver is finished (as after a ready poll).
    @inlinable
    public mutating func tryReceive() -> Result<T, OneshotClosedError>? {
        precondition(!finished, "oneshot receiver used after it completed")
        return take(shared.bits.pointee.load(ordering: .acquiring))
    }

    /// The outcome, if `bits` (the current state, loaded with acquire) has one; then releases the
    /// state (R1), in the same RMW that closes the receiver.
    @inlinable
    mutating func take(_ bits: UInt8) -> Result<T, OneshotClosedError>? {
        let outcome: Result<T, OneshotClosedError>
        if bits & OneshotBits.valueSent != 0 {
            outcome = .success(shared.take(T.self))
        } else if bits & OneshotBits.senderClosed != 0 {
            outcome = .failure(OneshotClosedError())
        } else {
            return nil
        }
        stored = Self.finishedMark
        shared.release(setting: OneshotBits.receiverClosed | OneshotBits.receiverReleased,
                       otherReleased: OneshotBits.senderReleased)
        return outcome
    }

    deinit {
        guard !finished else { return }  // released already
        let previous = shared.bits.pointee.bitwiseOr(OneshotBits.receiverClosed, ordering: .acquiringAndReleasing).oldValue
        if previous & OneshotBits.valueSent != 0 {
            _ = shared.take(T.self)  // sent and never received: ours to drop, before we release
        }
        if previous & OneshotBits.senderReleased != 0 {
            shared.deallocate()  // the sender is gone for good: nobody else can touch the state
        } else {
            shared.release(setting: OneshotBits.receiverReleased, otherReleased: OneshotBits.senderReleased)
        }
    }
}
