import Coil
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Loopback TCP through the ring: accept, connect, recv, send, multishot accept, buffer-ring recv.
final class RingSocketTests: XCTestCase {
    func testAcceptReceiveSendOnLoopback() throws {
        let ring = try IORing(entries: 16)
        let listener = try makeLoopbackListener()
        defer { close(listener.fd) }
        try ring.prepareAccept(fd: listener.fd, userData: 1)
        try ring.submit()
        let client = try connectLoopback(port: listener.port)
        defer { close(client) }
        let accepted = try ring.collect(1)
        XCTAssertEqual(accepted[0].userData, 1)
        let server = accepted[0].result
        XCTAssertGreaterThanOrEqual(server, 0)
        defer { close(server) }

        let message = Array("ping over io_uring".utf8)
        sendAll(client, message)
        var received = [UInt8](repeating: 0, count: 64)
        let count = try received.withUnsafeMutableBytes { bytes in
            try ring.prepareReceive(fd: server, into: bytes, userData: 2)
            return try ring.collect(1)[0].result
        }
        XCTAssertEqual(Array(received[0..<Int(count)]), message)

        let reply = Array("pong".utf8)
        try reply.withUnsafeBytes { bytes in
            try ring.prepareSend(fd: server, from: bytes, userData: 3)
            XCTAssertEqual(try ring.collect(1)[0].result, Int32(reply.count))
        }
        var back = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(recv(client, &back, 4, Int32(MSG_WAITALL)), 4)
        XCTAssertEqual(back, reply)
    }

