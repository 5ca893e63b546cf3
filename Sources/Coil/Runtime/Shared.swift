import CCoil
import CoilCore
import Synchronization

/// The state every worker and every handle of one runtime share: the workers, the inject queue,
/// the idle counters, the owned-task list, timers registered from outside the workers, and the
/// blocking pool.
///
/// Lifetime: the `Runtime`, every `Handle` and every worker thread hold it strongly. Tasks hold it
/// unowned (`WorkerScheduler`): a task only calls into its scheduler while it is not complete,
/// and shutdown completes every task before the worker threads (and so the last strong
/// references a task could rely on) go away.
@usableFromInline
final class Shared: @unchecked Sendable {
    // SAFETY: `workers` is written once, before any worker or handle can read it; everything
    // else is immutable, atomic, or behind a lock.
    let config: RuntimeConfiguration
    var workers: [Worker] = [] {
        didSet {
            workerTable?.deallocate()
            workerTable = .allocate(capacity: workers.count)
            for (i, worker) in workers.enumerated() { workerTable![i] = Unmanaged.passUnretained(worker) }
        }
    }
    /// `workers` unretained, for waking one without retaining it (the array keeps them alive).
    private var workerTable: UnsafeMutablePointer<Unmanaged<Worker>>? = nil
    let workerCount: Int
    let idle: Idle
    @usableFromInline let owned: OwnedTasks
    let inject: OpaquePointer
    let injectClosed = Atomic<Bool>(false)
    private let shuttingDown = Atomic<Bool>(false)
    private let remoteTimers = ConditionLock([TimerEntry]())
    private let hasRemoteTimers = Atomic<Bool>(false)
    let blocking: BlockingPool
    let discardedJobs = Atomic<Int>(0)
    let remoteSchedules = Atomic<UInt64>(0)
    /// Multi-thread: the worker threads (written by Runtime.init before any reader exists).
    var threads: [OSThread] = []
    let lifecycle = WorkerLifecycle()
    /// Current-thread: whether a thread is driving the one worker.
    let coreBusy = Atomic<Bool>(false)
    private let shutdownLock = ConditionLock(false)

    init(config: RuntimeConfiguration) throws(RuntimeError) {
        self.config = config
        workerCount = config.flavor == .currentThread ? 1 : config.workerThreads
        idle = Idle(workerCount: workerCount)
        // Four shards per worker, as Tokio's owned-task list has.
        owned = OwnedTasks(shards: workerCount * 4)
        guard let inject = coil_umpmc_create() else { throw .invalidConfiguration("out of memory") }
        self.inject = inject
        blocking = BlockingPool(maxThreads: config.maxBlockingThreads, keepAlive: config.blockingKeepAlive,
                                threadName: config.blockingThreadName, stackSize: config.stackSize,
                                onStart: config.onThreadStart, onStop: config.onThreadStop)
    }

    deinit {
        drainInject()
        coil_umpmc_destroy(inject)
        workerTable?.deallocate()
    }

