import Coil
import CoilTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A send and a receive linked in one kernel round: replies in order, send errors, cancellation
/// of a blocked send, and dropped futures that consume nothing.
final class WriteThenReadTests: XCTestCase {
    nonisolated(unsafe) static let flavors = IOTestSupport.flavors

    /// An echo server; the client sends 200 requests of varying size, each with writeThenRead,
    /// swapping two buffers, and checks every reply.
    func testRequestsAndRepliesRoundTrip() throws {
        for (name, make) in Self.flavors {
            let baseline = IOTestSupport.Baseline()
            try { () throws in
            let runtime = try make()
            let failures: [String] = try runtime.blockOn { () async throws -> [String] in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let server = Task(executorPreference: runtime) { () async throws in
                    let stream = try await listener.accept()
                    let buffer = IOBuffer(capacity: 4096)
                    while try await stream.read(into: buffer) > 0 {
                        try await stream.writeAll(buffer)
                        buffer.clear()
                    }
                    try await stream.close()
                }
                let client = try await TCPStream.connect(to: listener.localAddress)
                var failures: [String] = []
                for round in 0..<200 {
                    let request = IOBuffer((0..<(1 + round * 7 % 1500)).map { UInt8(truncatingIfNeeded: $0 &+ round) })
                    let reply = IOBuffer(capacity: 4096)
                    while reply.count < request.count {
                        // The first read goes with the request; any rest of the reply is read plainly.
                        if reply.count == 0 {
                            if try await client.writeThenRead(request, into: reply) == 0 { failures.append("\(round): EOF") ; break }
                        } else if try await client.read(into: reply) == 0 { failures.append("\(round): EOF"); break }
                    }
                    if reply.bytes != request.bytes { failures.append("\(round): reply differs") }
                }
                try await client.close()
                try await server.value
                listener.close()
                return failures
            }
            XCTAssertEqual(failures, [], name)
            // The sends whose success posts no CQE were completed all the same: every
            // operation started is accounted as completed.
            XCTAssertTrue(eventually { runtime.metrics.ioInFlight == 0 }, "\(name): \(runtime.metrics)")
            let metrics = runtime.metrics.workers
            XCTAssertEqual(metrics.reduce(0) { $0 + $1.ioSubmitted }, metrics.reduce(0) { $0 + $1.ioCompleted }, name)
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            }()
            baseline.assertNothingLeaked(name)
        }
    }

    func testSendToAResetPeerThrowsAndCancellingABlockedSendEndsPromptly() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let outcome: [String] = try runtime.blockOn { () async throws -> [String] in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                var outcome: [String] = []
                // A reset peer: the send (or the receive after it) fails; nothing hangs.
                do {
                    let client = try await TCPStream.connect(to: listener.localAddress)
                    let accepted = try await listener.accept()
                    IOTestSupport.reset(accepted)
                    await sleep(for: .milliseconds(5)).value()
                    let error = await IOTestSupport.error { () async throws(IOError) in
                        for _ in 0..<3 { _ = try await client.writeThenRead(IOBuffer(string: "hello?"), into: IOBuffer(capacity: 64)) }
                    }
                    outcome.append("reset: \(error.map { [EPIPE, ECONNRESET].contains($0.errno) } ?? false)")
                    try await client.close()
                }
                // A send blocked on a peer that never reads (8 MiB fill the socket buffers): a
                // cancelled task ends with ECANCELED at once, with the receive never started.
                do {
                    let client = try await TCPStream.connect(to: listener.localAddress)
                    let accepted = try await listener.accept()
                    let big = IOBuffer(capacity: 8 << 20)
                    big.count = big.capacity
                    let task = Task(executorPreference: runtime) {
                        await IOTestSupport.error { () async throws(IOError) in
                            _ = try await client.writeThenRead(big, into: IOBuffer(capacity: 64))
                        }
                    }
                    await sleep(for: .milliseconds(50)).value()
                    let started = ContinuousClock.now
                    task.cancel()
                    let error = await task.value
                    outcome.append("cancelled: \(error.map { "\($0.operation) \($0.errno)" } ?? "no error")")
                    outcome.append("promptly: \(ContinuousClock.now - started < .seconds(2))")
                    try await client.close()
                    try await accepted.close()
                }
                listener.close()
                return outcome
            }
            XCTAssertEqual(outcome, ["reset: true", "cancelled: send \(ECANCELED)", "promptly: true"], name)
            XCTAssertTrue(eventually { runtime.metrics.ioInFlight == 0 }, "\(name): \(runtime.metrics)")
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }

    /// A reply that does not come in time: ETIMEDOUT from the receive's linked timeout, the
    /// request sent, and the late reply still there for the next read.
    func testTimeoutBoundsTheWaitForTheReply() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let outcome: [String] = try runtime.blockOn { () async throws -> [String] in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let client = try await TCPStream.connect(to: listener.localAddress)
                let accepted = try await listener.accept()
                let error = await IOTestSupport.error { () async throws(IOError) in
                    _ = try await client.writeThenRead(IOBuffer(string: "anyone"), into: IOBuffer(capacity: 64), timeout: .milliseconds(20))
                }
                let request = IOBuffer(capacity: 64)
                _ = try await accepted.read(into: request, timeout: .seconds(5))
                try await accepted.writeAll(IOBuffer(string: "late"))
                let reply = IOBuffer(capacity: 64)
                _ = try await client.read(into: reply, timeout: .seconds(5))
                try await client.close()
                try await accepted.close()
                listener.close()
                return [error.map { "\($0.operation) \($0.errno)" } ?? "no error", request.string, reply.string]
            }
            XCTAssertEqual(outcome, ["recv \(ETIMEDOUT)", "anyone", "late"], name)
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }

    /// A dropped future (a timeout while the reply is late) cancels the receive; the late reply
    /// is still there for the next read.
    func testDroppedFutureConsumesNothing() throws {
        for (name, make) in Self.flavors {
            let runtime = try make()
            let text: String = try runtime.blockOn { () async throws -> String in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let client = try await TCPStream.connect(to: listener.localAddress)
                let accepted = try await listener.accept()
                let outcome = await timeout(.milliseconds(10), client.writeThenReadFuture(IOBuffer(string: "question"), into: IOBuffer(capacity: 64))).value()
                XCTAssertNotNil(outcome.failureValue, name)
                // The request did go out.
                let request = IOBuffer(capacity: 64)
                _ = try await accepted.read(into: request, timeout: .seconds(5))
                XCTAssertEqual(request.string, "question", name)
                try await accepted.writeAll(IOBuffer(string: "late answer"))
                let reply = IOBuffer(capacity: 64)
                _ = try await client.read(into: reply, timeout: .seconds(5))
                try await client.close()
                try await accepted.close()
                listener.close()
                return reply.string
            }
            XCTAssertEqual(text, "late answer", name)
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }
}