    /// A receive that leaves bytes behind says so (socketHasMore); a poll-first receive on the
    /// drained socket waits for the next bytes and gets them.
    func testReceiveReportsBytesLeftAndPollFirstWaitsForData() throws {
        let ring = try IORing(entries: 16)
        let (client, server) = try makeLoopbackPair()
        defer { close(client); close(server) }

        sendAll(client, Array("0123456789".utf8))
        var received = [UInt8](repeating: 0, count: 16)
        let first = try received.withUnsafeMutableBytes { bytes in
            try ring.prepareReceive(fd: server, into: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<4]), userData: 1)
            return try ring.collect(1)[0]
        }
        XCTAssertEqual(first.result, 4)
        XCTAssertTrue(first.socketHasMore, "six bytes are still in the socket")
        let rest = try received.withUnsafeMutableBytes { bytes in
            try ring.prepareReceive(fd: server, into: UnsafeMutableRawBufferPointer(rebasing: bytes[4...]), userData: 2)
            return try ring.collect(1)[0]
        }
        XCTAssertEqual(rest.result, 6)
        XCTAssertFalse(rest.socketHasMore, "the socket is drained")
        XCTAssertEqual(String(decoding: received[0..<10], as: UTF8.self), "0123456789")

        // Drained: a poll-first receive stays pending until bytes arrive, then completes with them.
        try received.withUnsafeMutableBytes { bytes in
            try ring.prepareReceive(fd: server, into: bytes, pollFirst: true, userData: 3)
            XCTAssertFalse(try ring.submitAndWait(minimumCompletions: 1, timeout: .milliseconds(20)), "timed out")
            var early = 0
            try ring.forEachCompletion { _ in early += 1 }
            XCTAssertEqual(early, 0, "nothing to receive yet")
            sendAll(client, Array("late".utf8))
            let late = try ring.collect(1)[0]
            XCTAssertEqual(late.userData, 3)
            XCTAssertEqual(late.result, 4)
        }
        XCTAssertEqual(String(decoding: received[0..<4], as: UTF8.self), "late")
    }

    /// `hasCompletions` sees a completion the kernel still holds as deferred task work (the
    /// receive's data arrived after it was armed), before any system call posts it; and one
    /// that is already in the completion queue.
    func testHasCompletionsSeesDeferredAndPostedCompletions() throws {
        let ring = try IORing(entries: 8)
        let (client, server) = try makeLoopbackPair()
        defer { close(client); close(server) }

        var received = [UInt8](repeating: 0, count: 16)
        try received.withUnsafeMutableBytes { bytes in
            try ring.prepareReceive(fd: server, into: bytes, pollFirst: true, userData: 7)
            try ring.submit()
            XCTAssertFalse(ring.hasCompletions, "nothing has arrived")
            sendAll(client, Array("ready".utf8))
            if ring.setupFlags.contains(.taskrunFlag) || !ring.setupFlags.contains(.deferTaskrun) {
                let deadline = ContinuousClock.now + .seconds(5)
                while !ring.hasCompletions && ContinuousClock.now < deadline { sched_yield() }
                XCTAssertTrue(ring.hasCompletions, "the receive completed (setup \(ring.setupFlags))")
            }
            let completion = try ring.collect(1)[0]
            XCTAssertEqual(completion.userData, 7)
            XCTAssertEqual(completion.result, 5)
            XCTAssertFalse(ring.hasCompletions, "reaped")
        }
        try ring.prepareNop(userData: 8)
        try ring.submit()
        XCTAssertTrue(ring.hasCompletions, "a NOP completes at submission")
        XCTAssertEqual(try ring.collect(1)[0].userData, 8)
    }

    func testConnectThroughTheRing() throws {
        let ring = try IORing(entries: 8)
        let listener = try makeLoopbackListener()
        defer { close(listener.fd) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopbackAddress(port: listener.port)
        try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try ring.prepareConnect(fd: fd, address: sa, length: socklen_t(MemoryLayout<sockaddr_in>.size), userData: 4)
                XCTAssertEqual(try ring.collect(1)[0].result, 0)
            }
        }
    }

    func testConnectRefusedIsAnErrorCompletion() throws {
        let ring = try IORing(entries: 8)
        let port: UInt16 = try {
            let listener = try makeLoopbackListener()
            close(listener.fd) // nothing listens there any more
            return listener.port
        }()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopbackAddress(port: port)
        try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try ring.prepareConnect(fd: fd, address: sa, length: socklen_t(MemoryLayout<sockaddr_in>.size), userData: 4)
                XCTAssertEqual(try ring.collect(1)[0].errno, ECONNREFUSED)
            }
        }
    }

    func testMultishotAcceptOfSeveralConnections() throws {
        let ring = try IORing(entries: 16)
        let listener = try makeLoopbackListener()
        defer { close(listener.fd) }
        try ring.prepareMultishotAccept(fd: listener.fd, userData: 7)
        try ring.submit()
        let clients = try (0..<5).map { _ in try connectLoopback(port: listener.port) }
        defer { clients.forEach { close($0) } }
        let accepted = try ring.collect(5)
        XCTAssertTrue(accepted.allSatisfy { $0.userData == 7 && $0.result >= 0 && $0.hasMore })
        XCTAssertEqual(Set(accepted.map(\.result)).count, 5, "five distinct descriptors")
        accepted.forEach { close($0.result) }

        // Cancel the multishot request: it ends with a completion without F_MORE.
        try ring.prepareCancel(userData: 7, userData: 8)
        let ended = try ring.collect(2)
        let final = try XCTUnwrap(ended.first { $0.userData == 7 })
        XCTAssertEqual(final.errno, ECANCELED)
        XCTAssertFalse(final.hasMore)
        XCTAssertEqual(ended.first { $0.userData == 8 }?.result, 0)
    }

    func testMultishotReceiveIntoProvidedBuffers() throws {
        let ring = try IORing(entries: 16)
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 3, count: 4, bufferSize: 64)
        let (client, server) = try makeLoopbackPair()
        defer { close(client); close(server) }
        try ring.prepareMultishotReceive(fd: server, buffers: buffers, userData: 11)
        try ring.submit()

        var received: [UInt8] = []
        for round in 0..<10 { // 10 messages through 4 buffers: each must be recycled
            let message = Array("message \(round);".utf8)
            sendAll(client, message)
            var got = 0
            while got < message.count {
                let completions = try ring.collect(1)
                let completion = completions[0]
                XCTAssertEqual(completion.userData, 11)
                XCTAssertGreaterThan(completion.result, 0)
                XCTAssertTrue(completion.hasMore)
                let id = try XCTUnwrap(completion.bufferID)
                buffers.withBuffer(id, count: Int(completion.result)) { received += $0 }
                buffers.recycle(id)
                got += Int(completion.result)
            }
        }
        XCTAssertEqual(String(decoding: received, as: UTF8.self), (0..<10).map { "message \($0);" }.joined())

        // The peer closes: the multishot receive ends with result 0 and no F_MORE.
        shutdown(client, Int32(SHUT_WR))
        let end = try ring.collect(1)[0]
        XCTAssertEqual(end.result, 0)
        XCTAssertFalse(end.hasMore)
    }

    func testMultishotReceiveEndsWithENOBUFSWhenBuffersRunDry() throws {
        let ring = try IORing(entries: 16)
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 4, count: 2, bufferSize: 16)
        let (client, server) = try makeLoopbackPair()
        defer { close(client); close(server) }
        try ring.prepareMultishotReceive(fd: server, buffers: buffers, userData: 12)
        try ring.submit()
        var completions: [IOCompletion] = []
        for round in 0..<3 { // nothing recycled: the third receive finds no buffer
            sendAll(client, Array(repeating: UInt8(round), count: 16))
            completions += try ring.collect(1)
            if completions.last?.hasMore == false { break }
        }
        let last = try XCTUnwrap(completions.last)
        XCTAssertEqual(last.errno, ENOBUFS)
        XCTAssertFalse(last.hasMore)
        XCTAssertEqual(completions.dropLast().filter { $0.result == 16 }.count, 2)
    }

    func testBadBufferRingArgumentsAreErrors() throws {
        let ring = try IORing(entries: 8)
        XCTAssertThrowsError(try ProvidedBufferRing(ring: ring, groupID: 1, count: 3, bufferSize: 64)) {
            XCTAssertEqual(($0 as? IORingError)?.errno, EINVAL)
        }
        let first = try ProvidedBufferRing(ring: ring, groupID: 1, count: 4, bufferSize: 64)
        XCTAssertThrowsError(try ProvidedBufferRing(ring: ring, groupID: 1, count: 4, bufferSize: 64)) {
            XCTAssertEqual(($0 as? IORingError)?.errno, EEXIST, "a group id is registered once")
        }
        _ = first
    }
}
