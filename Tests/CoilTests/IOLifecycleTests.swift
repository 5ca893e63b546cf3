import Coil
import CoilTestSupport
import Foundation
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The operation lifecycle: dropped operations are cancelled, their buffers and records come back,
/// descriptors nobody took are closed, and a thousand connections go through an echo server.
final class IOLifecycleTests: XCTestCase {
    nonisolated(unsafe) static let flavors = IOTestSupport.flavors

    func testDroppedReadsAndAcceptsAreCancelledAndNothingLeaks() throws {
        for (name, make) in Self.flavors {
            let baseline = IOTestSupport.Baseline()
            // The runtime lives in this closure: its rings close when it goes away.
            try { () throws in
            let runtime = try make()
            let late: String = try runtime.blockOn { () async throws -> String in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                // An accept dropped while pending: the listener keeps working.
                let droppedAccept = await timeout(.milliseconds(5), listener.acceptFuture()).value()
                XCTAssertNotNil(droppedAccept.failureValue, name)
                let client = try await TCPStream.connect(to: listener.localAddress)
                let accepted = try await listener.accept()
                // Reads dropped while the kernel holds them (each times out through `timeout`).
                for _ in 0..<50 {
                    let buffer = IOBuffer(capacity: 4096)
                    let outcome = await timeout(.milliseconds(1), client.readFuture(into: buffer)).value()
                    XCTAssertNotNil(outcome.failureValue, "\(name): \(outcome)")
                }
                // The cancelled reads consumed nothing: the next one gets the bytes.
                try await accepted.writeAll(IOBuffer(string: "after the drops"))
                let buffer = IOBuffer(capacity: 64)
                _ = try await client.read(into: buffer, timeout: .seconds(5))
                try await client.close()
                try await accepted.close()
                listener.close()
                return buffer.string
            }
            XCTAssertEqual(late, "after the drops", name)
            XCTAssertTrue(eventually { runtime.metrics.ioInFlight == 0 }, "\(name): \(runtime.metrics)")
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            }()
            baseline.assertNothingLeaked(name)
        }
    }

    func testConnectionsAcceptedButNotTakenAreClosedWithTheListener() throws {
        for (name, make) in Self.flavors {
            let descriptors = IOTestSupport.openDescriptors()
            try { () throws in
            let runtime = try make()
            let peersSawClose: Int = try runtime.blockOn { () async throws -> Int in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                _ = await timeout(.milliseconds(1), listener.acceptFuture()).value()   // arms the accept
                var clients: [TCPStream] = []
                for _ in 0..<5 { clients.append(try await TCPStream.connect(to: listener.localAddress)) }
                await sleep(for: .milliseconds(20)).value()   // the kernel accepted them
                listener.close()
                var closed = 0
                for client in clients {
                    let n = try? await client.read(into: IOBuffer(capacity: 8), timeout: .seconds(5))
                    if n == 0 || n == nil { closed += 1 }   // EOF, or a reset
                    try await client.close()
                }
                return closed
            }
            XCTAssertEqual(peersSawClose, 5, name)
            runtime.shutdown()
            }()
            XCTAssertEqual(IOTestSupport.openDescriptors(), descriptors, "\(name): descriptors leaked")
        }
    }

    func testShutdownCancelsOperationsInFlight() throws {
        for (name, make) in Self.flavors {
            let records = IODiagnostics.liveOperationRecords
            let runtime = try make()
            let (listener, client, accepted) = try runtime.blockOn { () async throws -> (TCPListener, TCPStream, TCPStream) in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let client = try await TCPStream.connect(to: listener.localAddress)
                return (listener, client, try await listener.accept())
            }
            // Reads parked in the kernel by tasks, and a pending accept (I/O starts inside the runtime).
            runtime.blockOn { () async in
                for stream in [client, accepted] {
                    _ = runtime.spawn(stream.readFuture(into: IOBuffer(capacity: 64)))
                }
                _ = runtime.spawn(listener.acceptFuture())
            }
            XCTAssertTrue(eventually { runtime.metrics.ioInFlight >= 3 }, "\(name): \(runtime.metrics)")
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            XCTAssertEqual(runtime.metrics.ioInFlight, 0, name)
            XCTAssertEqual(runtime.metrics.aliveTasks, 0, name)
            listener.close()
            XCTAssertTrue(eventually { IODiagnostics.liveOperationRecords == records }, "\(name): records leaked")
        }
    }

