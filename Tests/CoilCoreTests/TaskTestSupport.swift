@testable import CoilCore
import Synchronization
import XCTest

/// What a test counts.
enum TaskEvent: Hashable, Sendable {
    case polls, futureDrops, outputsMade, outputDrops, deallocs, schedules, yields
}

/// Exact counts of everything that happens to the tasks of one test.
final class TaskLog: Sendable {
    let counts = LockedValue<[TaskEvent: Int]>([:])

    func count(_ event: TaskEvent) -> Int { counts.withLock { $0[event, default: 0] } }
    func bump(_ event: TaskEvent) { counts.withLock { $0[event, default: 0] += 1 } }
}

/// Lives exactly as long as the task allocation that holds it (inside the scheduler value), so its
/// deinit counts task deallocations.
final class DeallocToken: Sendable {
    let log: TaskLog
    init(_ log: TaskLog) { self.log = log }
    deinit { log.bump(.deallocs) }
}

/// A deterministic scheduler: a FIFO of Notifieds that the test runs explicitly, counting every
/// schedule and yield. Each task gets its own value (and so its own DeallocToken).
struct CountingScheduler: TaskScheduler {
    final class Shared: @unchecked Sendable {
        // SAFETY: `queue` is behind its lock; `owned` is internally locked.
        let queue = LockedValue<[RawTask]>([])
        // Sharded, as the multi-thread runtime's list is: consecutive tasks land on different
        // shards, so every task test goes through more than one lock.
        let owned = OwnedTasks(shards: 4)
    }

    let shared: Shared
    let log: TaskLog
    let token: DeallocToken

    func schedule(_ task: consuming Notified) {
        log.bump(.schedules)
        let raw = task.intoRaw()
        shared.queue.withLock { $0.append(raw) }
    }

    func yieldNow(_ task: consuming Notified) {
        log.bump(.yields)
        let raw = task.intoRaw()
        shared.queue.withLock { $0.append(raw) }
    }

    func release(_ task: RawTask) -> Bool { shared.owned.remove(task) }
}

/// The test's runtime: spawn, run the queue, shut down; every count in `log`.
final class TestRuntime: @unchecked Sendable {
    let log = TaskLog()
    let shared = CountingScheduler.Shared()

    func spawn<F: Future & ~Copyable>(_ future: consuming F) -> JoinHandle<F.Output> {
        let scheduler = CountingScheduler(shared: shared, log: log, token: DeallocToken(log))
        var bound = shared.owned.bind(future, scheduler: scheduler)
        if let notified = bound.notified.take() { scheduler.schedule(notified) }
        return bound.handle
    }

    var queued: Int { shared.queue.withLock { $0.count } }

    /// Runs the first queued Notified; false if none.
    @discardableResult
    func runOne() -> Bool {
        let next = shared.queue.withLock { queue -> RawTask? in queue.isEmpty ? nil : queue.removeFirst() }
        guard let next else { return false }
        Notified(unsafeRaw: next).run()
        return true
    }

    @discardableResult
    func runAll() -> Int {
        var runs = 0
        while runOne() { runs += 1 }
        return runs
    }

    func shutdown() {
        shared.owned.closeAndShutdownAll()
        let leftovers = shared.queue.withLock { queue -> [RawTask] in
            defer { queue.removeAll() }
            return queue
        }
        for raw in leftovers { _ = Notified(unsafeRaw: raw) }
    }
}

/// A switch a test flips from outside a future: the future is pending until the gate opens, and
/// the gate keeps the future's latest waker to wake on open.
final class Gate: Sendable {
    struct State: ~Copyable {
        var open = false
        var waker: Waker? = nil
    }
    let state = LockedValue(State())

    /// Opens the gate and wakes the stored waker by value. Returns whether one was stored.
    @discardableResult
    func open() -> Bool {
        let waker = state.withLock { state -> Waker? in
            state.open = true
            return state.waker.take()
        }
        guard let waker else { return false }
        waker.wake()
        return true
    }

    var hasWaker: Bool { state.withLock { $0.waker != nil } }

    /// Drops the stored waker (its reference) without waking.
    func dropWaker() { _ = state.withLock { $0.waker.take() } }
}

/// Lives as long as a task's output, counting its drop.
final class TrackedOutput: Sendable {
    let value: Int
    let log: TaskLog
    init(_ value: Int, _ log: TaskLog) { self.value = value; self.log = log }
    deinit { log.bump(.outputDrops) }
}

/// Pending until its gate opens, then ready with a `TrackedOutput`. Counts polls and its own drop.
struct GatedFuture: Future, ~Copyable {
    let gate: Gate
    let log: TaskLog
    let value: Int

    init(_ gate: Gate, _ log: TaskLog, value: Int = 7) {
        self.gate = gate
        self.log = log
        self.value = value
    }

    mutating func poll(_ context: inout Context) -> Poll<TrackedOutput> {
        log.bump(.polls)
        let isOpen = gate.state.withLock { state -> Bool in
            if state.open { return true }
            if !(state.waker?.willWake(context.waker) ?? false) { state.waker = context.waker.clone() }
            return false
        }
        guard isOpen else { return .pending }
        log.bump(.outputsMade)
        return .ready(TrackedOutput(value, log))
    }

    deinit { log.bump(.futureDrops) }
}

/// Ready on its first poll, counting the poll and its own drop.
struct CountingReady: Future, ~Copyable {
    let log: TaskLog
    let value: Int

    mutating func poll(_ context: inout Context) -> Poll<TrackedOutput> {
        log.bump(.polls)
        return .ready(TrackedOutput(value, log))
    }

    deinit { log.bump(.futureDrops) }
}

/// Polls a JoinHandle once with `waker`.
func pollJoin<T>(_ handle: inout JoinHandle<T>, _ waker: borrowing Waker = Waker.noop) -> Poll<Result<T, JoinError>> {
    Context.withWaker(waker) { handle.poll(&$0) }
}

/// A waker that counts wakes, clones and drops, for checking what a future or task does with it.
final class CountingWaker: Sendable {
    let wakes = Atomic<Int>(0)
    let clones = Atomic<Int>(0)
    let drops = Atomic<Int>(0)

    nonisolated(unsafe) static let vtable = WakerVTable.makeStatic(WakerVTable(
        clone: { data in
            let me = Unmanaged<CountingWaker>.fromOpaque(data!)
            me.takeUnretainedValue().clones.add(1, ordering: .relaxed)
            _ = me.retain()
            return data
        },
        wake: { data in
            let me = Unmanaged<CountingWaker>.fromOpaque(data!)
            me.takeUnretainedValue().wakes.add(1, ordering: .relaxed)
            me.takeUnretainedValue().drops.add(1, ordering: .relaxed)
            me.release()
        },
        wakeByRef: { data in
            Unmanaged<CountingWaker>.fromOpaque(data!).takeUnretainedValue().wakes.add(1, ordering: .relaxed)
        },
        drop: { data in
            let me = Unmanaged<CountingWaker>.fromOpaque(data!)
            me.takeUnretainedValue().drops.add(1, ordering: .relaxed)
            me.release()
        }))

    /// A new waker owning one retain of this counter.
    func makeWaker() -> Waker {
        Waker(unsafeRaw: RawWaker(data: UnsafeRawPointer(Unmanaged.passRetained(self).toOpaque()),
                                  vtable: CountingWaker.vtable))
    }

    var counts: (wakes: Int, clones: Int, drops: Int) {
        (wakes.load(ordering: .relaxed), clones.load(ordering: .relaxed), drops.load(ordering: .relaxed))
    }
}
