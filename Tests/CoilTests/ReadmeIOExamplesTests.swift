import Coil
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The I/O programs of README.md ("I/O: sockets and files"), line for line where they are
/// complete, around a peer where they are fragments: if the README's API drifts, this fails.
final class ReadmeIOExamplesTests: XCTestCase {
    func testEchoTour() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(1).build()
        defer { runtime.shutdown() }
        let reply = try runtime.blockOn { () async throws(IOError) -> String in
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
            Task(executorPreference: runtime) {            // the server: echo one connection
                let stream = try await listener.accept()
                let buffer = IOBuffer(capacity: 4096)
                while try await stream.read(into: buffer) > 0 {
                    try await stream.writeAll(buffer)
                    buffer.clear()
                }
            }
            let client = try await TCPStream.connect(to: listener.localAddress)
            try await client.writeAll(IOBuffer(string: "ping"))
            let buffer = IOBuffer(capacity: 64)
            _ = try await client.read(into: buffer, timeout: .seconds(1))   // ETIMEDOUT if nothing comes
            return buffer.string                                            // "ping"
        }
        XCTAssertEqual(reply, "ping")
    }

    func testTheFragments() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let path = NSTemporaryDirectory() + "coil-readme-\(getpid())"
        defer { unlink(path) }
        let results = try runtime.blockOn { () async throws(IOError) -> [String] in
            var results: [String] = []
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
            let stream = try await TCPStream.connect(to: listener.localAddress)
            let peer = try await listener.accept()
            Task(executorPreference: runtime) {   // answers the PING, then sends "data" and closes
                let request = IOBuffer(capacity: 64)
                _ = try await peer.read(into: request)
                try await peer.writeAll(IOBuffer(string: "+PONG\r\n"))
                try await peer.writeAll(IOBuffer(string: "data"))
                try await peer.close()
            }

            // A request and its reply in one kernel round: the send and the next receive are linked.
            let reply = IOBuffer(capacity: 512)
            let n = try await stream.writeThenRead(IOBuffer(string: "PING\r\n"), into: reply)
            XCTAssertEqual(n, reply.count)

            // One multishot receive per connection; bytes wait in the worker's provided buffers.
            let buffer = IOBuffer(capacity: 1500)
            let incoming = stream.receiveStream()
            var received = ""
            while try await incoming.read(into: buffer) > 0 { received += buffer.string; buffer.clear() }
            // The reply and the bytes after it, however the two reads split them.
            results.append(reply.string + received)

            // UDP
            let socket = try UDPSocket.bind(host: "127.0.0.1", port: 0)
            let client = try UDPSocket.bind(host: "127.0.0.1", port: 0)
            try await client.send(IOBuffer(string: "datagram"), to: try socket.localAddress())
            let (count, sender) = try await socket.receiveFrom(into: buffer)
            try await socket.send(buffer, to: sender)
            let echoed = IOBuffer(capacity: 64)
            _ = try await client.receive(into: echoed)
            results.append("\(count) \(echoed.string)")

            // Files
            let file = try await File.open(path, options: .writeTruncate)
            try await file.writeAll(IOBuffer(string: "hello"), at: 0)
            try await file.sync()
            let size = try await file.metadata().size                       // statx
            let contents = try await File.contents(atPath: path)            // an IOBuffer
            results.append("\(size) \(contents.string)")
            return results
        }
        XCTAssertEqual(results, ["+PONG\r\ndata", "8 datagram", "5 hello"])
    }
}
