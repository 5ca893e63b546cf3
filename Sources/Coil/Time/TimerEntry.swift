import Synchronization

/// One armed timer: a deadline, the waker to wake at it, and the links of the wheel slot it sits
/// in. Allocated when a `Sleep` first has to wait (a sleep that is already due allocates nothing).
///
/// Ownership: the `Sleep` future holds one reference; the wheel (or the runtime's list of timers
/// registered from outside the workers) holds another while the entry is linked. `state` decides
/// the race between firing and cancelling: whoever moves it out of `armed` wins.
final class TimerEntry: AtomicWaker, @unchecked Sendable {
    // SAFETY: `prev`, `next`, `level` and `slot` are touched only by the thread that owns the
    // wheel the entry is in (`wheelID` names it); the waker slot (inherited from AtomicWaker) is
    // lock-free; `state` is atomic.
    static let armed: UInt8 = 0, fired: UInt8 = 1, cancelled: UInt8 = 2

    /// Milliseconds on the monotonic clock (`MonotonicTime.milliseconds()`).
    let deadline: UInt64
    let state = Atomic<UInt8>(TimerEntry.armed)
    /// The address of the worker whose wheel holds the entry; 0 while it is in no wheel.
    let wheelID = Atomic<Int>(0)

    var prev: Unmanaged<TimerEntry>? = nil
    var next: Unmanaged<TimerEntry>? = nil
    var level: Int = 0
    var slot: Int = 0

    init(deadline: UInt64) {
        self.deadline = deadline
        super.init()
    }

    var hasFired: Bool { state.load(ordering: .acquiring) == TimerEntry.fired }
    var isCancelled: Bool { state.load(ordering: .relaxed) == TimerEntry.cancelled }

    /// The deadline passed: marks the entry fired and wakes its waker, unless it was cancelled.
    func fire() {
        if state.compareExchange(expected: TimerEntry.armed, desired: TimerEntry.fired, ordering: .acquiringAndReleasing).exchanged {
            wake()
        }
    }

    /// The sleep was dropped first. Returns whether the entry was still armed.
    func cancel() -> Bool {
        state.compareExchange(expected: TimerEntry.armed, desired: TimerEntry.cancelled, ordering: .acquiringAndReleasing).exchanged
    }
}

extension MonotonicTime {
    /// Whole milliseconds on CLOCK_MONOTONIC, rounded down.
    @inline(__always)
    static func milliseconds() -> UInt64 { nanoseconds() / 1_000_000 }

    /// The millisecond tick at or after `nanoseconds` (a timer never fires early).
    static func deadlineTick(nanoseconds: UInt64) -> UInt64 {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(999_999)
        return overflow ? UInt64.max / 1_000_000 : sum / 1_000_000
    }

    /// The tick `duration` from now (now itself for a zero or negative duration: ready at once).
    static func deadlineTick(after duration: Duration) -> UInt64 {
        let now = nanoseconds()
        if duration <= .zero { return now / 1_000_000 }
        let (sum, overflow) = now.addingReportingOverflow(nanoseconds(duration))
        return deadlineTick(nanoseconds: overflow ? UInt64.max / 2 : sum)
    }

    /// The tick of a `ContinuousClock` instant.
    static func deadlineTick(at instant: ContinuousClock.Instant) -> UInt64 {
        let remaining = ContinuousClock.now.duration(to: instant)
        return remaining <= .zero ? milliseconds() : deadlineTick(after: remaining)
    }
}
