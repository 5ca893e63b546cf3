import CBenchBaselines
import CoilCore
#if canImport(Glibc)
import Glibc
#endif

/// The shapes issue 3 measures on the single-thread executor. Each function does `count` operations
/// so callers can time or count allocations around it.
public enum TaskHarness {
    /// Spawn a trivial task, poll it to completion, join it, drop the handle: `count` times.
    public static func spawnPollJoin(_ executor: LocalExecutor, count: Int) -> Int {
        var sum = 0
        for index in 0..<count {
            var handle = executor.spawn(Ready(index))
            executor.runUntilStalled()
            var context = Context(waker: Waker.noop)
            if case .ready(.success(let value)) = handle.poll(&context) { sum &+= value }
        }
        return sum
    }

    /// One task that wakes itself `count` times: each iteration is wake → schedule → poll.
    public static func wakePollRoundTrips(_ executor: LocalExecutor, count: Int) -> Int {
        let handle = executor.spawn(SelfWaking(remaining: count))
        let polls = executor.runUntilStalled()
        precondition(handle.isFinished)
        return polls
    }

    /// Bytes of heap and of resident memory per pending task, with `count` tasks alive.
    public static func idleTaskFootprint(count: Int) -> (heapBytes: Double, residentBytes: Double) {
        let executor = LocalExecutor()
        let heapBefore = cbench_heap_in_use(), residentBefore = residentBytes()
        for _ in 0..<count { _ = executor.spawn(Pending<Int>()) }  // detached, queued, pending
        executor.runUntilStalled()  // each polled once: idle, waiting for a wake that never comes
        let heap = Double(cbench_heap_in_use() - heapBefore) / Double(count)
        let resident = Double(residentBytes() - residentBefore) / Double(count)
        executor.shutdown()
        return (heap, resident)
    }

    static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var size = 0, resident = 0
        _ = withUnsafeMutablePointer(to: &size) { sizePointer in
            withUnsafeMutablePointer(to: &resident) { residentPointer in
                withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
            }
        }
        return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Returns pending after waking itself, `remaining` times, then ready.
struct SelfWaking: Future {
    var remaining: Int

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        if remaining == 0 { return .ready(()) }
        remaining -= 1
        context.waker.wakeByRef()
        return .pending
    }
}
