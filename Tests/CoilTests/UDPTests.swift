import Coil
import CoilTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Loopback UDP through the runtime's rings, on every runtime flavour.
final class UDPTests: XCTestCase {
    nonisolated(unsafe) static let flavors = IOTestSupport.flavors

    func testAddressedDatagramsEchoWithTheSendersAddress() throws {
        for (name, make) in Self.flavors {
            for host in ["127.0.0.1", "::1"] {
                let runtime = try make()
                let replies: [String] = try runtime.blockOn { () async throws(IOError) -> [String] in
                    let server = try UDPSocket.bind(host: host, port: 0)
                    let client = try UDPSocket.bind(host: host, port: 0)
                    let serverAddress = try server.localAddress()
                    let clientAddress = try client.localAddress()
                    var replies: [String] = []
                    for i in 0..<20 {
                        try await client.send(IOBuffer(string: "datagram \(i)"), to: serverAddress)
                        let buffer = IOBuffer(capacity: 1500)
                        let (count, sender) = try await server.receiveFrom(into: buffer, timeout: .seconds(5))
                        XCTAssertEqual(count, buffer.count)
                        XCTAssertEqual(sender, clientAddress, "\(name) \(host)")
                        try await server.send(buffer, to: sender)
                        let reply = IOBuffer(capacity: 1500)
                        let (_, from) = try await client.receiveFrom(into: reply, timeout: .seconds(5))
                        XCTAssertEqual(from, serverAddress, "\(name) \(host)")
                        replies.append(reply.string)
                    }
                    return replies
                }
                XCTAssertEqual(replies, (0..<20).map { "datagram \($0)" }, "\(name) \(host)")
                XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            }
        }
    }

    func testConnectedSocketsSendAndReceiveAndReportTheirPeer() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            try runtime.blockOn { () async throws(IOError) in
                let a = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                let b = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                XCTAssertEqual(IOTestSupport.errnoOf { () throws(IOError) in _ = try a.peerAddress() }, ENOTCONN, name)
                try a.connect(to: try b.localAddress())
                try b.connect(to: try a.localAddress())
                XCTAssertEqual(try a.peerAddress(), try b.localAddress(), name)
                let sent = try await a.send(IOBuffer(string: "hello over a connected socket"))
                XCTAssertEqual(sent, 29, name)
                let buffer = IOBuffer(capacity: 64)
                let n = try await b.receive(into: buffer, timeout: .seconds(5))
                XCTAssertEqual(n, 29, name)
                XCTAssertEqual(buffer.string, "hello over a connected socket", name)
                try await a.close()
                try await b.close()
                // Closed: the next operation fails with EBADF.
                let error = await IOTestSupport.error { () async throws(IOError) in _ = try await a.send(IOBuffer(string: "x")) }
                XCTAssertEqual(error?.errno, EBADF, name)
            }
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }

    func testDatagramLongerThanTheBufferIsCutToFit() throws {
        let runtime = try Runtime.Builder.currentThread().build()
        try runtime.blockOn { () async throws(IOError) in
            let server = try UDPSocket.bind(host: "127.0.0.1", port: 0)
            let client = try UDPSocket.bind(host: "127.0.0.1", port: 0)
            try await client.send(IOBuffer(Array(repeating: UInt8(7), count: 1000)), to: try server.localAddress())
            try await client.send(IOBuffer(string: "next"), to: try server.localAddress())
            let small = IOBuffer(capacity: 100)
            let (count, _) = try await server.receiveFrom(into: small, timeout: .seconds(5))
            XCTAssertEqual(count, 100)
            XCTAssertEqual(small.bytes, Array(repeating: 7, count: 100))
            // The rest of the long datagram is gone; the next one arrives whole.
            let next = IOBuffer(capacity: 100)
            _ = try await server.receiveFrom(into: next, timeout: .seconds(5))
            XCTAssertEqual(next.string, "next")
        }
        XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)))
    }

    func testReceiveTimesOutAndTheSocketStillWorks() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            try runtime.blockOn { () async throws(IOError) in
                let server = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                let client = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                let buffer = IOBuffer(capacity: 64)
                let error = await IOTestSupport.error { () async throws(IOError) in
                    _ = try await server.receiveFrom(into: buffer, timeout: .milliseconds(20))
                }
                XCTAssertEqual(error?.errno, ETIMEDOUT, name)
                XCTAssertEqual(error?.operation, "recvmsg", name)
                XCTAssertEqual(buffer.count, 0, name)
                try await client.send(IOBuffer(string: "late"), to: try server.localAddress())
                _ = try await server.receiveFrom(into: buffer, timeout: .seconds(5))
                XCTAssertEqual(buffer.string, "late", name)
            }
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }

    func testSendingToAClosedPortReportsConnectionRefused() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let error = try runtime.blockOn { () async throws(IOError) -> IOError? in
                // A port that was bound and released: nobody listens there now.
                let gone = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                let address = try gone.localAddress()
                try await gone.close()
                let socket = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                try socket.connect(to: address)
                try await socket.send(IOBuffer(string: "anyone?"))
                // The ICMP port-unreachable comes back as the socket's error on the next receive.
                return await IOTestSupport.error { () async throws(IOError) in
                    _ = try await socket.receive(into: IOBuffer(capacity: 16), timeout: .seconds(5))
                }
            }
            XCTAssertEqual(error?.errno, ECONNREFUSED, "\(name): \(String(describing: error))")
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }
}
