import CoilCore

/// What the run queues carry: one 64-bit word per runnable thing. A Coil task is its header's
/// address (16-byte aligned, so bit 0 is clear) and stands for one `Notified` reference; a Swift
/// job enqueued on the runtime's `TaskExecutor` is the job's address with bit 0 set.
@usableFromInline
enum RunQueueEntry {
    @usableFromInline static let jobTag: UInt64 = 1

    @inlinable
    static func word(task: consuming Notified) -> UInt64 {
        UInt64(UInt(bitPattern: task.intoRaw().pointer))
    }

    /// SAFETY: `UnownedJob` is one pointer to a heap-allocated job (at least 16-byte aligned, so
    /// bit 0 is free); `unsafeBitCast` checks the size, the assertion the alignment.
    static func word(job: UnownedJob) -> UInt64 {
        let bits = UInt64(unsafeBitCast(job, to: UInt.self))
        assert(bits & jobTag == 0, "a Swift job at an odd address")
        return bits | jobTag
    }

    static func isJob(_ word: UInt64) -> Bool { word & jobTag != 0 }

    static func job(_ word: UInt64) -> UnownedJob {
        unsafeBitCast(UInt(word & ~jobTag), to: UnownedJob.self)
    }

    static func task(_ word: UInt64) -> Notified {
        Notified(unsafeRaw: RawTask(UnsafeMutableRawPointer(bitPattern: UInt(word))!))
    }
}
