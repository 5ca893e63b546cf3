import CoilCore

/// What an `Interval` does when ticks were missed (the task was busy past one or more deadlines).
public enum MissedTickBehavior: Sendable {
    /// Fire the missed ticks back to back until caught up (the default, as in Tokio).
    case burst
    /// Start the schedule again from now: the next tick is one period after this one fired.
    case delay
    /// Drop the missed ticks: the next tick is the next multiple of the period on the original
    /// schedule.
    case skip
}

/// Ticks every `period`. The first tick completes at once. Not shared between tasks.
///
/// ```swift
/// let ticker = interval(every: .milliseconds(100))
/// runtime.blockOn(ticker.tick())   // at once
/// runtime.blockOn(ticker.tick())   // 100 ms later
/// ```
public final class Interval {
    public let period: Duration
    public var missedTickBehavior: MissedTickBehavior
    private let periodTicks: UInt64
    private var nextDeadline: UInt64
    private var delay: Sleep? = nil

    init(start: UInt64, period: Duration, behavior: MissedTickBehavior) {
        precondition(period > .zero, "interval period must be positive")
        self.period = period
        periodTicks = max(1, MonotonicTime.nanoseconds(period) / 1_000_000)
        nextDeadline = start
        missedTickBehavior = behavior
    }

    /// A future of the next tick; its output is the tick's scheduled time.
    public func tick() -> Tick { Tick(interval: self) }

    /// Restarts the schedule: the next tick is one period from now.
    public func reset() {
        nextDeadline = MonotonicTime.deadlineTick(nanoseconds: MonotonicTime.nanoseconds()) + periodTicks
        delay = nil
    }

    func pollTick(_ context: inout Context) -> Poll<ContinuousClock.Instant> {
        guard Coop.proceed(&context) else { return .pending }
        if delay == nil { delay = Sleep(deadline: nextDeadline) }
        guard case .ready = delay!.pollUnbudgeted(&context) else { return .pending }
        delay = nil
        let fired = nextDeadline
        let now = MonotonicTime.milliseconds()
        switch missedTickBehavior {
        case .burst:
            nextDeadline = fired + periodTicks
        case .delay:
            nextDeadline = MonotonicTime.deadlineTick(nanoseconds: MonotonicTime.nanoseconds()) + periodTicks
        case .skip:
            nextDeadline = fired + periodTicks * ((now - fired) / periodTicks + 1)
        }
        let nowNanoseconds = MonotonicTime.nanoseconds()
        let firedNanoseconds = fired &* 1_000_000
        let late = nowNanoseconds > firedNanoseconds ? Duration.nanoseconds(Int64(nowNanoseconds - firedNanoseconds)) : .zero
        return .ready(ContinuousClock.now - late)
    }

    /// The future `tick()` returns.
    public struct Tick: Future {
        let interval: Interval
        public mutating func poll(_ context: inout Context) -> Poll<ContinuousClock.Instant> {
            interval.pollTick(&context)
        }
    }
}

/// An interval whose first tick is now and then every `period`.
public func interval(every period: Duration, missedTicks: MissedTickBehavior = .burst) -> Interval {
    Interval(start: MonotonicTime.milliseconds(), period: period, behavior: missedTicks)
}

/// An interval whose first tick is at `start`.
public func interval(startingAt start: ContinuousClock.Instant, every period: Duration,
                     missedTicks: MissedTickBehavior = .burst) -> Interval {
    Interval(start: MonotonicTime.deadlineTick(at: start), period: period, behavior: missedTicks)
}
