import CCoil
import CoilCore

#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket. ``accept()`` is backed by one multishot accept request that stays
/// armed in the kernel (re-armed when the kernel ends it) and queues connections as they come.
///
/// ```swift
/// let listener = try TCPListener.bind(host: "127.0.0.1", port: 8080)
/// while true {
///     let stream = try await listener.accept()
///     runtime.spawn { ... }   // serve it
/// }
/// ```
///
/// Closing the listener (or dropping it) cancels the accept request; connections accepted after
/// that are closed, and a pending ``accept()`` fails with `EBADF`.
public final class TCPListener: @unchecked Sendable {
    // SAFETY: immutable after init; the sink has its own lock.
    let descriptor: DescriptorBox
    let sink = MultishotSink(kind: .descriptors)
    /// The address the listener is bound to (with the port the kernel chose for port 0).
    public let localAddress: SocketAddress

    /// Binds to `address` and listens. `SO_REUSEADDR` is always set; `reusePort` sets
    /// `SO_REUSEPORT` so that several listeners (or processes) share the port.
    public static func bind(_ address: SocketAddress, backlog: Int32 = 1024, reusePort: Bool = false) throws(IOError) -> TCPListener {
        let fd = try Socket.make(family: address.family, type: Int32(SOCK_STREAM.rawValue))
        let box = DescriptorBox(fd)
        try Socket.setOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, operation: "setsockopt SO_REUSEADDR")
        if reusePort {
            try Socket.setOption(fd, level: SOL_SOCKET, name: SO_REUSEPORT, value: 1, operation: "setsockopt SO_REUSEPORT")
        }
        try Socket.bind(fd, to: address)
        if listen(fd, backlog) != 0 { throw IOError(operation: "listen", errno: errno) }
        return TCPListener(descriptor: box, localAddress: try Socket.localAddress(fd))
    }

    /// Binds to a numeric `host` (IPv4 or IPv6) and `port` (0: any free port).
    public static func bind(host: String, port: UInt16, backlog: Int32 = 1024, reusePort: Bool = false) throws(IOError) -> TCPListener {
        try bind(SocketAddress(host: host, port: port), backlog: backlog, reusePort: reusePort)
    }

    init(descriptor: DescriptorBox, localAddress: SocketAddress) {
        self.descriptor = descriptor
        self.localAddress = localAddress
    }

    deinit { sink.close() }

    /// The listening socket's descriptor.
    public var fileDescriptor: Int32 { descriptor.fd }

    /// The next connection. Errors the kernel reports for one connection (`ECONNABORTED`,
    /// `EMFILE`...) are thrown; the listener keeps working after them. Cancelling the Swift task
    /// throws `ECANCELED` (a connection that arrives later waits for the next accept).
    public func accept() async throws(IOError) -> TCPStream {
        guard let result = await acceptFuture().cancellableValue() else { throw IOError(operation: "accept", errno: ECANCELED) }
        return try result.get()
    }

    /// ``accept()`` as a future. For a deadline, `timeout(.seconds(5), listener.acceptFuture())`:
    /// accept takes no `timeout:` of its own, because its kernel request is the listener's one
    /// multishot accept, which a linked timeout would end.
    public func acceptFuture() -> AcceptFuture { AcceptFuture(listener: self) }

    /// Stops listening: cancels the accept request, closes connections not yet taken, and closes
    /// the socket.
    public func close() {
        sink.close()
        if descriptor.takeForClose() { _ = Glibc.close(descriptor.fd) }
    }

    /// Starts (again) the multishot accept request feeding the sink.
    func armAccept() -> IOOperation? {
        guard !descriptor.isClosed else { return nil }
        return IOOperation.start { op in
            op.request = .multishotAccept(fd: descriptor.fd)
            op.sink = sink
            op.owner = descriptor
        }
    }
}

/// The future of ``TCPListener/accept()``.
public struct AcceptFuture: Future {
    let listener: TCPListener

    public mutating func poll(_ context: inout Context) -> Poll<Result<TCPStream, IOError>> {
        guard Coop.proceed(&context) else { return .pending }
        let listener = self.listener
        guard let result = listener.sink.next(context.waker, arm: { listener.armAccept() }) else { return .pending }
        if result < 0 { return .ready(.failure(IOError(operation: "accept", errno: -result))) }
        return .ready(.success(TCPStream(fd: result)))
    }
}

