import CBenchBaselines
import Coil

/// io_uring NOP throughput: Coil's ring driven from Swift, and a raw liburing loop in C set up
/// with the same flags.
public enum NopHarness {
    /// Seconds for `nops` NOPs in batches of `batch` through `IORing` (prepare, one
    /// submit-and-wait, reap).
    public static func swift(batch: Int, nops: Int) throws -> (seconds: Double, flags: IORing.SetupFlags, registeredFD: Bool) {
        let ring = try IORing(entries: 256, completionEntries: 512)
        let iterations = nops / batch
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations {
            for index in 0..<batch { try ring.prepareNop(userData: UInt64(index)) }
            try ring.submitAndWait(minimumCompletions: batch)
            var reaped = 0
            while reaped < batch { reaped += try ring.forEachCompletion { _ in } }
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return (seconds, ring.setupFlags, ring.hasRegisteredFileDescriptor)
    }

    /// The same in raw liburing C, with the setup flags (and registered fd) Coil's ring took.
    public static func c(batch: Int, nops: Int, flags: IORing.SetupFlags, registeredFD: Bool) -> Double {
        var plain = flags
        plain.remove(.cqSize)
        return cbench_nop_loop(plain.rawValue, registeredFD ? 1 : 0, UInt32(batch), UInt64(nops))
    }
}
