import CCoil
import CoilCore
import Synchronization

/// One worker's I/O: prepares operations on the worker's ring, dispatches their completions, and
/// keeps a pool of operation records so that steady-state I/O allocates nothing.
///
/// The owning thread (the one driving the worker) prepares SQEs directly; they go to the kernel
/// with the worker's next `io_uring_enter` (its park, or the submit in its periodic maintenance),
/// so a turn's operations share one system call. Any other thread hands operations, cancels and
/// finished records to the owner through `remote` and unparks it.
final class IODriver: @unchecked Sendable {
    // SAFETY: `ring`, `pool` and `inFlight` are touched by the owning thread only; `remote` is
    // behind its lock; the rest is atomic.
    private let workerAddress: UnsafeMutableRawPointer
    /// Unowned: the worker owns its driver; records keep the driver, not the worker.
    private unowned(unsafe) let worker: Worker
    var ring: OpaquePointer? = nil
    /// Blank records for reuse: a fixed stack (a pointer, not an array, so that the hot path has
    /// no exclusivity checks or reallocation). Entries `0..<pooled` each hold one retain of their
    /// record (taken in `recycle`, handed back by `makeOperation`, dropped by `drainPool`); owner
    /// thread only.
    private let pool = UnsafeMutablePointer<Unmanaged<IOOperation>>.allocate(capacity: IODriver.maxPooled)
    private var pooled = 0
    /// Operations submitted whose final CQE has not arrived (written by the owner, read anywhere).
    private let inFlightGauge = Atomic<Int>(0)
    private(set) var inFlight: Int {
        get { inFlightGauge.load(ordering: .relaxed) }
        set { inFlightGauge.store(newValue, ordering: .relaxed) }
    }
    private static let maxPooled = 4096

