import Synchronization

/// What a task needs from the scheduler that owns it. All three may be called from any thread
/// (a waker can be woken anywhere), so conformers are `Sendable`.
public protocol TaskScheduler: Sendable {
    /// Queue `task` to be run (`task.run()`) on this scheduler.
    func schedule(_ task: consuming Notified)

    /// Queue `task`, which was woken while it was running, behind the other runnable tasks.
    func yieldNow(_ task: consuming Notified)

    /// The task finished: remove it from the owned list. Returns whether it was there, in which
    /// case the list's reference passes to the caller, who drops it.
    func release(_ task: RawTask) -> Bool
}

extension TaskScheduler {
    /// By default a yield is an ordinary schedule.
    public func yieldNow(_ task: consuming Notified) { schedule(task) }
}

/// The set of tasks a scheduler owns: one reference each, from spawn until the task is released at
/// completion or shut down. An intrusive doubly linked list through the task headers, under a lock
/// (only spawn, completion and shutdown take it, never a poll or a wake).
public struct OwnedTasks: ~Copyable, Sendable {
    struct List: @unchecked Sendable {
        // SAFETY: the links are only touched while the lock is held.
        var head: UnsafeMutableRawPointer? = nil
        var count = 0
        var closed = false
    }

    let list = LockedValue(List())

    /// An empty, open list.
    public init() {}

    /// A spawned task, as `bind` hands it back.
    @frozen
    public struct Bound<Success>: ~Copyable {
        /// The task's JoinHandle, for the spawner.
        public var handle: JoinHandle<Success>
        /// The first Notified, to schedule; nil when the list was closed and the task was shut down.
        public var notified: Notified?

        @inlinable init(handle: consuming JoinHandle<Success>, notified: consuming Notified?) {
            self.handle = handle
            self.notified = notified
        }
    }

    /// Allocates a task for `future` on `scheduler` (one allocation) and adds it to the list. If the
    /// list is closed the task is cancelled at once and its handle will report it.
    @inlinable
    public func bind<F: Future & ~Copyable, S: TaskScheduler>(
        _ future: consuming F, scheduler: S
    ) -> Bound<F.Output> {
        let task = TypedTaskOps<F, F.Output, S>.allocate(future: future, scheduler: scheduler)
        let handle = JoinHandle<F.Output>(unsafeRaw: task)
        let notified = Notified(unsafeRaw: task)
        guard insert(task) else {
            _ = consume notified  // drops its reference
            OwnedTask(unsafeRaw: task).shutdown()
            return Bound(handle: handle, notified: nil)
        }
        return Bound(handle: handle, notified: notified)
    }

    @usableFromInline
    func insert(_ task: RawTask) -> Bool {
        list.withLock { list in
            guard !list.closed else { return false }
            task.ownedNext = list.head
            if let head = list.head { RawTask(head).ownedPrev = task.pointer }
            list.head = task.pointer
            list.count += 1
            return true
        }
    }

    /// Unlinks `task` if it is in the list; returns whether it was (see `TaskScheduler.release`).
    public func remove(_ task: RawTask) -> Bool {
        list.withLock { list in
            let linked = list.head == task.pointer || task.ownedPrev != nil
            guard linked else { return false }
            Self.unlink(task, from: &list)
            return true
        }
    }

    static func unlink(_ task: RawTask, from list: inout List) {
        if let previous = task.ownedPrev { RawTask(previous).ownedNext = task.ownedNext } else { list.head = task.ownedNext }
        if let next = task.ownedNext { RawTask(next).ownedPrev = task.ownedPrev }
        task.ownedPrev = nil
        task.ownedNext = nil
        list.count -= 1
    }

    /// How many tasks are alive and owned.
    public var count: Int { list.withLock { $0.count } }

    /// Whether `closeAndShutdownAll` ran: new tasks are cancelled at once.
    public var isClosed: Bool { list.withLock { $0.closed } }

    /// Refuses further tasks, then shuts down every owned task: idle ones are cancelled here (their
    /// futures dropped on this thread), running ones by their poller. Returns how many were shut down.
    @discardableResult
    public func closeAndShutdownAll() -> Int {
        list.withLock { $0.closed = true }
        var shutDown = 0
        while let task = popFirst() {
            task.shutdown()
            shutDown += 1
        }
        return shutDown
    }

    func popFirst() -> OwnedTask? {
        list.withLock { list -> OwnedTask? in
            guard let head = list.head else { return nil }
            let task = RawTask(head)
            Self.unlink(task, from: &list)
            return OwnedTask(unsafeRaw: task)
        }
    }
}
