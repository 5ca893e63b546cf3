import CCoil
import CoilCore
import Synchronization

/// Startup and exit bookkeeping for a multi-thread runtime's worker threads.
final class WorkerLifecycle: @unchecked Sendable {
    // SAFETY: all state is behind the lock.
    struct State {
        var ready = 0
        var failure: RuntimeError? = nil
        var released = false
        var exited = 0
    }
    let state = ConditionLock(State())

    /// A worker finished setting up (or failed); waits until the builder releases every worker.
    /// Returns false if the runtime is being torn down before it ever started.
    func workerReady(failure: RuntimeError?) -> Bool {
        state.withLock { state in
            state.ready += 1
            if let failure, state.failure == nil { state.failure = failure }
        }
        state.broadcast()
        return state.wait(until: { $0.released }) { state, _ in state.failure == nil }
    }

    /// The builder: waits until all `count` workers reported, then releases them.
    func awaitReady(count: Int) -> RuntimeError? {
        let failure = state.wait(until: { $0.ready == count }) { state, _ in
            state.released = true
            return state.failure
        }
        state.broadcast()
        return failure
    }

    func workerExited() {
        state.withLock { $0.exited += 1 }
        state.broadcast()
    }

    /// Waits until `count` workers exited or `deadline` passes; returns how many exited.
    func awaitExit(count: Int, deadline: UInt64?) -> Int {
        state.wait(until: { $0.exited == count }, deadline: deadline) { state, _ in state.exited }
    }
}

/// The calling thread's runtime context, saved while a worker or blockOn runs and restored after.
struct EnteredContext {
    let worker: UnsafeMutableRawPointer?
    let runtime: UnsafeMutableRawPointer?
    let budget: Int32

    static func enter(worker: Worker?, shared: Shared) -> EnteredContext {
        let saved = EnteredContext(worker: coil_context_worker(), runtime: coil_context_runtime(),
                                   budget: coil_context_budget())
        coil_context_set_worker(worker.map { Unmanaged.passUnretained($0).toOpaque() })
        coil_context_set_runtime(Unmanaged.passUnretained(shared).toOpaque())
        return saved
    }

    func restore() {
        coil_context_set_worker(worker)
        coil_context_set_runtime(runtime)
        coil_context_set_budget(budget)
    }
}

extension Worker {
    // MARK: Multi-thread

    /// The body of a multi-thread worker's thread.
    func runThread(lifecycle: WorkerLifecycle) {
        let context = EnteredContext.enter(worker: self, shared: shared)
        defer {
            context.restore()
            lifecycle.workerExited()
        }
        var failure: RuntimeError? = nil
        do throws(RuntimeError) {
            try openRing(entries: shared.config.ringEntries, options: [])
        } catch {
            failure = error
        }
        guard lifecycle.workerReady(failure: failure) else {
            detachRing()
            return
        }
        shared.config.onThreadStart?()
        runLoop()
        shutdownWorker()
        shared.config.onThreadStop?()
    }

    /// One turn after another (DESIGN.md, "The scheduler") until the runtime shuts down.
    private func runLoop() {
        let eventInterval = shared.config.eventInterval
        var maintenanceCountdown = eventInterval
        while !shared.isShuttingDown {
            maintenanceCountdown &-= 1
            if maintenanceCountdown == 0 {
                maintenanceCountdown = eventInterval
                maintenance()
            }
            if let word = nextTask() {
                transitionFromSearching()
                runTask(word)
                continue
            }
            if let word = steal() {
                transitionFromSearching()
                runTask(word)
                continue
            }
            park()
        }
    }

    /// Nothing to run: park (see `Worker.park`) until woken, a timer is due, or a completion arrives.
    private func park() {
        if hasLocalWork { return }
        let wasLastSearcher = shared.idle.transitionToParked(index, searching: isSearching)
        isSearching = false
        if wasLastSearcher { shared.notifyIfWorkPending() }
        shared.config.onThreadPark?()
        while !shared.isShuttingDown {
            park(deadline: wheel.nextDeadline)
            inPark = true
            processTimers()
            inPark = false
            if hasLocalWork {
                // A timer or completion woke a task here: run it ourselves. If a notifier picked
                // this worker meanwhile, it was counted as a searcher: be one.
                if !shared.idle.unparkWorker(index) { isSearching = true }
                break
            }
            if !shared.idle.isParked(index) {
                // notifyParked picked us, counting us as a searcher.
                isSearching = true
                break
            }
        }
        shared.config.onThreadUnpark?()
    }

    /// Shutdown on this worker: cancel every task still owned (dropping idle futures here; the
    /// other workers do the same concurrently), drop queued references, unlink timers, reap
    /// the ring and detach it from this thread.
    func shutdownWorker() {
        shared.owned.closeAndShutdownAll()
        io.shutdown(reap: reapCompletions)
        drainQueues()
        wheel.releaseAll()
        reapCompletions()
        detachRing()
    }

    // MARK: Current-thread

    /// Drives `future` and the runtime's tasks on the calling thread (current-thread flavour).
    func blockOnCurrentThread<F: Future & ~Copyable>(_ future: consuming F) -> F.Output {
        let context = EnteredContext.enter(worker: self, shared: shared)
        defer { context.restore() }
        let signal = MainFutureSignal(worker: self)
        var future = future
        var futureContext = Context(waker: signal.makeWaker())
        let eventInterval = Int(shared.config.eventInterval)
        while true {
            if signal.woken.exchange(false, ordering: .acquiring) {
                coil_context_set_budget(shared.config.budget)
                let poll = future.poll(&futureContext)
                coil_context_set_budget(-1)
                if case .ready(let value) = consume poll { return value }
            }
            var ran = 0
            while ran < eventInterval {
                guard let word = nextTask() else { break }
                runTask(word)
                ran += 1
            }
            maintenance()
            if shared.isShuttingDown {  // shut down from another thread meanwhile
                io.shutdown(reap: reapCompletions)
                drainQueues()
            }
            if ran == 0 && !signal.woken.load(ordering: .acquiring) && !hasLocalWork && shared.injectCount == 0 {
                shared.config.onThreadPark?()
                park(deadline: wheel.nextDeadline)
                processTimers()
                shared.config.onThreadUnpark?()
            }
        }
    }
}

/// The waker of the future `blockOn` drives on a current-thread runtime: sets `woken` and
/// unparks the worker (a no-op unless it is parked).
final class MainFutureSignal: WakerTarget, @unchecked Sendable {
    // Strong: a future may keep this waker after blockOn returns (even after the runtime is
    // gone); `unpark` touches only the worker's own park state and ring, which it keeps alive.
    let worker: Worker
    let woken = Atomic<Bool>(true)

    init(worker: Worker) { self.worker = worker }

    override func wake() {
        woken.store(true, ordering: .releasing)
        worker.unpark()
    }
}
