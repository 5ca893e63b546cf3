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

    // The three above, called on the scheduler where it lies in the task. The task's operations
    // run unspecialized, and calling a method of a generic `S` there copies the scheduler out
    // through its value witnesses (a copy, the call, a destroy) on every schedule, yield and
    // completion. These requirements have default implementations, so their witnesses are
    // emitted, specialized, where each scheduler type conforms (as `Future._pollStage` is).
    // Don't implement them yourself.
    static func _schedule(at scheduler: UnsafeRawPointer, _ task: consuming Notified)
    static func _yieldNow(at scheduler: UnsafeRawPointer, _ task: consuming Notified)
    static func _release(at scheduler: UnsafeRawPointer, _ task: RawTask) -> Bool
}

extension TaskScheduler {
    /// By default a yield is an ordinary schedule.
    public func yieldNow(_ task: consuming Notified) { schedule(task) }

    @inlinable
    public static func _schedule(at scheduler: UnsafeRawPointer, _ task: consuming Notified) {
        scheduler.assumingMemoryBound(to: Self.self).pointee.schedule(task)
    }

    @inlinable
    public static func _yieldNow(at scheduler: UnsafeRawPointer, _ task: consuming Notified) {
        scheduler.assumingMemoryBound(to: Self.self).pointee.yieldNow(task)
    }

    @inlinable
    public static func _release(at scheduler: UnsafeRawPointer, _ task: RawTask) -> Bool {
        scheduler.assumingMemoryBound(to: Self.self).pointee.release(task)
    }
}

/// The set of tasks a scheduler owns: one reference each, from spawn until the task is released at
/// completion or shut down. Intrusive doubly linked lists through the task headers, sharded by
/// task ID, each shard under its own lock (only spawn, completion and shutdown take one, never a
/// poll or a wake), so that workers spawning and completing tasks at once rarely meet on a lock.
public struct OwnedTasks: ~Copyable, @unchecked Sendable {
    // SAFETY: a shard's list and the links of the tasks in it are only touched while its lock
    // is held; the shard table itself never changes after init.
    struct List {
        var head: UnsafeMutableRawPointer? = nil
        var count = 0
        var closed = false
    }

    /// Shard `i` takes bytes [i * shardStride, (i + 1) * shardStride) of `shards`: its lock word
    /// at the start, its list `listOffset` bytes in, the rest padding, so that shards never share
    /// a cache line. (The two are separate typed regions rather than fields of one struct so that
    /// a locked access to the list is not also an access to the lock.)
    static var shardStride: Int { 128 }
    static var listOffset: Int { 8 }

    let shards: UnsafeMutableRawPointer
    let shardMask: UInt64

    /// An empty, open list of `shards` shards (rounded up to a power of two).
    public init(shards: Int = 1) {
        precondition(MemoryLayout<SpinLock>.size <= Self.listOffset
                     && Self.listOffset + MemoryLayout<List>.size <= Self.shardStride)
        var count = 1
        while count < shards { count <<= 1 }
        self.shards = .allocate(byteCount: count * Self.shardStride, alignment: 64)
        shardMask = UInt64(count - 1)
        for i in 0..<count {
            lock(i).initialize(to: SpinLock())
            list(i).initialize(to: List())
        }
    }

    deinit {
        for i in 0...Int(shardMask) {
            lock(i).deinitialize(count: 1)
            list(i).deinitialize(count: 1)
        }
        shards.deallocate()
    }

    func lock(_ index: Int) -> UnsafeMutablePointer<SpinLock> {
        (shards + index * Self.shardStride).assumingMemoryBound(to: SpinLock.self)
    }

    func list(_ index: Int) -> UnsafeMutablePointer<List> {
        (shards + index * Self.shardStride + Self.listOffset).assumingMemoryBound(to: List.self)
    }

    /// Runs `body` on shard `index`'s list under its lock.
    func withShard<R: ~Copyable>(_ index: Int, _ body: (inout List) -> R) -> R {
        let lock = lock(index)
        lock.pointee.lock()
        defer { lock.pointee.unlock() }
        return body(&list(index).pointee)
    }

    func shardIndex(_ task: RawTask) -> Int { Int(task.id.rawValue & shardMask) }

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

    // insert and remove are on every spawn and completion: they take the lock themselves rather
    // than through `withShard`, whose closure the optimizer left as a call.
    @usableFromInline
    func insert(_ task: RawTask) -> Bool {
        let index = shardIndex(task)
        let lock = lock(index)
        lock.pointee.lock()
        defer { lock.pointee.unlock() }
        let list = list(index)
        guard !list.pointee.closed else { return false }
        task.ownedNext = list.pointee.head
        if let head = list.pointee.head { RawTask(head).ownedPrev = task.pointer }
        list.pointee.head = task.pointer
        list.pointee.count += 1
        return true
    }

    /// Unlinks `task` if it is in the list; returns whether it was (see `TaskScheduler.release`).
    public func remove(_ task: RawTask) -> Bool {
        let index = shardIndex(task)
        let lock = lock(index)
        lock.pointee.lock()
        defer { lock.pointee.unlock() }
        let list = list(index)
        guard list.pointee.head == task.pointer || task.ownedPrev != nil else { return false }
        Self.unlink(task, from: &list.pointee)
        return true
    }

    static func unlink(_ task: RawTask, from list: inout List) {
        if let previous = task.ownedPrev { RawTask(previous).ownedNext = task.ownedNext } else { list.head = task.ownedNext }
        if let next = task.ownedNext { RawTask(next).ownedPrev = task.ownedPrev }
        task.ownedPrev = nil
        task.ownedNext = nil
        list.count -= 1
    }

    /// How many tasks are alive and owned.
    public var count: Int { (0...Int(shardMask)).reduce(0) { sum, i in sum + withShard(i) { $0.count } } }

    /// Whether `closeAndShutdownAll` ran: new tasks are cancelled at once.
    public var isClosed: Bool { withShard(0) { $0.closed } }

    /// Refuses further tasks, then shuts down every owned task: idle ones are cancelled here (their
    /// futures dropped on this thread), running ones by their poller. Returns how many were shut down.
    @discardableResult
    public func closeAndShutdownAll() -> Int {
        for i in 0...Int(shardMask) { withShard(i) { $0.closed = true } }
        var shutDown = 0
        for i in 0...Int(shardMask) {
            while let task = popFirst(shard: i) {
                task.shutdown()
                shutDown += 1
            }
        }
        return shutDown
    }

    func popFirst(shard: Int) -> OwnedTask? {
        withShard(shard) { list -> OwnedTask? in
            guard let head = list.head else { return nil }
            let task = RawTask(head)
            Self.unlink(task, from: &list)
            return OwnedTask(unsafeRaw: task)
        }
    }
}
