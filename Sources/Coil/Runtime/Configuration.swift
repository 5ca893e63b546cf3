/// Everything a `Runtime.Builder` sets; read-only once the runtime is built.
@usableFromInline
struct RuntimeConfiguration: Sendable {
    enum Flavor: Sendable, Equatable { case currentThread, multiThread }

    var flavor: Flavor
    var workerThreads: Int
    var threadName: @Sendable (Int) -> String = { "coil-worker-\($0)" }
    var stackSize: Int? = nil
    var onThreadStart: (@Sendable () -> Void)? = nil
    var onThreadStop: (@Sendable () -> Void)? = nil
    var onThreadPark: (@Sendable () -> Void)? = nil
    var onThreadUnpark: (@Sendable () -> Void)? = nil
    /// Ticks between maintenance passes (completions, timers, shutdown check).
    var eventInterval: UInt32 = 61
    /// Ticks between looks at the inject queue ahead of the local queue.
    var globalQueueInterval: UInt32 = 31
    /// Budget units per task poll.
    var budget: Int32 = 128
    /// Times an idle worker (with no I/O in flight) or a thread in `blockOn` yields the CPU,
    /// watching for a wake, before it sleeps.
    var parkSpins = 32
    var localQueueCapacity = 256
    var ringEntries = 256
    /// Provided buffers per worker ring for multishot receives (a power of two) and their size.
    var receiveBufferCount = 256
    var receiveBufferSize = 4096
    /// Test-only rewriting of I/O completions.
    var ioFaults: IOFaultPlan? = nil
    var maxBlockingThreads = 512
    var blockingKeepAlive: Duration = .seconds(10)
    var blockingThreadName = "coil-blocking"
}
