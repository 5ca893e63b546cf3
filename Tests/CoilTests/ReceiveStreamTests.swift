import Coil
import CoilTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The multishot receive stream: bytes in order through small and starved provided-buffer rings,
/// end of stream, resets, cancellation, and nothing left behind.
final class ReceiveStreamTests: XCTestCase {
    /// Every flavour, each with a normal ring of provided buffers and with a starved one (2
    /// buffers of 64 bytes), which forces the ENOBUFS fallback again and again.
    nonisolated(unsafe) static let configurations: [(String, () throws -> Runtime)] = [
        ("current-thread", { try Runtime.Builder.currentThread().build() }),
        ("multi-thread(2)", { try Runtime.Builder.multiThread().workerThreads(2).build() }),
        ("current-thread starved", { try Runtime.Builder.currentThread().receiveBuffers(count: 2, size: 64).build() }),
        ("multi-thread(1) starved", { try Runtime.Builder.multiThread().workerThreads(1).receiveBuffers(count: 2, size: 64).build() }),
        ("multi-thread(2) starved", { try Runtime.Builder.multiThread().workerThreads(2).receiveBuffers(count: 2, size: 64).build() }),
    ]

    /// 200 KB sent in uneven writes, read back through 1000-byte buffers: every byte, in order.
    func testBytesArriveInOrderThroughSmallAndStarvedBufferRings() throws {
        let message = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 8) }
        for (name, make) in Self.configurations {
            let fallbacks = IODiagnostics.receiveBufferFallbacks
            let baseline = IOTestSupport.Baseline()
            try { () throws in
            let runtime = try make()
            let received: [UInt8] = try runtime.blockOn { () async throws -> [UInt8] in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let sender = Task(executorPreference: runtime) { () async throws in
                    let stream = try await listener.accept()
                    var offset = 0
                    var step = 1
                    while offset < message.count {
                        let end = min(message.count, offset + step * 97)
                        try await stream.writeAll(IOBuffer(message[offset..<end]))
                        offset = end
                        step = step % 50 + 1
                    }
                    try await stream.close()
                }
                let client = try await TCPStream.connect(to: listener.localAddress)
                let incoming = client.receiveStream()
                let buffer = IOBuffer(capacity: 1000)
                var received: [UInt8] = []
                while true {
                    buffer.clear()
                    let n = try await incoming.read(into: buffer)
                    if n == 0 { break }
                    received += buffer.bytes
                }
                // The end of the stream stays.
                buffer.clear()
                let again = try await incoming.read(into: buffer)
                XCTAssertEqual(again, 0, name)
                try await sender.value
                incoming.close()
                try await client.close()
                listener.close()
                return received
            }
            XCTAssertEqual(received.count, message.count, name)
            XCTAssertTrue(received == message, "\(name): bytes differ")
            XCTAssertTrue(eventually { runtime.metrics.ioInFlight == 0 }, "\(name): \(runtime.metrics)")
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            }()
            if name.hasSuffix("starved") {
                XCTAssertGreaterThan(IODiagnostics.receiveBufferFallbacks, fallbacks, "\(name): the ENOBUFS path never ran")
            }
            baseline.assertNothingLeaked(name)
        }
    }

    func testPeerResetIsReportedAndCancellationLosesNothing() throws {
        for (name, make) in Self.configurations {
            let runtime = try make()
            let outcome: [String] = try runtime.blockOn { () async throws -> [String] in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let client = try await TCPStream.connect(to: listener.localAddress)
                let accepted = try await listener.accept()
                let incoming = accepted.receiveStream()
                // A read cancelled while it waits ends with ECANCELED...
                let waiting = Task(executorPreference: runtime) {
                    await IOTestSupport.error { () async throws(IOError) in _ = try await incoming.read(into: IOBuffer(capacity: 16)) }
                }
                await sleep(for: .milliseconds(10)).value()
                waiting.cancel()
                var outcome = ["cancelled: \(await waiting.value.map { String($0.errno) } ?? "no error")"]
                // ...and a read after it gets the bytes; a timed-out future the same.
                let late = await timeout(.milliseconds(5), incoming.readFuture(into: IOBuffer(capacity: 16))).value()
                outcome.append("timed out: \(late.failureValue != nil)")
                try await client.writeAll(IOBuffer(string: "kept"))
                let buffer = IOBuffer(capacity: 16)
                _ = try await incoming.read(into: buffer)
                outcome.append(buffer.string)
                // A reset peer: ECONNRESET.
                IOTestSupport.reset(client)
                let reset = await IOTestSupport.error { () async throws(IOError) in
                    while try await incoming.read(into: IOBuffer(capacity: 16)) > 0 {}
                }
                outcome.append("reset: \(reset.map { "\($0.operation) \($0.errno)" } ?? "no error")")
                // Closed: EBADF.
                incoming.close()
                let closed = await IOTestSupport.error { () async throws(IOError) in _ = try await incoming.read(into: IOBuffer(capacity: 16)) }
                outcome.append("closed: \(closed.map { String($0.errno) } ?? "no error")")
                try await accepted.close()
                listener.close()
                return outcome
            }
            XCTAssertEqual(outcome, ["cancelled: \(ECANCELED)", "timed out: true", "kept", "reset: recv \(ECONNRESET)", "closed: \(EBADF)"], name)
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }

    /// Completions the reader has not taken queue up in the stream, in a ring that wraps and
    /// grows: three are read first (the ring's head moves), then 40 messages arrive 1 ms apart
    /// (one completion each, on loopback) before any is read. They come out whole and in order.
    /// (With the ring's growth copying items out of order, this fails.)
    func testManyQueuedCompletionsComeOutInOrder() throws {
        let runtime = try Runtime.Builder.currentThread().receiveBuffers(count: 64, size: 64).build()
        let baseline = IOTestSupport.Baseline()
        let (first, rest): (String, String) = try runtime.blockOn { () async throws -> (String, String) in
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
            let client = try await TCPStream.connect(to: listener.localAddress)
            try client.setNoDelay(true)
            let accepted = try await listener.accept()
            let incoming = accepted.receiveStream()
            let buffer = IOBuffer(capacity: 4096)
            var first = ""
            for i in 0..<3 {
                try await client.writeAll(IOBuffer(string: "<\(i)>"))
                buffer.clear()
                _ = try await incoming.read(into: buffer)
                first += buffer.string
            }
            for i in 0..<40 {
                try await client.writeAll(IOBuffer(string: "[\(i)]"))
                await sleep(for: .milliseconds(1)).value()
            }
            try await client.close()
            var rest = ""
            while true {
                buffer.clear()
                if try await incoming.read(into: buffer) == 0 { break }
                rest += buffer.string
            }
            incoming.close()
            try await accepted.close()
            listener.close()
            return (first, rest)
        }
        XCTAssertEqual(first, "<0><1><2>")
        XCTAssertEqual(rest, (0..<40).map { "[\($0)]" }.joined())
        XCTAssertTrue(eventually { runtime.metrics.ioInFlight == 0 }, "\(runtime.metrics)")
        XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)))
        baseline.assertNothingLeaked("queued completions")
    }

    /// Receive streams closed with bytes still queued give their buffers back: with a ring of 4
    /// buffers, 50 connections each leave data queued and the next ones still receive through the ring.
    func testClosedStreamsGiveTheirQueuedBuffersBack() throws {
        let runtime = try Runtime.Builder.currentThread().receiveBuffers(count: 4, size: 256).build()
        let fallbacks = IODiagnostics.receiveBufferFallbacks
        let texts: [String] = try runtime.blockOn { () async throws -> [String] in
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
            var texts: [String] = []
            for i in 0..<50 {
                let client = try await TCPStream.connect(to: listener.localAddress)
                let accepted = try await listener.accept()
                let incoming = accepted.receiveStream()
                try await client.writeAll(IOBuffer(string: "first \(i)"))
                let buffer = IOBuffer(capacity: 3)   // takes part of the first chunk only
                _ = try await incoming.read(into: buffer)
                texts.append(buffer.string)
                try await client.writeAll(IOBuffer(string: "queued and dropped"))
                await sleep(for: .milliseconds(1)).value()
                incoming.close()
                try await client.close()
                try await accepted.close()
            }
            listener.close()
            return texts
        }
        XCTAssertEqual(texts, Array(repeating: "fir", count: 50))
        // 50 connections x 2 buffers each through a ring of 4: only recycling made that possible.
        XCTAssertEqual(IODiagnostics.receiveBufferFallbacks, fallbacks, "buffers were not given back")
        XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)))
    }
}