/// A connected TCP socket.
///
/// Reads and writes take an ``IOBuffer`` and keep it until the kernel is done with it. Each
/// operation takes an optional `timeout` (a linked timeout on the same submission); a timed-out
/// operation throws `ETIMEDOUT`. Errors name the operation and the errno (`ECONNRESET`, `EPIPE`...).
///
/// ```swift
/// let stream = try await TCPStream.connect(to: .loopback(port: 8080))
/// try await stream.writeAll(IOBuffer(string: "ping"))
/// let reply = IOBuffer(capacity: 64)
/// let n = try await stream.read(into: reply, timeout: .seconds(1))   // 0: the peer closed
/// ```
///
/// A stream may be read by one task while another writes to it. It closes when dropped, or with
/// ``close()``.
public final class TCPStream: @unchecked Sendable {
    // SAFETY: immutable; the descriptor box decides the one closer.
    let descriptor: DescriptorBox

    init(fd: Int32) { descriptor = DescriptorBox(fd) }

    /// The socket's descriptor (for options Coil does not wrap; don't close it yourself).
    public var fileDescriptor: Int32 { descriptor.fd }

    /// Connects to `address`.
    /// Cancelling the Swift task cancels the connect (`ECANCELED`).
    public static func connect(to address: SocketAddress, timeout: Duration? = nil) async throws(IOError) -> TCPStream {
        guard let result = await (try connectFuture(to: address, timeout: timeout)).cancellableValue() else {
            throw IOError(operation: "connect", errno: ECANCELED)
        }
        return try result.get()
    }

    /// Connects to a numeric `host` and `port`.
    public static func connect(host: String, port: UInt16, timeout: Duration? = nil) async throws(IOError) -> TCPStream {
        try await connect(to: SocketAddress(host: host, port: port), timeout: timeout)
    }

    /// ``connect(to:timeout:)`` as a future (the socket is created at once).
    public static func connectFuture(to address: SocketAddress, timeout: Duration? = nil) throws(IOError) -> IOFuture<TCPStream> {
        let stream = TCPStream(fd: try Socket.make(family: address.family, type: Int32(SOCK_STREAM.rawValue)))
        let op = IOOperation.start { op in
            op.addressLength.pointee = address.write(to: op.address)
            op.request = .connect(fd: stream.descriptor.fd)
            op.owner = stream
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }
        return IOFuture(op) { op in
            op.result >= 0 ? .success(op.owner as! TCPStream) : .failure(op.error(for: op.result))
        }
    }

    // MARK: Reading

    /// Receives into `buffer`'s free space; returns the byte count (0: the peer closed its side)
    /// and grows `buffer.count` by it. The buffer must have free space.
    nonisolated(nonsending) public func read(into buffer: IOBuffer, timeout: Duration? = nil) async throws(IOError) -> Int {
        try await startRead(into: buffer, timeout: timeout).wait(TCPStream.finishStreamRead)
    }

    /// ``read(into:timeout:)`` as a future.
    public func readFuture(into buffer: IOBuffer, timeout: Duration? = nil) -> IOFuture<Int> {
        IOFuture(startRead(into: buffer, timeout: timeout), finish: TCPStream.finishStreamRead)
    }

    private func startRead(into buffer: IOBuffer, timeout: Duration?) -> IOOperation {
        precondition(buffer.freeCapacity > 0, "TCPStream.read into a full buffer")
        return IOOperation.start { op in
            // The last receive found the socket drained: arm the readiness poll at once instead of
            // trying a receive that would fail with EAGAIN first.
            op.request = .receive(fd: descriptor.fd, pollFirst: !descriptor.socketMayHaveData)
            op.buffer = buffer
            op.region = buffer.freeRegion
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }
    }

    /// `finishRead` for a stream's receive: also records whether the socket kept bytes, which
    /// decides how the next read starts (see `startRead`).
    static func finishStreamRead(_ op: IOOperation) -> Result<Int, IOError> {
        // SAFETY: startRead and startWriteThenRead make the stream's DescriptorBox the owner.
        unsafeDowncast(op.owner!, to: DescriptorBox.self).socketMayHaveData = coil_cqe_socket_nonempty(op.flags)
        return finishRead(op)
    }

    static func finishRead(_ op: IOOperation) -> Result<Int, IOError> {
        guard op.result >= 0 else { return .failure(op.error(for: op.result)) }
        op.buffer!.count += Int(op.result)
        return .success(Int(op.result))
    }

    // MARK: Writing

    /// Sends `buffer`'s bytes from `offset` once; returns how many the kernel took (maybe fewer).
    nonisolated(nonsending) public func write(_ buffer: IOBuffer, from offset: Int = 0, timeout: Duration? = nil) async throws(IOError) -> Int {
        try await startWrite(buffer, from: offset, timeout: timeout).wait(IOOperation.count)
    }

