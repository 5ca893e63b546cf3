import CCoil
import CoilCore

#if canImport(Glibc)
import Glibc
#endif

/// A UDP socket.
///
/// Datagrams go out of and come into ``IOBuffer``s that the operation keeps until the kernel is
/// done with them. A socket that ``connect(to:)`` fixed a peer for uses ``send(_:timeout:)`` and
/// ``receive(into:timeout:)``; any socket can use ``send(_:to:timeout:)`` and
/// ``receiveFrom(into:timeout:)``.
///
/// ```swift
/// let socket = try UDPSocket.bind(host: "127.0.0.1", port: 9000)
/// let buffer = IOBuffer(capacity: 1500)
/// let (count, sender) = try await socket.receiveFrom(into: buffer)
/// try await socket.send(buffer, to: sender)        // echo the datagram back
/// ```
///
/// A datagram longer than the buffer's free space is cut to fit (the rest is dropped, as with
/// `recvfrom(2)`). Each operation takes an optional `timeout` (a linked timeout on the same
/// submission; it throws `ETIMEDOUT`). The socket closes when dropped, or with ``close()``.
public final class UDPSocket: @unchecked Sendable {
    // SAFETY: immutable; the descriptor box decides the one closer.
    let descriptor: DescriptorBox

    init(fd: Int32) { descriptor = DescriptorBox(fd) }

    /// A socket bound to `address` (port 0: any free port). `reusePort` sets `SO_REUSEPORT`.
    public static func bind(_ address: SocketAddress, reusePort: Bool = false) throws(IOError) -> UDPSocket {
        let socket = UDPSocket(fd: try Socket.make(family: address.family, type: Int32(SOCK_DGRAM.rawValue)))
        if reusePort {
            try Socket.setOption(socket.descriptor.fd, level: SOL_SOCKET, name: SO_REUSEPORT, value: 1,
                                 operation: "setsockopt SO_REUSEPORT")
        }
        try Socket.bind(socket.descriptor.fd, to: address)
        return socket
    }

    /// A socket bound to a numeric `host` (IPv4 or IPv6) and `port`.
    public static func bind(host: String, port: UInt16, reusePort: Bool = false) throws(IOError) -> UDPSocket {
        try bind(SocketAddress(host: host, port: port), reusePort: reusePort)
    }

    /// The socket's descriptor (for options Coil does not wrap; don't close it yourself).
    public var fileDescriptor: Int32 { descriptor.fd }

    /// Fixes the peer: ``send(_:timeout:)`` goes to it, and only its datagrams are received.
    /// (UDP's connect sends nothing, so this does not wait.)
    public func connect(to address: SocketAddress) throws(IOError) {
        let result = address.withSockaddr { pointer, length in Glibc.connect(descriptor.fd, pointer, length) }
        if result != 0 { throw IOError(operation: "connect", errno: errno) }
    }

    // MARK: Connected

    /// Sends `buffer`'s bytes as one datagram to the connected peer; returns the byte count.
    @discardableResult
    nonisolated(nonsending) public func send(_ buffer: IOBuffer, timeout: Duration? = nil) async throws(IOError) -> Int {
        try await IOOperation.start { op in
            op.request = .send(fd: descriptor.fd)
            op.buffer = buffer
            op.region = buffer.dataRegion(from: 0)
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait(IOOperation.count)
    }

    /// Receives one datagram into `buffer`'s free space (from the connected peer, or anyone);
    /// returns its byte count and grows `buffer.count` by it.
    nonisolated(nonsending) public func receive(into buffer: IOBuffer, timeout: Duration? = nil) async throws(IOError) -> Int {
        precondition(buffer.freeCapacity > 0, "UDPSocket.receive into a full buffer")
        return try await IOOperation.start { op in
            op.request = .receive(fd: descriptor.fd, pollFirst: false)
            op.buffer = buffer
            op.region = buffer.freeRegion
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait(TCPStream.finishRead)
    }

    // MARK: Addressed

    /// Sends `buffer`'s bytes as one datagram to `address`; returns the byte count.
    @discardableResult
    nonisolated(nonsending) public func send(_ buffer: IOBuffer, to address: SocketAddress, timeout: Duration? = nil) async throws(IOError) -> Int {
        try await IOOperation.start { op in
            op.request = .sendMessage(fd: descriptor.fd)
            op.buffer = buffer
            op.region = buffer.dataRegion(from: 0)
            op.prepareMessage(addressLength: address.write(to: op.address))
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait(IOOperation.count)
    }

    /// Receives one datagram into `buffer`'s free space; returns its byte count (`buffer.count`
    /// grows by it) and the sender's address.
    nonisolated(nonsending) public func receiveFrom(into buffer: IOBuffer, timeout: Duration? = nil) async throws(IOError) -> (count: Int, sender: SocketAddress) {
        precondition(buffer.freeCapacity > 0, "UDPSocket.receiveFrom into a full buffer")
        return try await IOOperation.start { op in
            op.request = .receiveMessage(fd: descriptor.fd)
            op.buffer = buffer
            op.region = buffer.freeRegion
            op.prepareMessage(addressLength: socklen_t(MemoryLayout<sockaddr_storage>.size))
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait { op -> Result<(count: Int, sender: SocketAddress), IOError> in
            guard op.result >= 0 else { return .failure(op.error(for: op.result)) }
            guard let sender = SocketAddress(reading: op.address) else {
                return .failure(IOError(operation: "recvmsg", errno: EAFNOSUPPORT))
            }
            op.buffer!.count += Int(op.result)
            return .success((Int(op.result), sender))
        }
    }

    // MARK: Addresses and ending

    /// This end's address (`getsockname`).
    public func localAddress() throws(IOError) -> SocketAddress { try Socket.localAddress(descriptor.fd) }
    /// The connected peer's address (`ENOTCONN` if ``connect(to:)`` was not called).
    public func peerAddress() throws(IOError) -> SocketAddress { try Socket.peerAddress(descriptor.fd) }

    /// Closes the socket through the ring. Later operations fail with `EBADF`.
    public func close() async throws(IOError) {
        try await descriptor.close()
    }
}
