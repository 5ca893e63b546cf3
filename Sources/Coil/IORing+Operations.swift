import CCoil

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Preparing operations. Each queues one submission (submitting first if the queue is full, so
/// nothing is ever dropped) and throws only if the kernel refused that flush; the operation starts
/// at the next ``IORing/submit()`` or ``IORing/submitAndWait(minimumCompletions:timeout:)``.
/// Memory passed by pointer must stay valid, and not be touched, until the completion is reaped.
extension IORing {
    @inlinable @inline(__always)
    func check(_ ret: Int32, _ operation: StaticString) throws(IORingError) {
        if _slowPath(ret < 0) { throw IORingError(operation: "\(operation)", negativeErrno: ret) }
    }

    /// A no-op that completes with result 0.
    @inlinable
    public func prepareNop(userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_nop(ring, userData), "nop")
    }

    /// A no-op that completes with `result` (`IORING_NOP_INJECT_RESULT`): a negative one
    /// completes as a failure would, to rehearse error paths. Kernels before 6.10, which lack
    /// the flag, complete it with 0.
    @inlinable
    public func prepareNop(result: Int32, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_nop_result(ring, result, userData), "nop")
    }

    /// Reads up to `buffer.count` bytes from `fd` at `offset` (`nil`: the file's current position).
    @inlinable
    public func prepareRead(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, offset: UInt64?,
                            userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_read(ring, fd, buffer.baseAddress, UInt32(clamping: buffer.count),
                                      offset ?? UInt64.max, userData), "read")
    }

    /// Writes `buffer` to `fd` at `offset` (`nil`: the file's current position).
    @inlinable
    public func prepareWrite(fd: Int32, from buffer: UnsafeRawBufferPointer, offset: UInt64?,
                             userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_write(ring, fd, buffer.baseAddress, UInt32(clamping: buffer.count),
                                       offset ?? UInt64.max, userData), "write")
    }

    /// Accepts one connection on listening socket `fd`; the result is the new descriptor
    /// (close-on-exec). `address`/`addressLength` (optional) receive the peer's address.
    public func prepareAccept(fd: Int32, address: UnsafeMutablePointer<sockaddr>? = nil,
                              addressLength: UnsafeMutablePointer<socklen_t>? = nil,
                              userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_accept(ring, fd, address, addressLength, Int32(SOCK_CLOEXEC.rawValue), userData), "accept")
    }

    /// Accepts connections on `fd` until cancelled: one completion per connection, each with
    /// ``IOCompletion/hasMore`` while the request stays armed.
    public func prepareMultishotAccept(fd: Int32, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_multishot_accept(ring, fd, Int32(SOCK_CLOEXEC.rawValue), userData), "multishot accept")
    }

    /// Connects socket `fd` to `address` (of `length` bytes).
    public func prepareConnect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t,
                               userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_connect(ring, fd, address, length, userData), "connect")
    }

    /// Receives up to `buffer.count` bytes from socket `fd`; 0 means the peer closed. With
    /// `pollFirst` the kernel waits for the socket to be readable before it tries (for a socket
    /// known to be empty: the last receive's completion had no ``IOCompletion/socketHasMore``).
    @inlinable
    public func prepareReceive(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0,
                               pollFirst: Bool = false, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_recv(ring, fd, buffer.baseAddress, buffer.count, flags, pollFirst, userData), "recv")
    }

    /// Receives from `fd` until cancelled or out of buffers, each time into a buffer the kernel
    /// takes from `buffers` (see ``IOCompletion/bufferID``). A completion without
    /// ``IOCompletion/hasMore`` ends it (`ENOBUFS` when the group ran dry: recycle and re-arm).
    public func prepareMultishotReceive(fd: Int32, buffers: ProvidedBufferRing, flags: Int32 = 0,
                                        userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_recv_multishot(ring, fd, buffers.groupID, flags, userData), "multishot recv")
    }

    /// Sends `buffer` on socket `fd`; the result is the number of bytes sent (maybe fewer).
    @inlinable
    public func prepareSend(fd: Int32, from buffer: UnsafeRawBufferPointer, flags: Int32 = 0,
                            userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_send(ring, fd, buffer.baseAddress, buffer.count, flags, userData), "send")
    }

    /// Closes `fd`.
    public func prepareClose(fd: Int32, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_close(ring, fd, userData), "close")
    }

    /// A timer that completes with `-ETIME` after `duration` (cancel it through its `userData`,
    /// it then completes with `-ECANCELED`).
    public func prepareTimeout(after duration: Duration, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_timeout(ring, duration.clampedNanoseconds, 0, userData), "timeout")
    }

    /// Links a timeout to the operation prepared just before: if it has not completed after
    /// `duration` it is cancelled (completing with `-ECANCELED`; the timeout with `-ETIME`),
    /// otherwise the timeout completes with `-ECANCELED`. Call ``reserve(_:)`` with 2 before
    /// preparing the operation, so the pair goes in one submission.
    public func prepareLinkTimeout(after duration: Duration, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_link_timeout(ring, duration.clampedNanoseconds, userData), "link timeout")
    }

    /// Cancels the in-flight operation prepared with `target` (every one of them when `all`).
    /// Completes with 0 when found, `-ENOENT` when not, `-EALREADY` when it was already running.
    public func prepareCancel(userData target: UInt64, all: Bool = false, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_cancel(ring, target, all ? Int32(COIL_ASYNC_CANCEL_ALL) : 0, userData), "cancel")
    }

    /// Cancels every in-flight operation on descriptor `fd`.
    public func prepareCancel(fd: Int32, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_cancel_fd(ring, fd, UInt32(COIL_ASYNC_CANCEL_ALL), userData), "cancel fd")
    }

    /// Posts a completion `{targetUserData, result}` on the ring whose descriptor is `ringFD`
    /// (MSG_RING). This ring gets a completion of its own unless `skipOwnCompletion` (then only
    /// on failure).
    public func prepareMessage(to ringFD: Int32, result: Int32, targetUserData: UInt64,
                               skipOwnCompletion: Bool = false, userData: UInt64) throws(IORingError) {
        try check(coil_ring_prep_msg_ring(ring, ringFD, result, targetUserData, skipOwnCompletion, userData), "msg_ring")
    }

    /// Wakes the ring whose descriptor is `ringFD` through MSG_RING: its wait returns, and the
    /// wake completion is absorbed by its reap.
    public func prepareWake(ringFD: Int32) throws(IORingError) {
        try check(coil_ring_prep_wake(ring, ringFD), "msg_ring wake")
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to 0 for negative durations.
    @usableFromInline
    var clampedNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds < 0) { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }
}
