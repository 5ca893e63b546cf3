import Synchronization

/// A single-threaded executor: tasks are polled only on the thread that calls `runUntilStalled()`
/// or `blockOn(_:)`, in the order they were woken (FIFO), which makes it deterministic for tests.
/// Wakers, join handles and abort handles may still be used from other threads.
///
/// ```swift
/// let executor = LocalExecutor()
/// let handle = executor.spawn(ready(2).map { $0 * 21 })
/// let result = executor.blockOn(handle)          // .success(42)
/// ```
///
/// Dropping the executor (or `shutdown()`) cancels every task it still owns.
public final class LocalExecutor {
    @usableFromInline let scheduler: LocalScheduler

    /// An executor with no tasks; nothing runs until `runUntilStalled`, `runOne` or `blockOn`.
    public init() {
        scheduler = LocalScheduler()
    }

    deinit { shutdown() }

    /// Spawns `future` as a task (one allocation) and queues its first poll.
    @inlinable
    public func spawn<F: Future & ~Copyable>(_ future: consuming F) -> JoinHandle<F.Output> {
        var bound = scheduler.owned.bind(future, scheduler: scheduler)
        if let notified = bound.notified.take() { scheduler.schedule(notified) }
        return bound.handle
    }

    /// Runs queued tasks until none is runnable. Returns how many polls ran.
    @discardableResult
    public func runUntilStalled() -> Int {
        var polls = 0
        while let task = scheduler.pop() {
            task.run()
            polls += 1
        }
        return polls
    }

    /// Runs at most one queued task. Returns whether one ran.
    @discardableResult
    public func runOne() -> Bool {
        guard let task = scheduler.pop() else { return false }
        task.run()
        return true
    }

    /// Drives `future` and the spawned tasks on this thread until `future` is ready, sleeping when
    /// nothing is runnable until a waker (from any thread) makes something runnable.
    public func blockOn<F: Future & ~Copyable>(_ future: consuming F) -> F.Output {
        // Tasks run in batches of at most 64 so the main future is polled again soon after a wake.
        drive(future, parker: scheduler.parker) {
            var ran = 0
            while ran < 64, let task = scheduler.pop() {
                task.run()
                ran += 1
            }
            return ran > 0
        }
    }

    /// Tasks spawned here that have not finished.
    public var aliveTasks: Int { scheduler.owned.count }

    /// Tasks waiting to be polled.
    public var queuedTasks: Int { scheduler.queue.withLock { $0.count } }

    /// Cancels every task: idle ones now (their futures are dropped on this thread), and empties the
    /// run queue. Later spawns are cancelled at once; later wakes are ignored.
    public func shutdown() {
        scheduler.owned.closeAndShutdownAll()
        scheduler.close()
    }
}

/// The scheduler behind `LocalExecutor`: a FIFO run queue threaded through the task headers'
/// queue links (no allocation per wake) under a lock, so that wakes from any thread are safe.
@usableFromInline
final class LocalScheduler: TaskScheduler, @unchecked Sendable {
    // SAFETY: every mutable field is behind `queue`'s lock, `owned`'s lock, or atomic.
    struct Queue: @unchecked Sendable {
        var head: RawTask? = nil
        var tail: RawTask? = nil
        var count = 0
        var closed = false
    }

    let queue = LockedValue(Queue())
    @usableFromInline let owned = OwnedTasks()
    let parker = ThreadParker()

    @usableFromInline init() {}

    @usableFromInline
    func schedule(_ task: consuming Notified) {
        let raw = task.intoRaw()
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            // SAFETY: rule 4, this Notified is the task's only one, so its queue link is ours.
            raw.queueNext = nil
            if let tail = queue.tail { tail.queueNext = raw } else { queue.head = raw }
            queue.tail = raw
            queue.count += 1
            return true
        }
        if accepted {
            parker.unpark()
        } else {
            _ = Notified(unsafeRaw: raw)  // closed: drop the reference
        }
    }

    @usableFromInline
    func release(_ task: RawTask) -> Bool { owned.remove(task) }

    func pop() -> Notified? {
        queue.withLock { queue -> Notified? in
            guard let head = queue.head else { return nil }
            queue.head = head.queueNext
            if queue.head == nil { queue.tail = nil }
            head.queueNext = nil
            queue.count -= 1
            return Notified(unsafeRaw: head)
        }
    }

    /// Refuses further Notifieds and drops the queued ones.
    func close() {
        queue.withLock { $0.closed = true }
        while let task = pop() { _ = consume task }
    }
}
