import CCoil
import CoilCore

/// The threads behind `spawnBlocking`: work that blocks (file APIs without io_uring, CPU-heavy
/// loops, foreign libraries) runs here so it never stalls a worker.
///
/// A thread is started when work arrives and no thread is idle, up to `maxThreads`; an idle
/// thread exits after `keepAlive` without work. Each closure is a task (one allocation) whose
/// JoinHandle reports its result. At shutdown, closures that have not started are cancelled and
/// the pool waits (up to the runtime's shutdown timeout) for the running ones.
final class BlockingPool: @unchecked Sendable {
    // SAFETY: `state` is behind its lock; the rest is immutable.
    struct State {
        var queue: [RawTask] = []
        var head = 0
        var threads = 0
        var idle = 0
        var wakeups = 0
        var shutdown = false

        var pending: Int { queue.count - head }
    }

    let state = ConditionLock(State())
    let owned = OwnedTasks()
    let maxThreads: Int
    let keepAlive: Duration
    let threadName: String
    let stackSize: Int?
    let onStart: (@Sendable () -> Void)?
    let onStop: (@Sendable () -> Void)?
    /// The runtime the pool's threads enter while running a closure (so `Handle.current` works).
    /// Strong (a weak reference would slow every retain of the runtime's shared state); the
    /// cycle is broken at shutdown. Read and written under the lock.
    private var runtime: Shared? = nil

    func attach(_ runtime: Shared) { state.withLock { _ in self.runtime = runtime } }

    init(maxThreads: Int, keepAlive: Duration, threadName: String, stackSize: Int?,
         onStart: (@Sendable () -> Void)?, onStop: (@Sendable () -> Void)?) {
        self.maxThreads = maxThreads
        self.keepAlive = keepAlive
        self.threadName = threadName
        self.stackSize = stackSize
        self.onStart = onStart
        self.onStop = onStop
    }

    func spawn<T>(_ body: @escaping @Sendable () -> T) -> JoinHandle<T> {
        var bound = owned.bind(BlockingTask(body: body), scheduler: BlockingScheduler(pool: self))
        if let notified = bound.notified.take() { schedule(notified.intoRaw()) }
        return bound.handle
    }

    func schedule(_ task: RawTask) {
        var startThread = false
        let accepted = state.withLock { state -> Bool in
            guard !state.shutdown else { return false }
            state.queue.append(task)
            if state.idle > state.wakeups {
                state.wakeups += 1
            } else if state.threads < maxThreads {
                state.threads += 1
                startThread = true
            }
            return true
        }
        guard accepted else {
            _ = Notified(unsafeRaw: task)  // shut down: drop the reference (the task is cancelled)
            return
        }
        if startThread {
            do {
                // Detached: shutdown waits on the thread count, not on joins.
                try OSThread.start(name: threadName, stackSize: stackSize) { [self] in run() }.detach()
            } catch {
                // Could not start a thread: the task waits for a running one (if none, for the
                // next successful start).
                state.withLock { $0.threads -= 1 }
            }
        } else {
            state.signal()
        }
    }

    private func run() {
        onStart?()
        let keepAliveNanoseconds = MonotonicTime.nanoseconds(keepAlive)
        while true {
            let deadline = MonotonicTime.nanoseconds() &+ keepAliveNanoseconds
            state.withLock { $0.idle += 1 }
            var entered: Shared? = nil
            let task: RawTask? = state.wait(until: { $0.pending > 0 || $0.shutdown }, deadline: deadline) { state, _ in
                entered = runtime
                state.idle -= 1
                if state.wakeups > 0 { state.wakeups -= 1 }
                guard state.pending > 0, !state.shutdown else { return nil }
                let task = state.queue[state.head]
                state.head += 1
                if state.head == state.queue.count {
                    state.queue.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return task
            }
            guard let task else { break }
            runTask(task, in: entered)
        }
        onStop?()
        state.withLock { $0.threads -= 1 }
        state.broadcast()
    }

    private func runTask(_ task: RawTask, in runtime: Shared?) {
        let saved = coil_context_runtime()
        if let runtime { coil_context_set_runtime(Unmanaged.passUnretained(runtime).toOpaque()) }
        Notified(unsafeRaw: task).run()
        coil_context_set_runtime(saved)
        withExtendedLifetime(runtime) {}
    }

    var threadCount: Int { state.withLock { $0.threads } }
    var idleCount: Int { state.withLock { $0.idle } }
    var queueDepth: Int { state.withLock { $0.pending } }

    /// Cancels queued closures and waits until every thread has exited or `deadline` (monotonic
    /// nanoseconds) passes. Returns whether every thread exited.
    func shutdown(deadline: UInt64?) -> Bool {
        let queued = state.withLock { state -> [RawTask] in
            state.shutdown = true
            runtime = nil
            defer {
                state.queue.removeAll()
                state.head = 0
            }
            return Array(state.queue[state.head...])
        }
        state.broadcast()
        for task in queued { _ = Notified(unsafeRaw: task) }
        owned.closeAndShutdownAll()
        return state.wait(until: { $0.threads == 0 }, deadline: deadline) { _, timedOut in !timedOut }
    }
}

/// The closure of a `spawnBlocking` call as a future: ready on its first poll.
struct BlockingTask<T>: Future {
    var body: (@Sendable () -> T)?

    mutating func poll(_ context: inout Context) -> Poll<T> {
        guard let body = body.take() else { preconditionFailure("blocking task polled after completion") }
        return .ready(body())
    }
}

/// The scheduler of blocking tasks: the pool's queue.
struct BlockingScheduler: TaskScheduler, @unchecked Sendable {
    // SAFETY: the pool is thread-safe.
    let pool: BlockingPool

    func schedule(_ task: consuming Notified) { pool.schedule(task.intoRaw()) }
    func release(_ task: RawTask) -> Bool { pool.owned.remove(task) }
}
