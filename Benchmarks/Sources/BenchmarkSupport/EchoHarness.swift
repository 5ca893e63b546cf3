import Coil
import Glibc

/// An echo server on a Coil runtime, driven by a blocking client on the calling thread written
/// against the plain socket calls so that the client allocates nothing. Counting allocations
/// over `roundTrips` gives the server's allocations per echoed message.
///
/// Each connection is served as coil-echo's styles serve it: a Swift task awaiting `read(into:)`
/// then `writeAll` (`async`; `receiveStream` reads through the connection's receive stream), or
/// a Coil task polling a hand-written future of I/O futures (`futures`, coil-echo's default).
public final class EchoHarness {
    public enum Style: String, CaseIterable, Sendable { case async, receiveStream = "receive stream", futures, linked }

    let runtime: Runtime
    let listener: TCPListener
    let client: Int32
    let message: [UInt8]
    var reply: [UInt8]

    /// `receiveStream`: the server reads through the connection's receive stream (multishot).
    /// `linked`: after the first read, each reply goes out linked with the next read
    /// (`writeThenRead`, two buffers swapped each round).
    public init(workers: Int, messageSize: Int = 64, style: Style = .async) throws {
        let receiveStream = style == .receiveStream
        runtime = try Runtime.Builder.multiThread().workerThreads(workers).build()
        listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
        let listener = self.listener
        let runtime = self.runtime
        runtime.blockOn {
            Task(executorPreference: runtime) {
                while let stream = try? await listener.accept() {
                    if style == .futures {
                        _ = runtime.spawn(FutureEcho(stream: stream))
                        continue
                    }
                    if style == .linked {
                        Task(executorPreference: runtime) {
                            var buffer = IOBuffer(capacity: 16384)
                            var spare = IOBuffer(capacity: 16384)
                            try? stream.setNoDelay(true)
                            if let first = try? await stream.read(into: buffer), first > 0 {
                                while true {
                                    spare.clear()
                                    guard let n = try? await stream.writeThenRead(buffer, into: spare), n > 0 else { break }
                                    swap(&buffer, &spare)
                                }
                            }
                            try? await stream.close()
                        }
                        continue
                    }
                    Task(executorPreference: runtime) {
                        let buffer = IOBuffer(capacity: 16384)
                        try? stream.setNoDelay(true)
                        let incoming = receiveStream ? stream.receiveStream() : nil
                        while true {
                            let read: Int?
                            if let incoming { read = try? await incoming.read(into: buffer) } else { read = try? await stream.read(into: buffer) }
                            guard let n = read, n > 0 else { break }
                            if (try? await stream.writeAll(buffer)) == nil { break }
                            buffer.clear()
                        }
                        try? await stream.close()
                    }
                }
            }
        }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.client = client
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = listener.localAddress.port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(connected == 0, "connect: errno \(errno)")
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        message = (0..<messageSize).map { UInt8(truncatingIfNeeded: $0) }
        reply = Array(repeating: 0, count: messageSize)
    }

    /// `count` round trips: send the message, read it back whole. Returns the bytes echoed.
    public func roundTrips(_ count: Int) -> Int {
        var total = 0
        for _ in 0..<count {
            let sent = message.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            precondition(sent == message.count, "send: \(sent), errno \(errno)")
            var got = 0
            while got < reply.count {
                let n = reply.withUnsafeMutableBytes { recv(client, $0.baseAddress! + got, $0.count - got, 0) }
                precondition(n > 0, "recv: \(n), errno \(errno)")
                got += n
            }
            total += got
        }
        return total
    }

    public func stop() {
        close(client)
        listener.close()
        runtime.shutdown(timeout: .seconds(5))
    }
}

/// One connection as a hand-written future: read, then write the bytes back (continuing after
/// short writes), until the peer closes.
struct FutureEcho: Future, ~Copyable {
    let stream: TCPStream
    let buffer = IOBuffer(capacity: 16384)
    var reading: IOFuture<Int>?
    var writing: IOFuture<Int>? = nil
    var sent = 0

    init(stream: TCPStream) {
        self.stream = stream
        try? stream.setNoDelay(true)
        reading = stream.readFuture(into: buffer)
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if reading != nil {
                guard case .ready(let result) = reading!.poll(&context) else { return .pending }
                reading = nil
                guard case .success(let n) = result, n > 0 else { return .ready(()) }
                sent = 0
                writing = stream.writeFuture(buffer)
            } else {
                guard case .ready(let result) = writing!.poll(&context) else { return .pending }
                writing = nil
                guard case .success(let n) = result, n > 0 else { return .ready(()) }
                sent += n
                if sent < buffer.count {
                    writing = stream.writeFuture(buffer, from: sent)
                } else {
                    buffer.clear()
                    reading = stream.readFuture(into: buffer)
                }
            }
        }
    }
}
