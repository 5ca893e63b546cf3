#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CCoil
import CoilCore
import Synchronization

/// Coil's runtime: worker threads (or the calling thread) that poll tasks, each with its own
/// io_uring ring and timer wheel, plus a pool for blocking work.
///
/// ```swift
/// let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
/// let answer = runtime.blockOn(runtime.spawn(ready(21).map { $0 * 2 }))   // .success(42)
/// runtime.shutdown()
/// ```
///
/// A multi-thread runtime runs tasks on its workers at all times. A current-thread runtime runs
/// them only while some thread is inside `blockOn` (as Tokio's `current_thread`). The runtime is
/// also a Swift `TaskExecutor`: `Task(executorPreference: runtime) { ... }` runs async code on
/// the workers, in the same run queues as Coil tasks.
///
/// Dropping the runtime shuts it down and waits for its threads (see `shutdown(timeout:)`).
public final class Runtime: @unchecked Sendable {
    // SAFETY: the only stored property is immutable.
    @usableFromInline let shared: Shared

    /// The number of cores this process may run on (the default worker count).
    public static var availableCores: Int {
        let count = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return count > 0 ? count : 1
    }

    init(config: RuntimeConfiguration) throws(RuntimeError) {
        shared = try Shared(config: config)
        shared.blocking.attach(shared)
        var workers: [Worker] = []
        for index in 0..<shared.workerCount {
            workers.append(try Worker(index: index, shared: shared, localQueueCapacity: config.localQueueCapacity,
                                      lifoEnabled: config.flavor == .multiThread))
        }
        shared.workers = workers
        for worker in workers { worker.siblingQueues = workers.map(\.queue) }
        shared.attach(self)
        switch config.flavor {
        case .currentThread:
            // Any thread may drive a current-thread runtime (one at a time), so its ring is shared.
            try workers[0].openRing(entries: config.ringEntries, options: [.shared])
        case .multiThread:
            var startFailure: RuntimeError? = nil
            for worker in workers {
                do {
                    let lifecycle = shared.lifecycle
                    shared.threads.append(try OSThread.start(name: config.threadName(worker.index), stackSize: config.stackSize) {
                        worker.runThread(lifecycle: lifecycle)
                    })
                } catch {
                    startFailure = error
                    break
                }
            }
            if startFailure != nil {
                // Release the started workers into a failed startup so they exit.
                shared.lifecycle.state.withLock { state in
                    state.failure = startFailure
                    state.ready = shared.workerCount
                }
            }
            if let failure = shared.lifecycle.awaitReady(count: shared.workerCount) ?? startFailure {
                _ = shared.beginShutdown()
                for thread in shared.threads { thread.join() }
                shared.threads = []
                shared.closeInject()
                throw failure
            }
        }
    }

    deinit {
        // The last reference can go on one of our own workers (a Swift task that preferred this
        // executor finished there): a worker cannot join itself, so shut down from a new thread.
        if let worker = Worker.current, worker.shared === shared {
            let shared = self.shared
            _ = try? OSThread.start(name: "coil-shutdown", stackSize: nil) { shared.shutdown(timeout: nil) }.detach()
        } else {
            shared.shutdown(timeout: nil)
        }
    }

    /// Runs `future` to completion on the calling thread, entering the runtime so that `spawn`,
    /// timers and `Handle.current` work inside it. On a current-thread runtime the runtime's tasks
    /// run on this thread meanwhile. Must not be called from a worker thread (it would block it).
    public func blockOn<F: Future & ~Copyable>(_ future: consuming F) -> F.Output {
        precondition(Worker.current == nil,
                     "Runtime.blockOn called on a Coil worker thread; spawn the future instead of blocking the worker")
        if shared.config.flavor == .currentThread,
           shared.coreBusy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            defer { shared.coreBusy.store(false, ordering: .releasing) }
            return shared.workers[0].blockOnCurrentThread(future)
        }
        let context = EnteredContext.enter(worker: nil, shared: shared)
        defer { context.restore() }
        return CoilCore.blockOn(future, spinsBeforeSleeping: shared.config.parkSpins)
    }

    /// Runs Swift `async` code on the runtime's workers and waits for its result on the calling
    /// thread (the `async` form of ``blockOn(_:)``, like Tokio's `block_on(async { ... })`). On a
    /// current-thread runtime the code runs on the calling thread, interleaved with the runtime's
    /// tasks.
    ///
    /// ```swift
    /// let text = try runtime.blockOn {
    ///     let stream = try await TCPStream.connect(host: "127.0.0.1", port: 8080)
    ///     ...
    /// }
    /// ```
    public func blockOn<T: Sendable, E: Error>(_ body: sending @escaping () async throws(E) -> T) throws(E) -> T {
        let channel = Oneshot.channel(of: Result<T, E>.self)
        let sender = channel.sender, receiver = channel.receiver
        Task(executorPreference: self) {
            do throws(E) {
                _ = sender.send(.success(try await body()))
            } catch {
                _ = sender.send(.failure(error))
            }
        }
        switch blockOn(receiver) {
        case .success(let result): return try result.get()
        case .failure: preconditionFailure("the runtime shut down before blockOn's async body finished")
        }
    }

    /// Spawns `future` as a task (one allocation) and returns its handle. Dropping the handle
    /// detaches the task.
    @inlinable
    public func spawn<F: Future & ~Copyable>(_ future: consuming F) -> JoinHandle<F.Output> {
        shared.spawn(future)
    }

    /// Runs `body` on the blocking pool; the handle yields its result.
    public func spawnBlocking<T>(_ body: @escaping @Sendable () -> T) -> JoinHandle<T> {
        shared.blocking.spawn(body)
    }

    /// A handle to this runtime, for other threads.
    public var handle: Handle { Handle(shared: shared) }

    /// Counters and queue depths, readable at any time from any thread.
    public var metrics: RuntimeMetrics { RuntimeMetrics(shared) }

    /// Whether `shutdown` has begun.
    public var isShutDown: Bool { shared.isShuttingDown }

    /// Stops the runtime: refuses new tasks (they are cancelled at once), cancels every task
    /// (idle futures are dropped on a worker, running ones when their poll returns), drops every
    /// queued reference, unlinks every timer, closes the rings, and waits for the worker threads
    /// and the blocking pool. With a `timeout`, stops waiting after it (threads still running a
    /// blocking closure or a long poll are detached) and returns false. Calling it again returns
    /// at once. Must not be called from one of this runtime's workers.
    @discardableResult
    public func shutdown(timeout: Duration? = nil) -> Bool {
        if let worker = Worker.current, worker.shared === shared, !shared.isShuttingDown {
            preconditionFailure("Runtime.shutdown called on one of its own worker threads")
        }
        return shared.shutdown(timeout: timeout)
    }
}

