import CCoil
import CoilCore

/// Cooperative scheduling: each task poll gets a budget (128 units by default); every Coil future
/// that could otherwise keep returning ready takes one unit per poll. When the budget is spent
/// the future wakes its task and returns pending, so the worker gets to run other tasks, timers
/// and completions even if this task never waits.
public enum Coop {
    /// Takes one unit of the current poll's budget. When none is left, wakes the task (so it runs
    /// again after the others) and returns false: the caller must return `.pending`. Outside a
    /// budgeted poll (no runtime) it always returns true.
    @inlinable
    public static func proceed(_ context: inout Context) -> Bool {
        if coil_context_take_budget() { return true }
        context.wakeAfterPoll()
        return false
    }

    /// Units left in the current poll's budget, or nil when unconstrained.
    public static var remaining: Int? {
        let budget = coil_context_budget()
        return budget < 0 ? nil : Int(budget)
    }

    /// Runs `body` with an unconstrained budget (for a future that must make progress, such as a
    /// timeout's timer after its inner future spent the budget).
    @inlinable
    public static func unconstrained<R>(_ body: () -> R) -> R {
        let saved = coil_context_budget()
        coil_context_set_budget(-1)
        defer { coil_context_set_budget(saved) }
        return body()
    }
}
