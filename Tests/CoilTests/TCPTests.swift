import Coil
import CoilTestSupport
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Loopback TCP through the runtime's rings: every operation and its error paths, on both flavours.
final class TCPTests: XCTestCase {
    nonisolated(unsafe) static let flavors = IOTestSupport.flavors

    func testEchoRoundTripsCarryEveryByte() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let sent = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let received: [UInt8] = try runtime.blockOn { () async throws(IOError) -> [UInt8] in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let server = Task(executorPreference: runtime) { () async throws -> Int in
                    let connection = try await listener.accept()
                    let buffer = IOBuffer(capacity: 512)   // smaller than the message: many reads
                    var total = 0
                    while true {
                        let n = try await connection.read(into: buffer)
                        if n == 0 { break }
                        try await connection.writeAll(buffer)
                        total += n
                        buffer.clear()
                    }
                    try await connection.close()
                    return total
                }
                let client = try await TCPStream.connect(to: listener.localAddress)
                try client.setNoDelay(true)
                XCTAssertTrue(client.noDelay)
                XCTAssertEqual(try client.peerAddress(), listener.localAddress)
                try await client.writeAll(IOBuffer(sent))
                try await client.shutdown(.write)
                var echoed: [UInt8] = []
                let buffer = IOBuffer(capacity: 1000)
                while true {
                    let n = try await client.read(into: buffer)
                    if n == 0 { break }
                    echoed += buffer.bytes
                    buffer.clear()
                }
                let total = try? await server.value
                XCTAssertEqual(total, sent.count)
                listener.close()
                return echoed
            }
            XCTAssertEqual(received, sent, name)
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            XCTAssertEqual(runtime.metrics.ioInFlight, 0, name)
        }
    }

    func testIPv6LoopbackWorks() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let reply: String = try runtime.blockOn { () async throws -> String in
            let listener = try TCPListener.bind(host: "::1", port: 0)
            XCTAssertEqual(listener.localAddress.family, AF_INET6)
            let server = Task(executorPreference: runtime) { () async throws in
                let connection = try await listener.accept()
                try await connection.writeAll(IOBuffer(string: "hello over v6"))
            }
            let client = try await TCPStream.connect(to: .loopback(port: listener.localAddress.port, ipv6: true))
            try await server.value
            let buffer = IOBuffer(capacity: 64)
            while try await client.read(into: buffer) > 0 {}
            return buffer.string
        }
        XCTAssertEqual(reply, "hello over v6")
    }

    func testConnectRefusedThrowsECONNREFUSED() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            // A port nobody listens on: bind one, note it, close it.
            let port = try TCPListener.bind(host: "127.0.0.1", port: 0).localAddress.port
            let error: IOError? = runtime.blockOn { () async -> IOError? in
                await IOTestSupport.error { () async throws(IOError) in _ = try await TCPStream.connect(host: "127.0.0.1", port: port) }
            }
            XCTAssertEqual(error?.operation, "connect", name)
            XCTAssertEqual(error?.errno, ECONNREFUSED, name)
            runtime.shutdown()
        }
    }

    func testPeerResetMidReadThrowsECONNRESET() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let error: IOError? = try runtime.blockOn { () async throws(IOError) -> IOError? in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let client = try await TCPStream.connect(to: listener.localAddress)
                let accepted = try await listener.accept()
                let reader = Task(executorPreference: runtime) { () async -> IOError? in
                    await IOTestSupport.error { () async throws(IOError) in _ = try await client.read(into: IOBuffer(capacity: 64)) }
                }
                await sleep(for: .milliseconds(20)).value()   // the read is in the kernel
                IOTestSupport.reset(accepted)
                return await reader.value
            }
            XCTAssertEqual(error?.operation, "recv", name)
            XCTAssertEqual(error?.errno, ECONNRESET, name)
            runtime.shutdown()
        }
    }

    func testWritingToAClosedPeerFailsWithEPIPEOrECONNRESET() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let error: IOError? = try runtime.blockOn { () async throws(IOError) -> IOError? in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let client = try await TCPStream.connect(to: listener.localAddress)
                IOTestSupport.reset(try await listener.accept())
                let chunk = IOBuffer(Array(repeating: 7, count: 65536))
                for _ in 0..<1000 {
                    if let error = await IOTestSupport.error({ () async throws(IOError) in try await client.writeAll(chunk) }) { return error }
                }
                return nil
            }
            XCTAssertEqual(error?.operation, "send", name)
            XCTAssertTrue(error?.errno == EPIPE || error?.errno == ECONNRESET, "\(name): \(String(describing: error))")
            runtime.shutdown()
        }
    }

    func testReadTimeoutThrowsETIMEDOUTAndTheStreamStillWorks() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let outcome: (IOError?, String) = try runtime.blockOn { () async throws(IOError) -> (IOError?, String) in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let client = try await TCPStream.connect(to: listener.localAddress)
                let accepted = try await listener.accept()
                let buffer = IOBuffer(capacity: 64)
                var timedOut: IOError? = nil
                timedOut = await IOTestSupport.error { () async throws(IOError) in _ = try await client.read(into: buffer, timeout: .milliseconds(30)) }
                try await accepted.writeAll(IOBuffer(string: "late"))
                _ = try await client.read(into: buffer, timeout: .seconds(5))
                return (timedOut, buffer.string)
            }
            XCTAssertEqual(outcome.0?.errno, ETIMEDOUT, name)
            XCTAssertEqual(outcome.0?.operation, "recv", name)
            XCTAssertEqual(outcome.1, "late", name)
            runtime.shutdown()
        }
    }

    func testVectoredWriteSendsBuffersInOrder() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let text: String = try runtime.blockOn { () async throws(IOError) -> String in
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
            let client = try await TCPStream.connect(to: listener.localAddress)
            let accepted = try await listener.accept()
            let parts = ["one ", "two ", "", "three ", "four ", "five"].map { $0.isEmpty ? IOBuffer(capacity: 1) : IOBuffer(string: $0) }
            let total = try await client.writeAll(vectored: parts)
            XCTAssertEqual(total, 23)
            try await client.shutdown(.write)
            let buffer = IOBuffer(capacity: 64)
            while try await accepted.read(into: buffer) > 0 {}
            return buffer.string
        }
        XCTAssertEqual(text, "one two three four five")
    }

    func testManyConnectionsAcceptedThroughMultishotAccept() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let count = 50
            let accepted: Int = try runtime.blockOn { () async throws -> Int in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                var clients: [TCPStream] = []
                for _ in 0..<count { clients.append(try await TCPStream.connect(to: listener.localAddress)) }
                var servers: [TCPStream] = []
                for _ in 0..<count { servers.append(try await listener.accept()) }
                // Every accepted socket is a distinct, open descriptor whose peer is one of ours.
                let peers = Set(try servers.map { try $0.peerAddress() })
                let locals = Set(try clients.map { try $0.localAddress() })
                XCTAssertEqual(peers, locals)
                listener.close()
                return servers.count
            }
            XCTAssertEqual(accepted, count, name)
            runtime.shutdown()
        }
    }

    func testAcceptFailsWithEBADFOnceTheListenerCloses() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let error: IOError? = try runtime.blockOn { () async throws(IOError) -> IOError? in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let acceptor = Task(executorPreference: runtime) { () async -> IOError? in
                    await IOTestSupport.error { () async throws(IOError) in _ = try await listener.accept() }
                }
                await sleep(for: .milliseconds(20)).value()
                listener.close()
                return await acceptor.value
            }
            XCTAssertEqual(error?.errno, EBADF, name)
            XCTAssertEqual(error?.operation, "accept", name)
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            XCTAssertEqual(runtime.metrics.ioInFlight, 0, name)
        }
    }
}
