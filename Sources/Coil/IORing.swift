import CCoil

/// One io_uring instance: Coil's low-level submission/completion driver (C's `coil_ring`).
///
/// It moves opaque 64-bit `userData` words: prepare operations (``prepareNop(userData:)``,
/// ``prepareRead(fd:into:offset:userData:)``...), submit them in one system call, and reap their
/// completions in batches. It knows nothing of tasks; Coil's runtime and I/O types are built on
/// it. Memory handed to an operation must stay valid until its completion is reaped.
///
/// By default a ring belongs to the thread that creates it (the kernel's SINGLE_ISSUER and
/// DEFER_TASKRUN modes, the fastest): only that thread may prepare, submit, wait and reap. Use
/// `.shared` for a ring that several threads use in turn. Any thread can wake a waiting ring
/// through its ``waker``.
///
/// ```swift
/// let ring = try IORing(entries: 64)
/// for i in 0..<8 { try ring.prepareNop(userData: UInt64(i)) }
/// try ring.submitAndWait(minimumCompletions: 8)
/// ring.forEachCompletion { completion in print(completion.userData, completion.result) }
/// ```
///
/// Completions whose `userData` is in the top 256 values are the driver's own (wake-ups); they
/// are absorbed and never reported, so callers must keep their `userData` below
/// ``reservedUserDataStart``.
public final class IORing {
    /// How the ring will be used, which decides the kernel setup flags it asks for.
    public struct Options: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Several threads use the ring in turn (no SINGLE_ISSUER, DEFER_TASKRUN or registered fd).
        public static let shared = Options(rawValue: UInt32(COIL_RING_SHARED))
        /// Ask for no optional setup flag at all.
        public static let plain = Options(rawValue: UInt32(COIL_RING_PLAIN))
    }

    /// The kernel setup flags a ring was created with (`COIL_SETUP_*`).
    public struct SetupFlags: OptionSet, Sendable, CustomStringConvertible {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let cqSize = SetupFlags(rawValue: COIL_SETUP_CQSIZE)
        public static let submitAll = SetupFlags(rawValue: COIL_SETUP_SUBMIT_ALL)
        public static let coopTaskrun = SetupFlags(rawValue: COIL_SETUP_COOP_TASKRUN)
        public static let taskrunFlag = SetupFlags(rawValue: COIL_SETUP_TASKRUN_FLAG)
        public static let singleIssuer = SetupFlags(rawValue: COIL_SETUP_SINGLE_ISSUER)
        public static let deferTaskrun = SetupFlags(rawValue: COIL_SETUP_DEFER_TASKRUN)

        public var description: String {
            let names: [(SetupFlags, String)] = [
                (.singleIssuer, "SINGLE_ISSUER"), (.deferTaskrun, "DEFER_TASKRUN"), (.coopTaskrun, "COOP_TASKRUN"),
                (.taskrunFlag, "TASKRUN_FLAG"), (.submitAll, "SUBMIT_ALL"), (.cqSize, "CQSIZE"),
            ]
            let taken = names.filter { contains($0.0) }.map(\.1)
            return taken.isEmpty ? "none" : taken.joined(separator: "|")
        }
    }

    /// The first `userData` value reserved for the driver's own completions.
    public static let reservedUserDataStart: UInt64 = UInt64.max - 255

    @usableFromInline
    let ring: OpaquePointer
    @usableFromInline
    let reapBuffer: UnsafeMutableBufferPointer<IOCompletion>

    /// Creates a ring with room for `entries` submissions (rounded up to a power of two) and
    /// `completionEntries` completions (0: twice `entries`; must be at least `entries`).
    /// Throws an ``IORingError`` naming `io_uring_setup` when the kernel refuses: `EPERM` where
    /// io_uring is forbidden, `ENOSYS` where the kernel lacks it.
    public init(entries: Int = 256, completionEntries: Int = 0, options: Options = []) throws(IORingError) {
        guard entries > 0, entries <= 32768, completionEntries >= 0, completionEntries <= 65536 else {
            throw IORingError(operation: "io_uring_setup", errno: EINVAL)
        }
        var error: Int32 = 0
        guard let ring = coil_ring_create(UInt32(entries), UInt32(completionEntries), options.rawValue, &error) else {
            throw IORingError(operation: "io_uring_setup", negativeErrno: error)
        }
        self.ring = ring
        let capacity = Int(coil_ring_cq_entries(ring))
        reapBuffer = .allocate(capacity: capacity)
        reapBuffer.initialize(repeating: IOCompletion(userData: 0, result: 0, flags: 0))
    }

    deinit {
        coil_ring_destroy(ring)
        reapBuffer.deallocate()
    }

    /// The setup flags the kernel accepted.
    public var setupFlags: SetupFlags { SetupFlags(rawValue: coil_ring_setup_flags(ring)) }
    /// Whether the ring fd is registered (saves a descriptor lookup per system call).
    public var hasRegisteredFileDescriptor: Bool { coil_ring_has_registered_fd(ring) }
    /// The ring's file descriptor, the target of another ring's ``prepareMessage(to:result:targetUserData:skipOwnCompletion:userData:)``.
    public var fileDescriptor: Int32 { coil_ring_fd(ring) }
    /// Submission queue size.
    public var submissionEntries: Int { Int(coil_ring_sq_entries(ring)) }
    /// Completion queue size.
    public var completionEntries: Int { Int(coil_ring_cq_entries(ring)) }
    /// Operations prepared and not yet submitted.
    public var pendingSubmissions: Int { Int(coil_ring_sq_pending(ring)) }
    /// Whether a reap would find completions without waiting: some in the completion queue, or
    /// some the kernel holds back and flags (deferred task work, with `.taskrunFlag` among the
    /// setup flags; overflow). Read from the ring's shared memory, with no system call, so a
    /// thread can watch it while it yields. False when the ring cannot tell (deferred task work
    /// without `.taskrunFlag`).
    public var hasCompletions: Bool { coil_ring_has_events(ring) }

    /// Makes sure `count` operations can be prepared back to back in one submission (an operation
    /// and its linked timeout), submitting what is queued if needed.
    public func reserve(_ count: Int) throws(IORingError) {
        let ret = coil_ring_reserve(ring, UInt32(clamping: count))
        if ret < 0 { throw IORingError(operation: "reserve", negativeErrno: ret) }
    }

    /// Submits every prepared operation with one system call; returns how many the kernel took.
    @discardableResult
    public func submit() throws(IORingError) -> Int {
        let ret = coil_ring_submit(ring)
        if ret < 0 { throw IORingError(operation: "submit", negativeErrno: ret) }
        return Int(ret)
    }

    /// Submits every prepared operation and waits until `minimumCompletions` completions are
    /// ready or `timeout` passes. Returns `false` when the time ran out first, `true` otherwise
    /// (including a wait cut short by a signal: reap and wait again). Throws for other errors,
    /// among them `EBADR` if the kernel ever had to drop completions.
    @discardableResult
    public func submitAndWait(minimumCompletions: Int = 1, timeout: Duration? = nil) throws(IORingError) -> Bool {
        var nanoseconds: Int64 = -1
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            nanoseconds = max(0, seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000)
        }
        let ret = coil_ring_submit_and_wait(ring, UInt32(clamping: minimumCompletions), nanoseconds)
        if ret >= 0 || ret == -EINTR { return true }
        if ret == -ETIME { return false }
        throw IORingError(operation: "submit_and_wait", negativeErrno: ret)
    }

    /// Copies up to `buffer.count` ready completions into `buffer` and consumes them; never waits.
    /// Returns how many were copied.
    @inlinable
    public func reap(into buffer: UnsafeMutableBufferPointer<IOCompletion>) throws(IORingError) -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        let ret = base.withMemoryRebound(to: coil_cqe_t.self, capacity: buffer.count) {
            coil_ring_reap(ring, $0, UInt32(clamping: buffer.count))
        }
        if ret < 0 { throw IORingError(operation: "reap", negativeErrno: ret) }
        return Int(ret)
    }

    /// Reaps every ready completion (in batches, through the ring's own buffer, without
    /// allocating) and hands each to `body`; returns how many there were.
    @inlinable @discardableResult
    public func forEachCompletion(_ body: (IOCompletion) throws -> Void) throws -> Int {
        var total = 0
        while true {
            let count = try reap(into: reapBuffer)
            for index in 0..<count { try body(reapBuffer[index]) }
            total += count
            if count < reapBuffer.count { return total }
        }
    }

    /// Enables ``waker``: creates the ring's eventfd and queues a read of it. Call it on the
    /// ring's thread before handing the waker to other threads.
    public func enableWaker() throws(IORingError) {
        let ret = coil_ring_enable_wake(ring)
        if ret < 0 { throw IORingError(operation: "enable_wake", negativeErrno: ret) }
    }

    /// A handle any thread can use to end this ring's wait (see ``enableWaker()``).
    public var waker: IORingWaker { IORingWaker(ring: self) }

    /// How many wake-ups (eventfd or MSG_RING) the ring has absorbed.
    public var wakeupCount: Int { Int(coil_ring_wakeups(ring)) }
    /// How many times reaping had to ask the kernel to flush overflowed completions.
    public var overflowFlushCount: Int { Int(coil_ring_overflow_flushes(ring)) }
}

/// Wakes an ``IORing`` from any thread: its pending or next wait returns. Wakes coalesce until
/// the ring's thread reaps. Publish the work first, then wake; the woken thread reaps, then looks
/// for work, so no wake-up is lost.
///
/// The waker keeps its ring alive; if it is the last owner, the ring is closed on the thread that
/// drops it.
public struct IORingWaker: @unchecked Sendable {
    // SAFETY: only coil_ring_wake (an atomic exchange and an eventfd write, callable from any
    // thread) is ever called through this reference.
    let ring: IORing

    /// Wakes the ring. Throws ``IORingError`` (`EINVAL` if the waker was not enabled).
    public func wake() throws(IORingError) {
        let ret = coil_ring_wake(ring.ring)
        if ret < 0 { throw IORingError(operation: "wake", negativeErrno: ret) }
    }
}
