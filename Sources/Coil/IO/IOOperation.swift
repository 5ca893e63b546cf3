import CCoil
import CoilCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What an in-flight operation asks the kernel to do. The memory it names (the region, the
/// address, the message header, the path) lives in the operation record, which outlives the
/// kernel's use of it.
enum IORequest {
    case nop
    /// recv(2); `pollFirst` arms the readiness poll before trying (IORING_RECVSEND_POLL_FIRST).
    case receive(fd: Int32, pollFirst: Bool)
    case send(fd: Int32)
    /// A send of the whole region or an error (MSG_WAITALL: the kernel retries short sends).
    case sendAll(fd: Int32)
    case writev(fd: Int32, count: Int32)
    case accept(fd: Int32)
    case multishotAccept(fd: Int32)
    /// Multishot receive into the driver's provided buffers (group `IODriver.receiveGroup`).
    case multishotReceive(fd: Int32)
    case connect(fd: Int32)
    case close(fd: Int32)
    case shutdown(fd: Int32, how: Int32)
    /// Reads into / writes from `region` at a file offset (`UInt64.max`: the current position).
    case read(fd: Int32, offset: UInt64)
    case write(fd: Int32, offset: UInt64)
    /// The message header in scratch (`message`), naming `address` and the iovecs.
    case sendMessage(fd: Int32)
    case receiveMessage(fd: Int32)
    /// openat(2) of the NUL-terminated path in `extra`.
    case open(flags: Int32, mode: UInt32)
    case fsync(fd: Int32, dataOnly: Bool)
    /// statx(2) of the descriptor into `extra`.
    case statx(fd: Int32)

    /// The name an error carries.
    var name: String {
        switch self {
        case .nop: "nop"
        case .receive: "recv"
        case .multishotReceive: "recv_multishot"
        case .send, .sendAll: "send"
        case .writev: "writev"
        case .accept, .multishotAccept: "accept"
        case .connect: "connect"
        case .close: "close"
        case .shutdown: "shutdown"
        case .read: "read"
        case .write: "write"
        case .sendMessage: "sendmsg"
        case .receiveMessage: "recvmsg"
        case .open: "open"
        case .fsync(_, let dataOnly): dataOnly ? "fdatasync" : "fsync"
        case .statx: "statx"
        }
    }

    var isClose: Bool {
        if case .close = self { return true }
        return false
    }

    /// Whether a successful result is a new descriptor (closed if nobody takes it, R5).
    var returnsDescriptor: Bool {
        switch self {
        case .accept, .multishotAccept, .open: true
        default: false
        }
    }
}

/// One in-flight io_uring operation: the record whose address is the SQE's `user_data`.
///
/// Lifecycle (DESIGN.md, "I/O"), one state word:
///
///     pending ──(waiter registers)──▶ waiting ──(CQE)──▶ completed ──(waiter takes the result)
///        │                              │
///        └──────(future dropped)────────┴──▶ abandoned ──(CQE)──▶ freed by the driver
///
/// Rules:
/// - R1. Only the owning driver's thread prepares, submits and completes a record, and only it
///   reads `request` after submission.
/// - R2. The completion writes `result` and `flags`, then moves the state to `completed` with
///   release; the waiter reads them after an acquire load that saw `completed`.
/// - R3. The waiter slot (`waker` / `continuation`) belongs to the waiter while the state is
///   `pending`, and to whoever moves the state out of `waiting`.
/// - R4. The record is released by whichever side comes second: the waiter when it finds
///   `completed`, the driver when the CQE finds `abandoned`; released records go back to their
///   driver's pool. The record never dies under the kernel: until the final CQE it is held by
///   its waiter, or, once the waiter abandons it, by a reference the waiter leaves with the
///   driver (taken before the state says `abandoned`, released by the driver after recycling
///   the record). Multishot operations and linked pairs instead carry a kernel reference
///   (retained at prepare, released at the final CQE; for the first of a pair whose success
///   posts no CQE, `silentSecond`, at the CQE that stands in for it). A cancel request holds the record too,
///   and checks `generation` to see whether it is stale.
/// - R5. A result descriptor (accept, open) nobody takes is closed by whoever frees the record.
///
/// `user_data` = record address | (generation & 15). Swift objects are 16-byte aligned, so the
/// low four bits are free; the generation makes a cancel aimed at an earlier use of a recycled
/// record miss. Driver-reserved values sit at the top of the range (`COIL_USER_DATA_*`), far
/// above any user-space address.
@usableFromInline
final class IOOperation: @unchecked Sendable {
    // SAFETY: see the rules above. The mutable fields are touched by one thread at a time (R1-R3)
    // and never while a mutation of the same field is under way, so they skip the runtime's
    // dynamic exclusivity checks (two calls into the runtime per modification otherwise).
    static let pending = 0, waiting = 1, completed = 2, abandoned = 3

    let state = Atomic<Int>(IOOperation.pending)
    /// The driver whose ring carries the operation (strong: a record may outlive the runtime).
    let driver: IODriver

    @exclusivity(unchecked) var request: IORequest = .nop
    /// Linked timeout in nanoseconds, 0 for none.
    @exclusivity(unchecked) var timeout: UInt64 = 0
    @exclusivity(unchecked) var result: Int32 = 0
    @exclusivity(unchecked) var flags: UInt32 = 0
    @exclusivity(unchecked) var generation: UInt64 = 0
    /// Submitted and its final CQE not seen yet (driver thread only).
    @exclusivity(unchecked) var inFlight = false
    /// The driver holds a reference for the kernel until the final CQE (multishot operations and
    /// linked pairs; driver thread only).
    @exclusivity(unchecked) var kernelRetained = false
    /// The waiter took the result (a returned descriptor is theirs now).
    @exclusivity(unchecked) var resultTaken = false
    /// Fault injection: the errno this operation's completion is rewritten to (0: none). An
    /// operation chosen for an error goes to the kernel as a NOP failing with it, so nothing it
    /// would have done (consume bytes, accept a connection) happens, and a request linked after
    /// it is cancelled.
    @exclusivity(unchecked) var injectedErrno: Int32 = 0
    /// Times the driver resubmitted the operation after `-EAGAIN`.
    @exclusivity(unchecked) var retries: UInt8 = 0
    /// An operation to submit right after this one, linked to it (IOSQE_IO_LINK): it starts when
    /// this one succeeds and is cancelled if this one fails. Cleared once both are prepared.
    @exclusivity(unchecked) var linkedNext: IOOperation? = nil
    /// For the second of a linked pair: the first, and its user data then, so that cancelling
    /// the second also cancels the first while it runs (a request waiting in a link is not yet
    /// in flight, so a cancel aimed at it alone finds nothing).
    @exclusivity(unchecked) var linkHead: IOOperation? = nil
    @exclusivity(unchecked) var linkHeadUserData: UInt64 = 0
    /// For the first of a linked pair that posts no CQE when it succeeds (IOSQE_CQE_SKIP_SUCCESS;
    /// a send with MSG_WAITALL, so success means the whole region went out): the second. If the
    /// first succeeds, the second's CQE completes both; if it fails, its own CQE comes and the
    /// kernel posts none for the second, which the driver then completes with ECANCELED (driver
    /// thread only).
    @exclusivity(unchecked) var silentSecond: IOOperation? = nil
    /// The driver sent a cancel for this use of the record (owner thread; read by the waiter
    /// after the completion, which the driver publishes later).
    @exclusivity(unchecked) var cancelRequested = false

    @exclusivity(unchecked) var waker: RawWaker? = nil
    @exclusivity(unchecked) var continuation: UnsafeContinuation<Void, Never>? = nil
    /// Keeps the memory the kernel uses alive until the CQE: the buffer, and the object owning
    /// the descriptor.
    @exclusivity(unchecked) var buffer: IOBuffer? = nil
    @exclusivity(unchecked) var buffers: [IOBuffer] = []
    @exclusivity(unchecked) var owner: AnyObject? = nil
    /// Where a read or write goes (inside `buffer`).
    @exclusivity(unchecked) var region: UnsafeMutableRawBufferPointer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// For multishot operations: where completions go.
    @exclusivity(unchecked) var sink: MultishotSink? = nil
    /// Fixed scratch memory: a socket address and its length, iovecs. The kernel reads it until
    /// the CQE (connect) or writes it (accept), and the record outlives that (R4).
    let scratch: UnsafeMutableRawPointer
    /// Room for more iovecs than fit in `scratch` (kept with the record for reuse).
    @exclusivity(unchecked) var extra: UnsafeMutableRawPointer? = nil

    static let addressOffset = 0                                   // sockaddr_storage, 128 bytes
    static let addressLengthOffset = 128                           // socklen_t
    static let iovecOffset = 144                                   // iovec x 4
    static let inlineIovecs = 4
    static let messageOffset = 208                                 // msghdr, 56 bytes
    static let scratchSize = 272

    static let live = Atomic<Int>(0)

    init(driver: IODriver) {
        self.driver = driver
        scratch = .allocate(byteCount: Self.scratchSize, alignment: 16)
        Self.live.add(1, ordering: .relaxed)
    }

    deinit {
        scratch.deallocate()
        extra?.deallocate()
        if let waker { waker.vtable.pointee.drop(waker.data) }
        Self.live.subtract(1, ordering: .relaxed)
    }

    var userData: UInt64 {
        UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque())) | (generation & 15)
    }

    /// The record a CQE's user data names (unretained; see R4 for what keeps it alive).
    static func unmanaged(userData: UInt64) -> Unmanaged<IOOperation> {
        Unmanaged<IOOperation>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(userData & ~15))!)
    }

    var address: UnsafeMutablePointer<sockaddr> {
        (scratch + Self.addressOffset).assumingMemoryBound(to: sockaddr.self)
    }
    var addressLength: UnsafeMutablePointer<socklen_t> {
        (scratch + Self.addressLengthOffset).assumingMemoryBound(to: socklen_t.self)
    }
    var iovecs: UnsafeMutablePointer<iovec> {
        (scratch + Self.iovecOffset).assumingMemoryBound(to: iovec.self)
    }
    var message: UnsafeMutablePointer<msghdr> {
        (scratch + Self.messageOffset).assumingMemoryBound(to: msghdr.self)
    }

    /// Fills the message header for one datagram: `region` as its only iovec, `address` (of
    /// `addressLength` bytes, 0 for none) as its peer.
    func prepareMessage(addressLength length: socklen_t) {
        iovecs[0] = iovec(iov_base: region.baseAddress, iov_len: region.count)
        addressLength.pointee = length
        message.pointee = msghdr(
            msg_name: length > 0 ? UnsafeMutableRawPointer(address) : nil, msg_namelen: length,
            msg_iov: iovecs, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
    }

    /// Extra memory of at least `bytes` (kept with the record for reuse).
    func extraStorage(_ bytes: Int) -> UnsafeMutableRawPointer {
        if let extra, extraSize >= bytes { return extra }
        extra?.deallocate()
        let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        extra = storage
        extraSize = bytes
        return storage
    }
    @exclusivity(unchecked) private var extraSize = 0

    /// Back to a blank record for the pool (driver thread, or a record nobody else can reach).
    func reset() {
        request = .nop
        timeout = 0
        result = 0
        flags = 0
        generation &+= 1
        inFlight = false
        kernelRetained = false
        resultTaken = false
        injectedErrno = 0
        retries = 0
        // (Fields that are usually nil already are only cleared when set: clearing one costs a
        // call into the runtime even then.)
        if linkedNext != nil { linkedNext = nil }
        if linkHead != nil { linkHead = nil }
        if silentSecond != nil { silentSecond = nil }
        cancelRequested = false
        if let waker { waker.vtable.pointee.drop(waker.data) }
        waker = nil
        continuation = nil
        buffer = nil
        if !buffers.isEmpty { buffers.removeAll(keepingCapacity: true) }
        owner = nil
        if sink != nil { sink = nil }
        region = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        if extraSize > 4096 {
            extra?.deallocate()
            extra = nil
            extraSize = 0
        }
        state.store(Self.pending, ordering: .relaxed)
    }

    // MARK: Preparing (R1)

    /// Queues the SQE (and its linked timeout) on `ring`. Returns 0 or -errno.
    func prepare(on ring: OpaquePointer) -> Int32 {
        let data = userData
        // An injected error replaces the operation with a NOP that fails with it, except a
        // close: a descriptor is closed even when close(2) reports an error. Failing in the
        // kernel (not only in the rewritten completion) matters for a link head: the kernel then
        // cancels what is linked after it, as it would after a real failure.
        if injectedErrno != 0, !request.isClose { return coil_ring_prep_nop_result(ring, -injectedErrno, data) }
        if timeout > 0 {
            let reserved = coil_ring_reserve(ring, 2)
            if reserved < 0 { return reserved }
        }
        var ret: Int32
        switch request {
        case .nop:
            ret = coil_ring_prep_nop(ring, data)
        case .receive(let fd, let pollFirst):
            ret = coil_ring_prep_recv(ring, fd, region.baseAddress, region.count, 0, pollFirst, data)
        case .send(let fd):
            ret = coil_ring_prep_send(ring, fd, region.baseAddress, region.count, Int32(MSG_NOSIGNAL), data)
        case .sendAll(let fd):
            ret = coil_ring_prep_send(ring, fd, region.baseAddress, region.count, Int32(MSG_NOSIGNAL | MSG_WAITALL), data)
        case .writev(let fd, let count):
            let vectors = count <= Self.inlineIovecs ? iovecs : extra!.assumingMemoryBound(to: iovec.self)
            ret = coil_ring_prep_writev(ring, fd, vectors, UInt32(count), UInt64.max, data)
        case .accept(let fd):
            addressLength.pointee = socklen_t(MemoryLayout<sockaddr_storage>.size)
            ret = coil_ring_prep_accept(ring, fd, address, addressLength, Int32(SOCK_CLOEXEC.rawValue), data)
        case .multishotAccept(let fd):
            ret = coil_ring_prep_multishot_accept(ring, fd, Int32(SOCK_CLOEXEC.rawValue), data)
        case .multishotReceive(let fd):
            ret = coil_ring_prep_recv_multishot(ring, fd, IODriver.receiveGroup, 0, data)
        case .connect(let fd):
            ret = coil_ring_prep_connect(ring, fd, address, addressLength.pointee, data)
        case .close(let fd):
            ret = coil_ring_prep_close(ring, fd, data)
        case .shutdown(let fd, let how):
            ret = coil_ring_prep_shutdown(ring, fd, how, data)
        case .read(let fd, let offset):
            ret = coil_ring_prep_read(ring, fd, region.baseAddress, UInt32(clamping: region.count), offset, data)
        case .write(let fd, let offset):
            ret = coil_ring_prep_write(ring, fd, region.baseAddress, UInt32(clamping: region.count), offset, data)
        case .sendMessage(let fd):
            ret = coil_ring_prep_sendmsg(ring, fd, message, Int32(MSG_NOSIGNAL), data)
        case .receiveMessage(let fd):
            ret = coil_ring_prep_recvmsg(ring, fd, message, 0, data)
        case .open(let flags, let mode):
            ret = coil_ring_prep_openat(ring, COIL_AT_FDCWD, extra!.assumingMemoryBound(to: CChar.self), flags, mode, data)
        case .fsync(let fd, let dataOnly):
            ret = coil_ring_prep_fsync(ring, fd, dataOnly, data)
        case .statx(let fd):
            // The empty path lives in scratch (the address area is unused by statx).
            scratch.storeBytes(of: 0, as: UInt8.self)
            ret = coil_ring_prep_statx(ring, fd, scratch.assumingMemoryBound(to: CChar.self), COIL_AT_EMPTY_PATH, extra, data)
        }
        if ret == 0 && timeout > 0 {
            ret = coil_ring_prep_link_timeout(ring, timeout, coil_user_data_ignore)
        }
        return ret
    }

    // MARK: Waiting (R2, R3)

    /// Registers the polling task's waker; returns true when the operation already completed.
    func register(_ waker: borrowing Waker) -> Bool {
        var current = state.load(ordering: .acquiring)
        if current == Self.waiting {
            // Take the slot back to replace the waker (unless it is the same one).
            if let stored = self.waker, stored == waker.rawWaker { return false }
            guard state.compareExchange(expected: Self.waiting, desired: Self.pending, ordering: .acquiring).exchanged else {
                return true  // completed meanwhile
            }
            current = Self.pending
        }
        guard current == Self.pending else { return true }
        if let old = self.waker { old.vtable.pointee.drop(old.data) }
        self.waker = waker.clone().intoRaw()
        if state.compareExchange(expected: Self.pending, desired: Self.waiting, ordering: .acquiringAndReleasing).exchanged {
            return false
        }
        return true  // completed while we wrote the slot; the slot stays ours (dropped at reset)
    }

    /// Suspends the calling async task until the completion (resumed on the completing thread).
    func suspend(_ continuation: UnsafeContinuation<Void, Never>) {
        self.continuation = continuation
        if !state.compareExchange(expected: Self.pending, desired: Self.waiting, ordering: .acquiringAndReleasing).exchanged {
            self.continuation = nil
            continuation.resume()
        }
    }

    var isCompleted: Bool { state.load(ordering: .acquiring) == Self.completed }

    // MARK: Completing (driver thread)

    /// Records a completion and wakes the waiter. Returns true if the record was abandoned (the
    /// driver then frees it, R4).
    func complete(result: Int32, flags: UInt32) -> Bool {
        self.result = result
        self.flags = flags
        inFlight = false
        switch state.exchange(Self.completed, ordering: .acquiringAndReleasing) {
        case Self.waiting:
            if let continuation = continuation.take() {
                continuation.resume()
            } else if let raw = waker.take() {
                Waker(unsafeRaw: raw).wake()
            }
            return false
        case Self.abandoned:
            return true
        default:
            return false
        }
    }

    /// The waiter is going away without the result (its future was dropped). Returns true if
    /// the operation completed already (the caller frees the record), false if it is still in the
    /// kernel (the caller asks the driver to cancel it; the driver frees it at the CQE).
    func abandon() -> Bool {
        while true {
            let current = state.load(ordering: .acquiring)
            if current == Self.completed { return true }
            if state.compareExchange(expected: current, desired: Self.abandoned, ordering: .acquiringAndReleasing).exchanged {
                if current == Self.waiting, let raw = waker.take() { raw.vtable.pointee.drop(raw.data) }
                return false
            }
        }
    }

    /// R5: closes a descriptor result nobody took.
    func closeUntakenDescriptor() {
        if request.returnsDescriptor && result >= 0 && !resultTaken {
            _ = Glibc.close(result)
            resultTaken = true
        }
    }

    /// The error for a failed result, naming the operation (a linked timeout's cancellation reads
    /// as `ETIMEDOUT`).
    func error(for result: Int32) -> IOError {
        if result == -ECANCELED && timeout > 0 { return IOError(operation: request.name, errno: ETIMEDOUT) }
        return IOError(operation: request.name, errno: -result)
    }
}

/// The error every Coil I/O operation throws: the operation's name and the errno.
public typealias IOError = IORingError
