import Coil

#if canImport(Glibc)
import Glibc
#endif

/// One connection served as a Coil task with a hand-written future (`--style futures`): read
/// into the buffer, write it all back, repeat. It is the same loop as `serve` in async style,
/// written as the state machine an `async` function compiles to, so each step is one poll of a
/// Coil task and nothing passes through Swift's concurrency runtime.
struct EchoConnection: Future, ~Copyable {
    let stream: TCPStream
    let buffer: IOBuffer
    let stats: Stats
    /// With `--multishot`: the connection's receive stream (one multishot receive).
    let incoming: ReceiveStream?
    /// The read in flight (plain, or from the receive stream), or the write in flight (and how
    /// much of the buffer is sent).
    var reading: IOFuture<Int>?
    var receiving: ReceiveFuture?
    var writing: IOFuture<Int>?
    var sent = 0
    var echoed = 0

    init(stream: TCPStream, bufferSize: Int, multishot: Bool, stats: Stats) {
        self.stream = stream
        buffer = IOBuffer(capacity: bufferSize)
        self.stats = stats
        incoming = multishot ? stream.receiveStream() : nil
        try? stream.setNoDelay(true)
        startRead()
    }

    private mutating func startRead() {
        if let incoming {
            receiving = incoming.readFuture(into: buffer)
        } else {
            reading = stream.readFuture(into: buffer)
        }
    }

    /// The read's outcome, once it has one.
    private mutating func pollRead(_ context: inout Context) -> Result<Int, IOError>? {
        if receiving != nil {
            guard case .ready(let result) = receiving!.poll(&context) else { return nil }
            receiving = nil
            return result
        }
        guard case .ready(let result) = reading!.poll(&context) else { return nil }
        reading = nil
        return result
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if reading != nil || receiving != nil {
                guard let result = pollRead(&context) else { return .pending }
                switch result {
                case .success(0): return finish(nil)
                case .success: break
                case .failure(let error): return finish(error)
                }
                sent = 0
                writing = stream.writeFuture(buffer)
            }
            guard case .ready(let result) = writing!.poll(&context) else { return .pending }
            writing = nil
            switch result {
            case .success(let n) where n > 0:
                sent += n
                if sent < buffer.count {
                    writing = stream.writeFuture(buffer, from: sent)
                    continue
                }
                echoed += sent
                buffer.clear()
                startRead()
            case .success:
                return finish(IOError(operation: "send", errno: EPIPE))
            case .failure(let error):
                return finish(error)
            }
        }
    }

    /// The connection ends: the stream closes when the task drops it.
    private func finish(_ error: IOError?) -> Poll<Void> {
        if let error { stats.ended(by: error) }
        stats.bytes.add(echoed, ordering: .relaxed)
        stats.served.add(1, ordering: .relaxed)
        stats.active.subtract(1, ordering: .relaxed)
        return .ready(())
    }
}
