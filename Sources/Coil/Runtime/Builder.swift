extension Runtime {
    /// Configures and builds a `Runtime`, after Tokio's `runtime::Builder`.
    ///
    /// ```swift
    /// let runtime = try Runtime.Builder.multiThread()
    ///     .workerThreads(4)
    ///     .threadName { "api-worker-\($0)" }
    ///     .build()
    /// ```
    public struct Builder: Sendable {
        var config: RuntimeConfiguration

        /// A runtime that runs tasks only on the thread inside `blockOn` (Tokio's `current_thread`).
        public static func currentThread() -> Builder {
            var config = RuntimeConfiguration(flavor: .currentThread, workerThreads: 1)
            config.threadName = { _ in "coil-runtime" }
            // The initial size of its private, growable run queue (see localQueueCapacity).
            config.localQueueCapacity = 4096
            return Builder(config: config)
        }

        /// A work-stealing runtime with one worker thread per core unless `workerThreads` says
        /// otherwise.
        public static func multiThread() -> Builder {
            Builder(config: RuntimeConfiguration(flavor: .multiThread, workerThreads: Runtime.availableCores))
        }

        /// Worker threads (multi-thread flavour; at least 1).
        public func workerThreads(_ count: Int) -> Builder { with { $0.workerThreads = count } }
        /// The name of worker `index`'s thread (Linux keeps 15 bytes).
        public func threadName(_ name: @escaping @Sendable (Int) -> String) -> Builder { with { $0.threadName = name } }
        /// One name for every worker thread.
        public func threadName(_ name: String) -> Builder { with { $0.threadName = { _ in name } } }
        /// Stack size of the worker and blocking threads, in bytes.
        public func threadStackSize(_ bytes: Int) -> Builder { with { $0.stackSize = bytes } }
        /// Runs on each worker and blocking thread when it starts.
        public func onThreadStart(_ hook: @escaping @Sendable () -> Void) -> Builder { with { $0.onThreadStart = hook } }
        /// Runs on each worker and blocking thread before it exits.
        public func onThreadStop(_ hook: @escaping @Sendable () -> Void) -> Builder { with { $0.onThreadStop = hook } }
        /// Runs on a worker before it parks (nothing to do).
        public func onThreadPark(_ hook: @escaping @Sendable () -> Void) -> Builder { with { $0.onThreadPark = hook } }
        /// Runs on a worker after it unparks.
        public func onThreadUnpark(_ hook: @escaping @Sendable () -> Void) -> Builder { with { $0.onThreadUnpark = hook } }
        /// Tasks run between two checks of completions and timers (default 61).
        public func eventInterval(_ ticks: Int) -> Builder { with { $0.eventInterval = UInt32(clamping: ticks) } }
        /// Tasks run between two looks at the shared inject queue ahead of the local one (default 31).
        public func globalQueueInterval(_ ticks: Int) -> Builder { with { $0.globalQueueInterval = UInt32(clamping: ticks) } }
        /// Upper bound on threads running `spawnBlocking` work (default 512).
        public func maxBlockingThreads(_ count: Int) -> Builder { with { $0.maxBlockingThreads = count } }
        /// How long an idle blocking thread waits for work before it exits (default 10 s).
        public func threadKeepAlive(_ duration: Duration) -> Builder { with { $0.blockingKeepAlive = duration } }
        /// Units of cooperative budget a task gets per poll (default 128).
        public func budget(_ units: Int) -> Builder { with { $0.budget = Int32(clamping: units) } }
        /// How many times an idle worker (with I/O in flight, watching its ring for completions
        /// too) or a thread waiting in `blockOn` gives up the CPU (`sched_yield`, about half a
        /// microsecond each when nothing else wants to run) watching for a wake before it sleeps
        /// (default 32; 0: sleep at once). A wake that lands meanwhile costs no system call and no
        /// sleep and wake-up in the kernel, which on a VM also means no halted vCPU to bring back:
        /// spawning and joining from `blockOn` on an idle multi-thread runtime takes ~3 µs instead
        /// of ~15-30 µs, and an echo round trip over one connection 27 µs instead of 67 µs, on the
        /// 2-core VM of BENCHMARKS.md. The cost is that CPU time, once per idle period.
        public func spinBeforeParking(yields: Int) -> Builder { with { $0.parkSpins = max(0, yields) } }
        /// Capacity of each worker's local run queue (a power of two; default 256). When it is
        /// full, half of it moves to the shared inject queue; small values exercise that overflow
        /// and stealing in tests. A runtime with one worker (current-thread, or multi-thread with
        /// one thread) has nothing to steal from it, so its run queue is private and grows
        /// instead: this is then only its initial size (current-thread default 4096).
        public func localQueueCapacity(_ capacity: Int) -> Builder { with { $0.localQueueCapacity = capacity } }
        /// Submission-queue entries of each worker's ring (default 256).
        public func ringEntries(_ entries: Int) -> Builder { with { $0.ringEntries = entries } }

        /// The provided buffers each worker registers for ``TCPStream/receiveStream()``: `count`
        /// buffers (a power of two, at most 32768; default 256) of `size` bytes (default 4096).
        /// They are shared by every receive stream on the worker; when all are waiting to be read,
        /// streams fall back to plain reads until buffers come back.
        public func receiveBuffers(count: Int, size: Int) -> Builder {
            with {
                $0.receiveBufferCount = count
                $0.receiveBufferSize = size
            }
        }

        /// For tests: every worker's I/O follows `plan`, failing or shortening chosen operations
        /// (see ``IOFaultPlan``).
        @_spi(Testing)
        public func injectIOFaults(_ plan: IOFaultPlan) -> Builder { with { $0.ioFaults = plan } }

        private func with(_ change: (inout RuntimeConfiguration) -> Void) -> Builder {
            var copy = self
            change(&copy.config)
            return copy
        }

        /// Starts the runtime: creates the rings and (multi-thread) starts the workers.
        public func build() throws(RuntimeError) -> Runtime {
            try validate()
            return try Runtime(config: config)
        }

        func validate() throws(RuntimeError) {
            if config.workerThreads < 1 { throw .invalidConfiguration("workerThreads must be at least 1") }
            if config.workerThreads > 4096 { throw .invalidConfiguration("workerThreads must be at most 4096") }
            if config.eventInterval < 1 { throw .invalidConfiguration("eventInterval must be at least 1") }
            if config.globalQueueInterval < 1 { throw .invalidConfiguration("globalQueueInterval must be at least 1") }
            if config.maxBlockingThreads < 1 { throw .invalidConfiguration("maxBlockingThreads must be at least 1") }
            if config.budget < 1 { throw .invalidConfiguration("budget must be at least 1") }
            let buffers = config.receiveBufferCount
            if buffers < 1 || buffers > 32768 || buffers & (buffers - 1) != 0 {
                throw .invalidConfiguration("receiveBuffers count must be a power of two in 1...32768")
            }
            if config.receiveBufferSize < 1 || config.receiveBufferSize > Int(UInt32.max) {
                throw .invalidConfiguration("receiveBuffers size must be in 1...\(UInt32.max)")
            }
            if config.localQueueCapacity < 2 || config.localQueueCapacity > 65536 {
                throw .invalidConfiguration("localQueueCapacity must be in 2...65536")
            }
        }
    }
}