/// A cloneable, sendable reference to a runtime: spawn onto it from any thread, or find the
/// runtime the calling code runs in with `Handle.current`.
public struct Handle: Sendable {
    @usableFromInline let shared: Shared

    init(shared: Shared) { self.shared = shared }

    /// The runtime the calling thread is in (a worker, a blocking thread, or inside `blockOn`).
    /// Traps outside any runtime; `tryCurrent` does not.
    public static var current: Handle {
        guard let handle = tryCurrent else {
            preconditionFailure("Handle.current used outside a Coil runtime (not on a worker, a blocking thread, or inside blockOn)")
        }
        return handle
    }

    /// The runtime the calling thread is in, if any.
    public static var tryCurrent: Handle? { Shared.current.map { Handle(shared: $0) } }

    /// Spawns `future` on this runtime; see `Runtime.spawn`.
    @inlinable
    public func spawn<F: Future & ~Copyable>(_ future: consuming F) -> JoinHandle<F.Output> {
        shared.spawn(future)
    }

    /// Runs `body` on this runtime's blocking pool.
    public func spawnBlocking<T>(_ body: @escaping @Sendable () -> T) -> JoinHandle<T> {
        shared.blocking.spawn(body)
    }

    /// This runtime's counters.
    public var metrics: RuntimeMetrics { RuntimeMetrics(shared) }
}

extension Runtime: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) { shared.enqueue(job: UnownedJob(job)) }
}

extension Handle {
    /// The runtime as a Swift `TaskExecutor`, for `Task(executorPreference:)` and
    /// `withTaskExecutorPreference`: the `Runtime` itself. Traps if it was already released.
    public var executor: any TaskExecutor {
        guard let runtime = shared.runtime else { preconditionFailure("Handle.executor: the Runtime was released") }
        return runtime
    }
}

/// Spawns `future` on the runtime the caller is in (`Handle.current`).
@inlinable
public func spawn<F: Future & ~Copyable>(_ future: consuming F) -> JoinHandle<F.Output> {
    guard let raw = coil_context_runtime() else {
        preconditionFailure("spawn called outside a Coil runtime (not on a worker, a blocking thread, or inside blockOn)")
    }
    // Borrowed, not retained: the thread is inside the runtime, which keeps it alive (and a
    // retain per spawn would have every worker write one count).
    var future = Optional(future)
    var handle: JoinHandle<F.Output>? = nil
    Unmanaged<Shared>.fromOpaque(raw)._withUnsafeGuaranteedRef { handle = $0.spawn(future.take()!) }
    return handle.take()!
}

/// Runs `body` on the blocking pool of the runtime the caller is in.
public func spawnBlocking<T>(_ body: @escaping @Sendable () -> T) -> JoinHandle<T> {
    Handle.current.spawnBlocking(body)
}

/// A future that returns pending once (rescheduling its task behind the other runnable ones),
/// then ready: lets other tasks run.
public struct YieldNow: Future, Sendable {
    @usableFromInline var yielded = false

    @inlinable public init() {}

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        if yielded { return .ready(()) }
        yielded = true
        context.wakeAfterPoll()
        return .pending
    }
}

/// Lets other tasks run before this one continues (Tokio's `task::yield_now`).
@inlinable public func yieldNow() -> YieldNow { YieldNow() }