    /// Cancelling the Swift task that waits on an operation cancels the operation: a TCP read, an
    /// accept, a UDP receive and a FIFO read each end with ECANCELED, consume nothing, and leave
    /// no record, buffer or descriptor behind.
    func testCancellingTheSwiftTaskCancelsEachKindOfOperation() throws {
        let fifo = NSTemporaryDirectory() + "coil-cancel-fifo-\(getpid())"
        unlink(fifo)
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        defer { unlink(fifo) }
        for (name, make) in Self.flavors {
            let baseline = IOTestSupport.Baseline()
            try { () throws in
            let runtime = try make()
            let outcomes: [String] = try runtime.blockOn { () async throws -> [String] in
                let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
                let client = try await TCPStream.connect(to: listener.localAddress)
                let accepted = try await listener.accept()
                let udp = try UDPSocket.bind(host: "127.0.0.1", port: 0)
                let pipe = try await File.open(fifo, options: OpenOptions(read: true, write: true))
                let waits: [(String, @Sendable () async throws(IOError) -> Void)] = [
                    ("tcp read", { () async throws(IOError) in _ = try await client.read(into: IOBuffer(capacity: 64)) }),
                    ("accept", { () async throws(IOError) in _ = try await listener.accept() }),
                    ("udp receive", { () async throws(IOError) in _ = try await udp.receiveFrom(into: IOBuffer(capacity: 64)) }),
                    ("fifo read", { () async throws(IOError) in _ = try await pipe.read(into: IOBuffer(capacity: 64)) }),
                ]
                var outcomes: [String] = []
                for (kind, wait) in waits {
                    let task = Task(executorPreference: runtime) { await IOTestSupport.error(wait) }
                    await sleep(for: .milliseconds(10)).value()   // in the kernel by now
                    task.cancel()
                    let error = await task.value
                    outcomes.append("\(kind): \(error.map { String($0.errno) } ?? "no error")")
                }
                // Nothing was consumed: each still works.
                try await accepted.writeAll(IOBuffer(string: "tcp"))
                let tcp = IOBuffer(capacity: 8)
                _ = try await client.read(into: tcp, timeout: .seconds(5))
                try await pipe.writeAll(IOBuffer(string: "fifo"))
                let fifoBytes = IOBuffer(capacity: 8)
                _ = try await pipe.read(into: fifoBytes, timeout: .seconds(5))
                outcomes.append(tcp.string + " " + fifoBytes.string)
                for stream in [client, accepted] { try await stream.close() }
                try await udp.close()
                try await pipe.close()
                listener.close()
                return outcomes
            }
            let cancelled = String(ECANCELED)
            XCTAssertEqual(outcomes, ["tcp read: \(cancelled)", "accept: \(cancelled)", "udp receive: \(cancelled)",
                                      "fifo read: \(cancelled)", "tcp fifo"], name)
            XCTAssertTrue(eventually { runtime.metrics.ioInFlight == 0 }, "\(name): \(runtime.metrics)")
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            }()
            baseline.assertNothingLeaked(name)
        }
    }

    func testThousandConcurrentConnectionsThroughAnEchoServer() throws {
        IOTestSupport.raiseDescriptorLimit(to: 4096)
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let connections = 1000
        let failures: [String] = try runtime.blockOn { () async throws -> [String] in
            let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, backlog: 4096)
            let server = Task(executorPreference: runtime) {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<connections {
                        guard let stream = try? await listener.accept() else { return }
                        group.addTask(executorPreference: runtime) {
                            let buffer = IOBuffer(capacity: 1500)
                            while let n = try? await stream.read(into: buffer), n > 0 {
                                try? await stream.writeAll(buffer)
                                buffer.clear()
                            }
                        }
                    }
                }
            }
            let failures = await withTaskGroup(of: String?.self) { group -> [String] in
                for index in 0..<connections {
                    group.addTask(executorPreference: runtime) {
                        do throws(IOError) {
                            let stream = try await TCPStream.connect(to: listener.localAddress, timeout: .seconds(20))
                            let message = (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) }
                            try await stream.writeAll(IOBuffer(message))
                            let reply = IOBuffer(capacity: message.count)
                            while reply.count < message.count {
                                if try await stream.read(into: reply, timeout: .seconds(20)) == 0 { return "\(index): early EOF" }
                            }
                            try await stream.close()
                            return reply.bytes == message ? nil : "\(index): bytes differ"
                        } catch {
                            return "\(index): \(error)"
                        }
                    }
                }
                var failures: [String] = []
                for await failure in group { if let failure { failures.append(failure) } }
                return failures
            }
            await server.value
            listener.close()
            return failures
        }
        XCTAssertEqual(failures, [], "\(failures.count) connections failed: \(failures.prefix(5))")
    }
}

extension IOTestSupport {
    static func raiseDescriptorLimit(to wanted: rlim_t) {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(wanted, limit.rlim_max)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }
}
