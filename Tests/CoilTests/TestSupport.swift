import Coil
import CoilTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

extension IORing {
    /// Submits, then waits and reaps until `count` completions arrived or `deadline` passed.
    func collect(_ count: Int, within deadline: Duration = .seconds(5),
                 file: StaticString = #filePath, line: UInt = #line) throws -> [IOCompletion] {
        var got: [IOCompletion] = []
        let clock = ContinuousClock()
        let end = clock.now + deadline
        try submit()
        try forEachCompletion { got.append($0) }
        while got.count < count {
            let left = end - clock.now
            if left <= .zero { break }
            try submitAndWait(minimumCompletions: 1, timeout: left)
            try forEachCompletion { got.append($0) }
        }
        XCTAssertEqual(got.count, count, "completions collected before the deadline", file: file, line: line)
        return got
    }
}

/// A TCP socket listening on 127.0.0.1 at an ephemeral port.
func makeLoopbackListener() throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw IORingError(operation: "socket", errno: errno) }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = loopbackAddress(port: 0)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, 128) == 0 else { close(fd); throw IORingError(operation: "bind/listen", errno: errno) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, UInt16(bigEndian: address.sin_port))
}

func loopbackAddress(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return address
}

/// A blocking client socket connected to 127.0.0.1:`port`.
func connectLoopback(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw IORingError(operation: "socket", errno: errno) }
    var address = loopbackAddress(port: port)
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { let e = errno; close(fd); throw IORingError(operation: "connect", errno: e) }
    return fd
}

/// A connected pair of loopback TCP sockets (client, server side).
func makeLoopbackPair() throws -> (client: Int32, server: Int32) {
    let listener = try makeLoopbackListener()
    defer { close(listener.fd) }
    let client = try connectLoopback(port: listener.port)
    let server = accept(listener.fd, nil, nil)
    guard server >= 0 else { close(client); throw IORingError(operation: "accept", errno: errno) }
    return (client, server)
}

/// Sends all of `bytes` on a blocking socket.
func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        precondition(n > 0, "send failed: \(errno)")
        offset += n
    }
}

/// Number of open descriptors in this process (to prove none leaked).
func openDescriptorCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count - 3 // ".", ".." and the directory's own descriptor
}