    /// ``write(_:from:timeout:)`` as a future.
    public func writeFuture(_ buffer: IOBuffer, from offset: Int = 0, timeout: Duration? = nil) -> IOFuture<Int> {
        IOFuture(startWrite(buffer, from: offset, timeout: timeout), finish: IOOperation.count)
    }

    private func startWrite(_ buffer: IOBuffer, from offset: Int, timeout: Duration?) -> IOOperation {
        precondition(offset >= 0 && offset <= buffer.count, "write from \(offset) of \(buffer.count) bytes")
        return IOOperation.start { op in
            op.request = .send(fd: descriptor.fd)
            op.buffer = buffer
            op.region = buffer.dataRegion(from: offset)
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }
    }

    /// Sends all of `buffer`'s bytes, continuing after short writes. `timeout` applies to each send.
    nonisolated(nonsending) public func writeAll(_ buffer: IOBuffer, timeout: Duration? = nil) async throws(IOError) {
        var offset = 0
        while offset < buffer.count {
            let sent = try await write(buffer, from: offset, timeout: timeout)
            if sent == 0 { throw IOError(operation: "send", errno: EPIPE) }
            offset += sent
        }
    }

    /// Sends the bytes of several buffers in order with one `writev` per kernel round (continuing
    /// after short writes until all are sent); returns the total.
    @discardableResult
    public func writeAll(vectored buffers: [IOBuffer], timeout: Duration? = nil) async throws(IOError) -> Int {
        let total = buffers.reduce(0) { $0 + $1.count }
        var sent = 0
        while sent < total {
            let n = try await startWritev(buffers, skipping: sent, timeout: timeout).wait(IOOperation.count)
            if n == 0 { throw IOError(operation: "writev", errno: EPIPE) }
            sent += n
        }
        return total
    }

    private func startWritev(_ buffers: [IOBuffer], skipping: Int, timeout: Duration?) -> IOOperation {
        IOOperation.start { op in
            var skip = skipping
            var parts: [(UnsafeMutableRawPointer, Int)] = []
            for buffer in buffers where buffer.count > 0 {
                if skip >= buffer.count { skip -= buffer.count; continue }
                parts.append((buffer.base + skip, buffer.count - skip))
                skip = 0
            }
            let vectors = parts.count <= IOOperation.inlineIovecs
                ? op.iovecs
                : op.extraStorage(parts.count * MemoryLayout<iovec>.stride).assumingMemoryBound(to: iovec.self)
            for (i, part) in parts.enumerated() { vectors[i] = iovec(iov_base: part.0, iov_len: part.1) }
            op.request = .writev(fd: descriptor.fd, count: Int32(parts.count))
            op.buffers = buffers
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }
    }

    // MARK: Ending

    /// Which direction ``shutdown(_:)`` ends.
    public enum ShutdownDirection: Sendable {
        case read, write, both
        var how: Int32 {
            switch self {
            case .read: Int32(SHUT_RD)
            case .write: Int32(SHUT_WR)
            case .both: Int32(SHUT_RDWR)
            }
        }
    }

    /// Ends one or both directions (the peer reads end-of-stream after `.write`).
    public func shutdown(_ direction: ShutdownDirection = .write) async throws(IOError) {
        try await IOOperation.start { op in
            op.request = .shutdown(fd: descriptor.fd, how: direction.how)
            op.owner = descriptor
        }.wait(IOOperation.done)
    }

    /// Closes the socket through the ring. Later operations fail with `EBADF`.
    public func close() async throws(IOError) {
        try await descriptor.close()
    }

    // MARK: Options and addresses

    /// `TCP_NODELAY`: send small writes at once (no Nagle delay).
    public var noDelay: Bool { Socket.option(descriptor.fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY) != 0 }

    /// Sets `TCP_NODELAY`.
    public func setNoDelay(_ on: Bool) throws(IOError) {
        try Socket.setOption(descriptor.fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: on ? 1 : 0,
                             operation: "setsockopt TCP_NODELAY")
    }

    /// This end's address (`getsockname`).
    public func localAddress() throws(IOError) -> SocketAddress { try Socket.localAddress(descriptor.fd) }
    /// The peer's address (`getpeername`; `ENOTCONN` once it is gone).
    public func peerAddress() throws(IOError) -> SocketAddress { try Socket.peerAddress(descriptor.fd) }
}

extension DescriptorBox {
    /// Closes the descriptor through the ring (once; later calls do nothing).
    func close() async throws(IOError) {
        guard takeForClose() else { return }
        let fd = self.fd
        try await IOOperation.start { op in op.request = .close(fd: fd) }.wait(IOOperation.done)
    }
}