    var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }

    /// Marks the runtime as shutting down; returns false if it already was.
    func beginShutdown() -> Bool { !shuttingDown.exchange(true, ordering: .sequentiallyConsistent) }

    // MARK: Shutdown

    /// See `Runtime.shutdown(timeout:)`. Runs once; later calls return true at once.
    @discardableResult
    func shutdown(timeout: Duration?) -> Bool {
        shutdownLock.withLock { done -> Bool in
            guard !done else { return true }
            done = true
            _ = beginShutdown()
            let deadline = timeout.map { MonotonicTime.nanoseconds() &+ MonotonicTime.nanoseconds($0) }
            var clean = true
            switch config.flavor {
            case .multiThread:
                for worker in workers { worker.unpark() }
                if lifecycle.awaitExit(count: threads.count, deadline: deadline) == threads.count {
                    for thread in threads { thread.join() }
                } else {
                    for thread in threads { thread.detach() }
                    clean = false
                }
                threads = []
            case .currentThread:
                if coreBusy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
                    let worker = workers[0]
                    let context = EnteredContext.enter(worker: worker, shared: self)
                    worker.shutdownWorker()
                    context.restore()
                    coreBusy.store(false, ordering: .releasing)
                } else {
                    // Another thread is inside blockOn: cancel here; it drops its queue.
                    owned.closeAndShutdownAll()
                    workers[0].unpark()
                }
            }
            closeInject()
            if !blocking.shutdown(deadline: deadline) { clean = false }
            return clean
        }
    }

    // MARK: Spawning and scheduling

    @inlinable
    func spawn<F: Future & ~Copyable>(_ future: consuming F) -> JoinHandle<F.Output> {
        var bound = owned.bind(future, scheduler: WorkerScheduler(shared: self))
        if let notified = bound.notified.take() { schedule(RunQueueEntry.word(task: notified), isYield: false) }
        return bound.handle
    }

    /// Queues a run-queue word: on the calling worker if it belongs to this runtime, otherwise
    /// through the inject queue (waking a parked worker).
    @usableFromInline
    func schedule(_ word: UInt64, isYield: Bool) {
        if let worker = Worker.currentUnmanaged,
           worker._withUnsafeGuaranteedRef({ $0.shared === self }) {
            worker._withUnsafeGuaranteedRef { $0.scheduleLocal(word, isYield: isYield) }
        } else {
            remoteSchedules.add(1, ordering: .relaxed)
            pushInject(word)
            notifyParked()
        }
    }

    func pushInject(_ word: UInt64) {
        let pushed = coil_umpmc_push(inject, word)
        precondition(pushed, "out of memory growing the inject queue")
        // Shutdown closes the queue and then drains it; a push that lands after the drain sees
        // the flag and drains again, so no reference is stranded.
        if injectClosed.load(ordering: .sequentiallyConsistent) { drainInject() }
    }

    func popInject() -> UInt64? {
        var word: UInt64 = 0
        return coil_umpmc_try_pop(inject, &word) ? word : nil
    }

    var injectCount: Int { coil_umpmc_count_approx(inject) }

    func closeInject() {
        injectClosed.store(true, ordering: .sequentiallyConsistent)
        drainInject()
    }

    func drainInject() {
        while let word = popInject() { discard(word) }
    }

    /// Drops a queued word during shutdown: a task's reference is released (the task itself was
    /// cancelled by the owned list); a Swift job cannot be destroyed, only counted.
    func discard(_ word: UInt64) {
        if RunQueueEntry.isJob(word) {
            discardedJobs.add(1, ordering: .relaxed)
        } else {
            _ = RunQueueEntry.task(word)
        }
    }

    /// New work was published: wake a parked worker if nobody is looking for work.
    func notifyParked() {
        if config.flavor == .currentThread {
            // No idle protocol: the thread in blockOn parks (see Worker.park) and rechecks the queues.
            workerTable![0]._withUnsafeGuaranteedRef { $0.unpark() }
        } else if let index = idle.workerToNotify() {
            workerTable![index]._withUnsafeGuaranteedRef { $0.unpark() }
        }
    }

    /// The last searcher parked: if any queue still has work, make sure a worker comes for it.
    func notifyIfWorkPending() {
        if injectCount > 0 || workers.contains(where: { !$0.isQueueEmpty }) {
            notifyParked()
        }
    }

    // MARK: Timers from outside the workers

    /// Arms `entry` from a thread that is not one of this runtime's workers: worker 0 adopts it
    /// into its wheel.
    func registerRemoteTimer(_ entry: TimerEntry) {
        remoteTimers.withLock { $0.append(entry) }
        hasRemoteTimers.store(true, ordering: .releasing)
        workers[0].unpark()
    }

    func adoptRemoteTimers(into worker: Worker) {
        guard hasRemoteTimers.load(ordering: .acquiring) else { return }
        let adopted = remoteTimers.withLock { timers -> [TimerEntry] in
            hasRemoteTimers.store(false, ordering: .relaxed)
            defer { timers.removeAll(keepingCapacity: true) }
            return timers
        }
        for entry in adopted where !entry.isCancelled { worker.insertTimer(entry) }
    }

    // MARK: Swift jobs

    /// Queues a Swift job like a woken task.
    func enqueue(job: UnownedJob) {
        schedule(RunQueueEntry.word(job: job), isYield: false)
    }

    /// The `Runtime` object: the identity of the runtime as a Swift `TaskExecutor`. Jobs run "on"
    /// it, so a Swift task whose preference is the runtime stays on the workers. Unowned: the
    /// Runtime joins the workers (the only users of `jobExecutor`) before it goes away.
    private(set) weak var runtime: Runtime? = nil
    private(set) var jobExecutor: UnownedTaskExecutor? = nil

    /// Called once by `Runtime.init`, before any worker starts.
    func attach(_ runtime: Runtime) {
        self.runtime = runtime
        jobExecutor = UnownedTaskExecutor(ordinary: runtime)
    }

    /// The shared state of the runtime the calling thread has entered, if any.
    static var current: Shared? {
        guard let raw = coil_context_runtime() else { return nil }
        return Unmanaged<Shared>.fromOpaque(raw).takeUnretainedValue()
    }
}


/// The scheduler a runtime's tasks carry: a pointer to the runtime's shared state.
@usableFromInline
struct WorkerScheduler: TaskScheduler, @unchecked Sendable {
    // SAFETY: see `Shared` on why an unowned reference outlives every call a task makes. It is
    // used without retaining (`_withUnsafeGuaranteedRef`): a retain per wake would make every
    // worker write the same reference count.
    @usableFromInline let shared: Unmanaged<Shared>

    @inlinable init(shared: Shared) { self.shared = Unmanaged.passUnretained(shared) }

    @usableFromInline
    func schedule(_ task: consuming Notified) {
        let word = RunQueueEntry.word(task: task)
        shared._withUnsafeGuaranteedRef { $0.schedule(word, isYield: false) }
    }

    @usableFromInline
    func yieldNow(_ task: consuming Notified) {
        let word = RunQueueEntry.word(task: task)
        shared._withUnsafeGuaranteedRef { $0.schedule(word, isYield: true) }
    }

    @usableFromInline
    func release(_ task: RawTask) -> Bool { shared._withUnsafeGuaranteedRef { $0.owned.remove(task) } }
}
