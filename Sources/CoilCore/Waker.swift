import CCoilCore
/// The four operations every kind of waker implements, as C function pointers so that a vtable is a
/// plain 32-byte value that can live in static storage.
///
/// A waker is `(data, vtable)`. `data` is whatever the vtable's functions need (a task header, a
/// parker, nothing). The functions must be thread-safe: a waker may be woken, cloned or dropped on any
/// thread. `clone` returns the data pointer for a new waker that shares this vtable and owns its own
/// reference; `wake` consumes the reference; `wakeByRef` does not; `drop` releases the reference.
public struct WakerVTable: Sendable {
    public let clone: @convention(c) (UnsafeRawPointer?) -> UnsafeRawPointer?
    public let wake: @convention(c) (UnsafeRawPointer?) -> Void
    public let wakeByRef: @convention(c) (UnsafeRawPointer?) -> Void
    public let drop: @convention(c) (UnsafeRawPointer?) -> Void

    /// A vtable from four functions (see the type's documentation for their contracts).
    public init(
        clone: @convention(c) (UnsafeRawPointer?) -> UnsafeRawPointer?,
        wake: @convention(c) (UnsafeRawPointer?) -> Void,
        wakeByRef: @convention(c) (UnsafeRawPointer?) -> Void,
        drop: @convention(c) (UnsafeRawPointer?) -> Void
    ) {
        self.clone = clone
        self.wake = wake
        self.wakeByRef = wakeByRef
        self.drop = drop
    }

    /// Copies `vtable` into storage that is never freed and returns its address, which is what a
    /// `RawWaker` points at. Call it once per kind of waker (e.g. from a `static let`), never per
    /// waker: that one allocation is the only one a custom waker kind ever costs.
    public static func makeStatic(_ vtable: WakerVTable) -> UnsafePointer<WakerVTable> {
        let storage = UnsafeMutablePointer<WakerVTable>.allocate(capacity: 1)
        storage.initialize(to: vtable)
        return UnsafePointer(storage)
    }
}

/// The unowned parts of a waker. Copying a `RawWaker` does not copy the reference it stands for;
/// only `Waker` owns one. Use it to build wakers from a custom vtable (`Waker(unsafeRaw:)`).
public struct RawWaker: @unchecked Sendable, Equatable {
    public let data: UnsafeRawPointer?
    public let vtable: UnsafePointer<WakerVTable>

    /// The parts of a waker; owns nothing until given to `Waker(unsafeRaw:)`.
    public init(data: UnsafeRawPointer?, vtable: UnsafePointer<WakerVTable>) {
        self.data = data
        self.vtable = vtable
    }
}

/// A handle that makes its task (or thread, or whatever the vtable says) runnable again.
///
/// A `Waker` owns one reference to what it wakes; it cannot be copied, only `clone()`d, and dropping
/// it releases the reference. Waking consumes it; `wakeByRef()` keeps it. Two wakers that would wake
/// the same thing compare equal under `willWake(_:)`, which lets a future skip replacing a stored
/// waker with an identical one.
///
/// ```swift
/// var stored: Waker? = nil
/// func poll(_ context: inout Context) -> Poll<Int> {
///     if let value = sharedValue { return .ready(value) }
///     if !(stored?.willWake(context.waker) ?? false) { stored = context.waker.clone() }
///     return .pending
/// }
/// ```
@frozen
public struct Waker: ~Copyable, @unchecked Sendable {
    // SAFETY: the vtable functions are required to be thread-safe, so a Waker may cross threads.
    //
    // Both words are stored as optionals, which leaves the type with no spare bit patterns, so
    // `Waker?` carries its own tag byte. With a spare pattern (a non-optional vtable pointer), Swift
    // 6.3 miscompiles optional chaining on a borrowed `Waker?` after `take()`: `take()` writes nil
    // into the vtable word, but `waker?.clone()` still takes the `.some` branch and calls through a
    // null vtable. WakerTests.testOptionalChainingAfterTake guards this.
    @usableFromInline let vtable: UnsafePointer<WakerVTable>?
    @usableFromInline let data: UnsafeRawPointer?

    /// The unowned parts.
    @inlinable var raw: RawWaker { RawWaker(data: data, vtable: vtable.unsafelyUnwrapped) }

    /// Takes ownership of one reference described by `raw`; the vtable's `drop` releases it when this
    /// waker goes away.
    @inlinable
    public init(unsafeRaw raw: RawWaker) {
        self.vtable = raw.vtable
        self.data = raw.data
    }

