import CCoil

/// A snapshot of a runtime's counters. Counters only grow; depths are instantaneous.
public struct RuntimeMetrics: Sendable, CustomStringConvertible {
    /// One worker's counters.
    public struct Worker: Sendable {
        /// Tasks and Swift jobs polled.
        public var polls: UInt64
        /// Successful steals from siblings.
        public var steals: UInt64
        /// Times the worker parked: on a futex when it had no I/O in flight, otherwise in its
        /// ring (where a completion also ends the wait).
        public var parks: UInt64
        /// Of those, the parks in its ring.
        public var ringParks: UInt64
        /// Times work reached it while it was still yielding before a park (an unpark, or a
        /// completion in its ring; see `Runtime.Builder.spinBeforeParking(yields:)`); these are
        /// not counted in `parks`.
        public var spinWakes: UInt64
        /// Times its local queue was full and half of it moved to the inject queue.
        public var overflows: UInt64
        /// Words in its local queue now.
        public var localQueueDepth: Int
        /// Timers armed in its wheel now.
        public var timers: Int
        /// I/O operations started on its ring, completed (final completion seen), and in the
        /// kernel now.
        public var ioSubmitted: UInt64
        public var ioCompleted: UInt64
        public var ioInFlight: Int
    }

    /// Per-worker counters, by worker index.
    public var workers: [Worker]
    /// Tasks spawned and not yet finished (blocking ones not included).
    public var aliveTasks: Int
    /// Words in the shared inject queue now.
    public var injectQueueDepth: Int
    /// Schedules that went through the inject queue (from outside the workers).
    public var remoteSchedules: UInt64
    /// Blocking-pool threads alive, idle among them, and closures waiting for one.
    public var blockingThreads: Int
    public var idleBlockingThreads: Int
    public var blockingQueueDepth: Int
    /// Swift jobs still queued at shutdown, which cannot be destroyed (see README).
    public var discardedJobs: Int

    /// Worker count (1 for a current-thread runtime).
    public var workerCount: Int { workers.count }
    /// Sums over the workers.
    public var totalPolls: UInt64 { workers.reduce(0) { $0 + $1.polls } }
    public var totalSteals: UInt64 { workers.reduce(0) { $0 + $1.steals } }
    public var totalParks: UInt64 { workers.reduce(0) { $0 + $1.parks } }
    public var totalTimers: Int { workers.reduce(0) { $0 + $1.timers } }
    public var ioInFlight: Int { workers.reduce(0) { $0 + $1.ioInFlight } }

    init(_ shared: Shared) {
        workers = shared.workers.map {
            Worker(polls: $0.polls.load(ordering: .relaxed), steals: $0.steals.load(ordering: .relaxed),
                   parks: $0.parks.load(ordering: .relaxed), ringParks: $0.ringParks.load(ordering: .relaxed),
                   spinWakes: $0.spinWakes.load(ordering: .relaxed),
                   overflows: $0.overflows.load(ordering: .relaxed),
                   localQueueDepth: $0.queueDepth, timers: $0.wheel.count,
                   ioSubmitted: $0.io.submitted.load(ordering: .relaxed), ioCompleted: $0.io.completed.load(ordering: .relaxed),
                   ioInFlight: $0.io.inFlight)
        }
        aliveTasks = shared.owned.count
        injectQueueDepth = shared.injectCount
        remoteSchedules = shared.remoteSchedules.load(ordering: .relaxed)
        blockingThreads = shared.blocking.threadCount
        idleBlockingThreads = shared.blocking.idleCount
        blockingQueueDepth = shared.blocking.queueDepth
        discardedJobs = shared.discardedJobs.load(ordering: .relaxed)
    }

    /// One line: totals, then each worker's counters.
    public var description: String {
        let perWorker = workers.enumerated().map { index, worker in
            "w\(index): polls=\(worker.polls) steals=\(worker.steals) parks=\(worker.parks) ringParks=\(worker.ringParks) spinWakes=\(worker.spinWakes) overflows=\(worker.overflows) local=\(worker.localQueueDepth)"
        }.joined(separator: "; ")
        return "workers=\(workerCount) alive=\(aliveTasks) inject=\(injectQueueDepth) remote=\(remoteSchedules) blocking=\(blockingThreads) io=\(ioInFlight) [\(perWorker)]"
    }
}
