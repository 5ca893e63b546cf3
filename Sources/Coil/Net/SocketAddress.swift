import CCoil
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address.
///
/// ```swift
/// let address = try SocketAddress(host: "127.0.0.1", port: 8080)
/// let any6 = try SocketAddress(host: "::", port: 0)
/// ```
public enum SocketAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(host: (UInt8, UInt8, UInt8, UInt8), port: UInt16)
    case v6(host: [UInt8], port: UInt16, scopeID: UInt32)

    /// Parses a numeric IPv4 (`"127.0.0.1"`) or IPv6 (`"::1"`) host. Names are not resolved.
    public init(host: String, port: UInt16) throws(IOError) {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            let b = withUnsafeBytes(of: v4) { Array($0) }
            self = .v4(host: (b[0], b[1], b[2], b[3]), port: port)
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            self = .v6(host: withUnsafeBytes(of: v6) { Array($0) }, port: port, scopeID: 0)
            return
        }
        throw IOError(operation: "parse address \"\(host)\"", errno: EINVAL)
    }

    /// 127.0.0.1 (or ::1) at `port`.
    public static func loopback(port: UInt16, ipv6: Bool = false) -> SocketAddress {
        ipv6 ? .v6(host: Array(repeating: 0, count: 15) + [1], port: port, scopeID: 0)
             : .v4(host: (127, 0, 0, 1), port: port)
    }

    /// The port, in host byte order.
    public var port: UInt16 {
        switch self {
        case .v4(_, let port), .v6(_, let port, _): port
        }
    }

    /// `AF_INET` or `AF_INET6`.
    public var family: Int32 {
        switch self {
        case .v4: AF_INET
        case .v6: AF_INET6
        }
    }

    /// The numeric host (`"127.0.0.1"`, `"::1"`).
    public var host: String {
        switch self {
        case .v4(let h, _): return "\(h.0).\(h.1).\(h.2).\(h.3)"
        case .v6(let bytes, _, _):
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
            return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    public var description: String {
        switch self {
        case .v4: "\(host):\(port)"
        case .v6: "[\(host)]:\(port)"
        }
    }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool { a.description == b.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    /// Writes the C form into `storage`; returns its length.
    func write(to storage: UnsafeMutablePointer<sockaddr>) -> socklen_t {
        switch self {
        case .v4(let h, let port):
            let raw = UnsafeMutableRawPointer(storage)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: [h.0, h.1, h.2, h.3]) }
            raw.storeBytes(of: address, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6(let bytes, let port, let scopeID):
            let raw = UnsafeMutableRawPointer(storage)
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: bytes) }
            raw.storeBytes(of: address, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// Reads a C socket address (IPv4 or IPv6); nil for other families.
    init?(reading storage: UnsafePointer<sockaddr>) {
        let raw = UnsafeRawPointer(storage)
        switch Int32(storage.pointee.sa_family) {
        case AF_INET:
            let address = raw.loadUnaligned(as: sockaddr_in.self)
            let b = withUnsafeBytes(of: address.sin_addr) { Array($0) }
            self = .v4(host: (b[0], b[1], b[2], b[3]), port: UInt16(bigEndian: address.sin_port))
        case AF_INET6:
            let address = raw.loadUnaligned(as: sockaddr_in6.self)
            self = .v6(host: withUnsafeBytes(of: address.sin6_addr) { Array($0) },
                       port: UInt16(bigEndian: address.sin6_port), scopeID: address.sin6_scope_id)
        default:
            return nil
        }
    }

    /// Calls `body` with the C form.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var storage = sockaddr_storage()
        return withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                let length = write(to: address)
                return body(address, length)
            }
        }
    }
}

/// Socket system calls that are not worth a ring round trip (setup, options, addresses).
enum Socket {
    static func make(family: Int32, type: Int32) throws(IOError) -> Int32 {
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw IOError(operation: "socket", errno: errno) }
        return fd
    }

    static func setOption(_ fd: Int32, level: Int32, name: Int32, value: Int32, operation: String) throws(IOError) {
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw IOError(operation: operation, errno: errno)
        }
    }

    static func option(_ fd: Int32, level: Int32, name: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, level, name, &value, &length)
        return value
    }

    static func bind(_ fd: Int32, to address: SocketAddress) throws(IOError) {
        let ret = address.withSockaddr { Glibc.bind(fd, $0, $1) }
        if ret != 0 { throw IOError(operation: "bind \(address)", errno: errno) }
    }

    static func localAddress(_ fd: Int32) throws(IOError) -> SocketAddress {
        try name(fd, operation: "getsockname") { getsockname($0, $1, $2) }
    }

    static func peerAddress(_ fd: Int32) throws(IOError) -> SocketAddress {
        try name(fd, operation: "getpeername") { getpeername($0, $1, $2) }
    }

    private static func name(_ fd: Int32, operation: String,
                             _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) throws(IOError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        // nil: the call failed (errno says why); .some(nil): an address family Coil doesn't know.
        let result: SocketAddress?? = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address -> SocketAddress?? in
                guard call(fd, address, &length) == 0 else { return .none }
                return .some(SocketAddress(reading: address))
            }
        }
        guard let found = result else { throw IOError(operation: operation, errno: errno) }
        guard let address = found else { throw IOError(operation: operation, errno: EAFNOSUPPORT) }
        return address
    }
}

/// One descriptor, closed exactly once: by `close()` or when its owner goes away.
final class DescriptorBox: @unchecked Sendable {
    // SAFETY: `closed` decides the one closer.
    let fd: Int32
    private let closed = Atomic<Bool>(false)
    private let receiveHint = Atomic<Bool>(true)

    /// A socket's last receive left bytes in it (or none happened yet). Only a hint for choosing
    /// how to start the next receive (TCPStream.read), so relaxed: any value is correct.
    var socketMayHaveData: Bool {
        get { receiveHint.load(ordering: .relaxed) }
        set { receiveHint.store(newValue, ordering: .relaxed) }
    }

    init(_ fd: Int32) { self.fd = fd }

    /// Marks the descriptor closed; returns true for the one caller who must close it.
    func takeForClose() -> Bool { !closed.exchange(true, ordering: .acquiringAndReleasing) }

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    deinit { if takeForClose() { _ = Glibc.close(fd) } }
}