    /// A new waker for the same target, owning its own reference.
    @inlinable
    public func clone() -> Waker {
        Waker(unsafeRaw: RawWaker(data: raw.vtable.pointee.clone(raw.data), vtable: raw.vtable))
    }

    /// Wakes the target, giving it this waker's reference.
    @inlinable
    public consuming func wake() {
        let raw = self.raw
        discard self
        raw.vtable.pointee.wake(raw.data)
    }

    /// Wakes the target and keeps this waker.
    @inlinable
    public func wakeByRef() {
        raw.vtable.pointee.wakeByRef(raw.data)
    }

    /// Whether waking `other` would wake the same target as waking this one (same data and vtable).
    @inlinable
    public func willWake(_ other: borrowing Waker) -> Bool {
        raw == other.raw
    }

    /// Gives up ownership without dropping: the caller now owns the reference `raw` stands for.
    @inlinable
    public consuming func intoRaw() -> RawWaker {
        let raw = self.raw
        discard self
        return raw
    }

    /// The unowned parts, for comparisons and diagnostics.
    @inlinable
    public var rawWaker: RawWaker { raw }

    @inlinable
    deinit {
        raw.vtable.pointee.drop(raw.data)
    }
}

extension Waker {
    /// A waker that does nothing when woken, cloned or dropped. Costs no allocation.
    public static var noop: Waker {
        Waker(unsafeRaw: RawWaker(data: nil, vtable: noopWakerVTable))
    }
}

@_cdecl("coil__noop_waker_clone") func noopWakerClone(_ data: UnsafeRawPointer?) -> UnsafeRawPointer? { data }
@_cdecl("coil__noop_waker_wake") func noopWakerWake(_ data: UnsafeRawPointer?) {}

/// The no-op waker's vtable (static storage in CCoilCore; its wake, wakeByRef and drop are all
/// `noopWakerWake`).
var noopWakerVTable: UnsafePointer<WakerVTable> {
    coil_noop_waker_vtable_address().assumingMemoryBound(to: WakerVTable.self)
}

/// A waker target that is an object: subclass it, override `wake()`, and `makeWaker()` hands
/// out wakers that each hold one strong reference to it (cloning retains, dropping releases).
/// `wake()` may be called on any thread and must not block. One shared vtable serves every
/// subclass, so a new kind of waker is a class, not a vtable.
///
/// ```swift
/// final class Flag: WakerTarget, @unchecked Sendable {
///     let raised = Atomic<Bool>(false)
///     override func wake() { raised.store(true, ordering: .releasing) }
/// }
/// let waker = Flag().makeWaker()
/// ```
open class WakerTarget: @unchecked Sendable {
    // SAFETY: subclasses promise a thread-safe `wake()`; the vtable only retains and releases.
    public init() {}

    /// Called for every wake (by value or by reference) of a waker made by `makeWaker()`.
    open func wake() {}

    /// A waker owning one retain of this object.
    public final func makeWaker() -> Waker {
        Waker(unsafeRaw: RawWaker(data: UnsafeRawPointer(Unmanaged.passRetained(self).toOpaque()),
                                  vtable: wakerTargetVTable))
    }

    static func from(_ data: UnsafeRawPointer?) -> Unmanaged<WakerTarget> { .fromOpaque(data!) }
}

// Each function's data is a +1 reference to a WakerTarget made by makeWaker() or clone: wake and
// drop consume that reference, clone creates one, wakeByRef borrows it.
@_cdecl("coil__waker_target_clone")
func wakerTargetClone(_ data: UnsafeRawPointer?) -> UnsafeRawPointer? {
    _ = WakerTarget.from(data).retain()
    return data
}

@_cdecl("coil__waker_target_wake")
func wakerTargetWake(_ data: UnsafeRawPointer?) {
    let target = WakerTarget.from(data)
    target.takeUnretainedValue().wake()
    target.release()
}

@_cdecl("coil__waker_target_wake_by_ref")
func wakerTargetWakeByRef(_ data: UnsafeRawPointer?) { WakerTarget.from(data).takeUnretainedValue().wake() }

@_cdecl("coil__waker_target_drop")
func wakerTargetDrop(_ data: UnsafeRawPointer?) { WakerTarget.from(data).release() }

/// WakerTarget's vtable (static storage in CCoilCore).
var wakerTargetVTable: UnsafePointer<WakerVTable> {
    coil_waker_target_vtable_address().assumingMemoryBound(to: WakerVTable.self)
}