    private struct Remote {
        var submits: [IOOperation] = []
        var cancels: [(IOOperation, UInt64)] = []
        var released: [IOOperation] = []
        var recycled: [UInt16] = []
        var closed = false
    }
    private let remote = ConditionLock(Remote())
    /// What `processRemote` swaps in, so that neither side's arrays are reallocated (owner only).
    private var spare = Remote()
    private let hasRemote = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)

    /// Started (by any thread: a read-modify-write) and completed (by the owner only: load and
    /// store, like the worker's counters).
    let submitted = Atomic<UInt64>(0)
    let completed = Atomic<UInt64>(0)

    private func countCompleted() {
        completed.store(completed.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Fault injection (tests), from the runtime's configuration.
    private let faults: IOFaultInjector?

    init(worker: Worker) {
        self.worker = worker
        workerAddress = Unmanaged.passUnretained(worker).toOpaque()
        faults = worker.shared.config.ioFaults.map(IOFaultInjector.init)
    }

    /// The driver for operations started on the calling thread: its worker's, or (outside the
    /// workers, inside a runtime) worker 0's.
    static func forCurrentThread() -> IODriver {
        if let worker = Worker.current { return worker.io }
        if let shared = Shared.current { return shared.workers[0].io }
        preconditionFailure("Coil I/O was started outside a Coil runtime (enter one with Runtime.blockOn, or spawn the work)")
    }

    @inline(__always)
    var isOwnerThread: Bool { coil_context_worker() == workerAddress }

    /// A blank record: from the pool on the owning thread, else a new one.
    func makeOperation() -> IOOperation {
        if isOwnerThread && pooled > 0 {
            pooled -= 1
            return pool[pooled].takeRetainedValue()
        }
        return IOOperation(driver: self)
    }

    /// Starts `op` (filled in by the caller): prepares it now on the owning thread, else hands it
    /// to the owner. An operation that cannot start completes at once with the error.
    func start(_ op: IOOperation) {
        submitted.add(op.linkedNext == nil ? 1 : 2, ordering: .relaxed)
        if isOwnerThread {
            prepare(op)
            return
        }
        let queued = remote.withLock { remote -> Bool in
            guard !remote.closed else { return false }
            remote.submits.append(op)
            return true
        }
        if queued {
            hasRemote.store(true, ordering: .releasing)
            worker.unpark()
        } else {
            finish(op, result: -ECANCELED, flags: 0)
        }
    }

    private func prepare(_ op: IOOperation) {
        guard let ring, !closed.load(ordering: .relaxed) else {
            finish(op, result: -ECANCELED, flags: 0)
            return
        }
        if case .multishotReceive = op.request, receiveBuffers == nil {
            let error = createReceiveBuffers()
            if error < 0 {
                finish(op, result: error, flags: 0)
                return
            }
        }
        if let next = op.linkedNext {
            op.linkedNext = nil
            prepareLinked(op, next, on: ring)
            return
        }
        faults?.apply(to: op)
        let ret = op.prepare(on: ring)
        if ret < 0 {
            finish(op, result: ret, flags: 0)
            return
        }
        inKernel(op, retain: op.sink != nil)
    }

    /// Marks `op` in flight. Who keeps the record alive until its final CQE (R4): a single-shot
    /// operation's waiter holds it until it has taken the result, and a waiter that leaves first
    /// hands the driver a reference of its own (`IOOperation.drop`), so the common path takes no
    /// reference here. Multishot operations and linked pairs, whose holders can let go while the
    /// kernel still posts completions, get a kernel reference (`retain`), released at the final
    /// CQE in `complete`.
    private func inKernel(_ op: IOOperation, retain: Bool) {
        if retain {
            _ = Unmanaged.passRetained(op)
            op.kernelRetained = true
        }
        op.inFlight = true
        inFlight += 1
    }

    /// Prepares `first` and `second` back to back in one submission, `second` linked after
    /// `first` (`first` has no linked timeout; `second` may).
    private func prepareLinked(_ first: IOOperation, _ second: IOOperation, on ring: OpaquePointer) {
        // Both, and the second's linked timeout, in one submission.
        var ret = coil_ring_reserve(ring, second.timeout > 0 ? 3 : 2)
        if ret == 0 {
            faults?.apply(to: first, linkHead: true)
            faults?.apply(to: second)
            ret = first.prepare(on: ring)
        }
        if ret < 0 {
            finish(first, result: ret, flags: 0)
            finish(second, result: -ECANCELED, flags: 0)
            return
        }
        // A whole-region send that succeeds needs no completion of its own: the second one's
        // CQE says it went out (see `completeSilentHead`). One CQE per pair instead of two.
        if case .sendAll = first.request, first.injectedErrno == 0, coil_ring_skip_success_previous(ring) == 0 {
            first.silentSecond = second
        }
        // With the SQEs reserved, neither the link nor the second preparation can fail.
        _ = coil_ring_link_previous(ring)
        _ = second.prepare(on: ring)
        second.linkHead = first
        second.linkHeadUserData = first.userData
        inKernel(first, retain: true)
        inKernel(second, retain: true)
    }

    /// Asks the kernel to cancel `op` if it is still the use whose user data is `userData`.
    func cancel(_ op: IOOperation, userData: UInt64) {
        if isOwnerThread {
            cancelIfCurrent(op, userData: userData)
            return
        }
        let queued = remote.withLock { remote -> Bool in
            guard !remote.closed else { return false }
            remote.cancels.append((op, userData))
            return true
        }
        if queued {
            hasRemote.store(true, ordering: .releasing)
            worker.unpark()
        }
    }

    private func cancelIfCurrent(_ op: IOOperation, userData: UInt64) {
        guard op.inFlight, op.userData == userData, let ring else { return }
        op.cancelRequested = true
        if let head = op.linkHead, head.inFlight, head.userData == op.linkHeadUserData {
            _ = coil_ring_prep_cancel(ring, op.linkHeadUserData, 0, coil_user_data_ignore)
        }
        _ = coil_ring_prep_cancel(ring, userData, 0, coil_user_data_ignore)
    }

    /// The waiter is done with `op` (R4): back to the pool.
    func release(_ op: IOOperation) {
        op.closeUntakenDescriptor()
        if isOwnerThread {
            recycle(op)
        } else {
            handOver(op)
        }
    }

    /// A record released on another thread goes back to the owner at its next pass.
    private func handOver(_ op: IOOperation) {
        let queued = remote.withLock { remote -> Bool in
            guard !remote.closed else { return false }
            remote.released.append(op)
            return true
        }
        // No need to wake the owner: the record waits for its next pass.
        if queued { hasRemote.store(true, ordering: .releasing) }
    }

    private func recycle(_ op: IOOperation) {
        op.reset()
        if pooled < Self.maxPooled && !closed.load(ordering: .relaxed) {
            pool[pooled] = Unmanaged.passRetained(op)
            pooled += 1
        }
    }

    /// Empties the pool (the records go away).
    private func drainPool() {
        while pooled > 0 {
            pooled -= 1
            pool[pooled].release()
        }
    }

    deinit {
        drainPool()
        pool.deallocate()
    }

    // MARK: Provided receive buffers

    /// The buffer group multishot receives pick from (one group per ring).
    static let receiveGroup: UInt16 = 1

    /// Created by the owner before its first multishot receive; freed with the driver (a receive
    /// stream's sink keeps every driver its queued items name, so the memory outlives every
    /// reader of it).
    private var receiveBuffers: ProvidedBufferRing? = nil
    /// `receiveBuffers.buffers`, for the per-message path (no retain of the ring object).
    private var receiveBufferRing: OpaquePointer? = nil

    private func createReceiveBuffers() -> Int32 {
        guard let ring = worker.ring else { return -ECANCELED }
        let config = worker.shared.config
        do throws(IORingError) {
            let buffers = try ProvidedBufferRing(ring: ring, groupID: Self.receiveGroup,
                                                 count: config.receiveBufferCount, bufferSize: config.receiveBufferSize)
            receiveBuffers = buffers
            receiveBufferRing = buffers.buffers
            return 0
        } catch {
            return -error.errno
        }
    }

    /// The bytes of provided buffer `id` (valid until it is recycled).
    func receiveBuffer(_ id: UInt16) -> UnsafeRawPointer {
        UnsafeRawPointer(coil_buf_ring_buffer(receiveBufferRing!, id))
    }

    /// Gives provided buffer `id` back to the kernel (on the owning thread: the buffer ring has
    /// one producer). From other threads it is handed over, and the owner is woken when the
    /// hand-over list was empty, so that a receive starved of buffers gets them back soon.
    func recycleReceiveBuffer(_ id: UInt16) {
        if isOwnerThread {
            // The id came from a CQE of this ring: in range.
            if let receiveBufferRing { coil_buf_ring_recycle(receiveBufferRing, id) }
            return
        }
        let wake = remote.withLock { remote -> Bool in
            guard !remote.closed else { return false }
            remote.recycled.append(id)
            return remote.recycled.count == 1
        }
        hasRemote.store(true, ordering: .releasing)
        if wake { worker.unpark() }
    }

    // MARK: Completions (owning thread)

    /// Handles one CQE addressed to an operation record.
    func complete(userData: UInt64, result kernelResult: Int32, flags: UInt32) {
        let kernelReference = IOOperation.unmanaged(userData: userData)
        // Alive until the end (see `inKernel`): its waiter's, the abandoning waiter's or the
        // kernel's reference holds it. Borrowed; the kernel's reference, if any, is released
        // after the final CQE.
        let releaseKernelReference = kernelReference._withUnsafeGuaranteedRef { op -> Bool in
            let kernelRetained = op.kernelRetained
            var result = kernelResult
            if op.injectedErrno != 0 {
                // The NOP completed with the injected result already, or with 0 on a kernel
                // without IORING_NOP_INJECT_RESULT. A negative result the kernel chose stays:
                // -ECANCELED for the second of a link whose first failed means the NOP never
                // ran, and reporting the injected error instead (an EAGAIN, retried) would
                // start a receive that nobody asked for.
                if result >= 0 { result = -op.injectedErrno }
                op.injectedErrno = 0
            }
            if op.sink != nil {
                let more = coil_cqe_has_more(flags)
                // Unretained: the record keeps its sink until `recycle` below.
                Unmanaged.passUnretained(op.sink!)._withUnsafeGuaranteedRef {
                    $0.deliver(result: result, flags: flags, isFinal: !more, driver: self)
                }
                if more { return false }
                inFlight -= 1
                op.inFlight = false
                countCompleted()
                recycle(op)
                return kernelRetained
            }
            if result == -EAGAIN && op.silentSecond == nil && resubmit(op) { return false }
            if let head = op.linkHead { completeSilentHead(head, before: op) }
            // A silent first's own CQE: it failed, and the kernel posts none for its second.
            let skippedSecond = op.silentSecond.take()
            inFlight -= 1
            countCompleted()
            finish(op, result: result, flags: flags)
            if let skippedSecond { completeWithoutCQE(skippedSecond, result: -ECANCELED) }
            return kernelRetained
        }
        if releaseKernelReference { kernelReference.release() }
    }

    /// `op`, the second of a linked pair, completed. If the first posts no CQE on success
    /// (`silentSecond`) and it is still in flight, it succeeded (had it failed, its own CQE would
    /// have come, and none for `op`): it completes first, with the whole region sent.
    private func completeSilentHead(_ head: IOOperation, before op: IOOperation) {
        guard head.silentSecond === op, head.inFlight, head.userData == op.linkHeadUserData else { return }
        head.silentSecond = nil
        completeWithoutCQE(head, result: Int32(clamping: head.region.count))
    }

    /// Completes an in-flight operation whose CQE the kernel skips, as `complete` would have,
    /// including the kernel reference it carried (R4).
    private func completeWithoutCQE(_ op: IOOperation, result: Int32) {
        guard op.inFlight else { return }
        inFlight -= 1
        countCompleted()
        let kernelRetained = op.kernelRetained
        finish(op, result: result, flags: 0)
        if kernelRetained { Unmanaged.passUnretained(op).release() }
    }

    /// `-EAGAIN` means "try again": the operation goes back to the kernel (at most 3 times, and
    /// not once its waiter is gone), still holding the kernel's reference. Returns false when it
    /// should complete with the error instead.
    private func resubmit(_ op: IOOperation) -> Bool {
        guard op.retries < 3, let ring, !closed.load(ordering: .relaxed),
              op.state.load(ordering: .acquiring) != IOOperation.abandoned else { return false }
        op.retries += 1
        faults?.apply(to: op)
        return op.prepare(on: ring) == 0
    }

    private func finish(_ op: IOOperation, result: Int32, flags: UInt32) {
        if let next = op.linkedNext {
            // A linked pair that never reached the kernel: the second never starts.
            op.linkedNext = nil
            finish(next, result: -ECANCELED, flags: 0)
        }
        if let sink = op.sink {
            // A multishot operation that never started.
            sink.deliver(result: result, flags: 0, isFinal: true, driver: self)
            if isOwnerThread { recycle(op) }
            return
        }
        if op.complete(result: result, flags: flags) {
            // Abandoned: nobody will take the result. The reference the waiter left with the
            // driver (`IOOperation.drop`) goes once the record is recycled.
            op.closeUntakenDescriptor()
            if isOwnerThread { recycle(op) }
            Unmanaged.passUnretained(op).release()
        }
    }

    /// Takes in what other threads handed over (operations to start, cancels, finished records).
    func processRemote() {
        guard hasRemote.load(ordering: .acquiring) else { return }
        remote.withLock { remote in
            hasRemote.store(false, ordering: .relaxed)
            swap(&remote, &spare)
        }
        for id in spare.recycled { receiveBuffers?.recycle(id) }
        for op in spare.submits { prepare(op) }
        for (op, userData) in spare.cancels { cancelIfCurrent(op, userData: userData) }
        for op in spare.released { recycle(op) }
        spare.submits.removeAll(keepingCapacity: true)
        spare.cancels.removeAll(keepingCapacity: true)
        spare.released.removeAll(keepingCapacity: true)
        spare.recycled.removeAll(keepingCapacity: true)
    }

    // MARK: Shutdown (owning thread)

    /// Refuses further operations, cancels every one in flight and waits (up to `limit`) for their
    /// completions, so that no record or buffer is left with the kernel.
    func shutdown(reap: () -> Void, limit: Duration = .seconds(2)) {
        let leftover = remote.withLock { remote -> Remote in
            remote.closed = true
            let taken = remote
            remote = Remote(closed: true)
            return taken
        }
        closed.store(true, ordering: .relaxed)
        for op in leftover.submits { finish(op, result: -ECANCELED, flags: 0) }
        for (op, userData) in leftover.cancels { cancelIfCurrent(op, userData: userData) }
        if let ring, inFlight > 0 {
            _ = coil_ring_prep_cancel(ring, 0, Int32(COIL_ASYNC_CANCEL_ANY), coil_user_data_ignore)
            let deadline = MonotonicTime.nanoseconds() &+ MonotonicTime.nanoseconds(limit)
            while inFlight > 0 && MonotonicTime.nanoseconds() < deadline {
                _ = coil_ring_submit_and_wait(ring, 1, 10_000_000)
                reap()
            }
        }
        drainPool()
    }
}
