import Coil

#if canImport(Glibc)
import Glibc
#endif

/// One connection served as a Coil task with a hand-written future: read into the buffer, write
/// it all back, repeat. It is the loop of `serve` (the async style) written as the state machine
/// an `async` function compiles to, so each step is one poll of a Coil task and nothing passes
/// through Swift's concurrency runtime. The styles differ in how bytes move:
/// - `futures`: a plain read, then a write (looping over short writes);
/// - `multishot`: reads come from the connection's receive stream (one multishot receive);
/// - `linked`: after the first read, each reply and the next read go to the kernel together
///   (`writeThenRead`, linked submissions), so the task wakes once per round trip.
struct EchoConnection: Future, ~Copyable {
    enum Mode { case plain, multishot, linked }

    let stream: TCPStream
    let stats: Stats
    let mode: Mode
    /// Holds the bytes read (and being echoed); `linked` reads the next ones into `spare`.
    var buffer: IOBuffer
    var spare: IOBuffer
    let incoming: ReceiveStream?
    /// What is in flight: a read (plain or from the receive stream), a write (with how much of
    /// the buffer is sent), or a linked reply-and-read.
    var reading: IOFuture<Int>?
    var receiving: ReceiveFuture?
    var writing: IOFuture<Int>?
    var exchanging: WriteThenReadFuture?
    var sent = 0
    var echoed = 0

    init(stream: TCPStream, bufferSize: Int, mode: Mode, stats: Stats) {
        self.stream = stream
        self.stats = stats
        self.mode = mode
        buffer = IOBuffer(capacity: bufferSize)
        spare = IOBuffer(capacity: mode == .linked ? bufferSize : 1)
        incoming = mode == .multishot ? stream.receiveStream() : nil
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

    /// After bytes arrived in `buffer`: echo them (and, linked, read the next ones with it).
    private mutating func startEcho() {
        if mode == .linked {
            spare.clear()
            exchanging = stream.writeThenReadFuture(buffer, into: spare)
        } else {
            sent = 0
            writing = stream.writeFuture(buffer)
        }
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if reading != nil {
                guard case .ready(let result) = reading!.poll(&context) else { return .pending }
                reading = nil
                guard readOutcome(result) != nil else { return .ready(()) }
                startEcho()
            } else if receiving != nil {
                guard case .ready(let result) = receiving!.poll(&context) else { return .pending }
                receiving = nil
                guard readOutcome(result) != nil else { return .ready(()) }
                startEcho()
            } else if exchanging != nil {
                guard case .ready(let result) = exchanging!.poll(&context) else { return .pending }
                exchanging = nil
                echoed += buffer.count
                // The bytes read are in `spare`: they are the next to echo.
                swap(&buffer, &spare)
                guard readOutcome(result) != nil else { return .ready(()) }
                startEcho()
            } else {
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
                    finish(IOError(operation: "send", errno: EPIPE))
                    return .ready(())
                case .failure(let error):
                    finish(error)
                    return .ready(())
                }
            }
        }
    }

    /// The byte count of a read that goes on, or nil when the connection ends (end of stream, or
    /// an error), after recording how it ended.
    private func readOutcome(_ result: Result<Int, IOError>) -> Int? {
        switch result {
        case .success(0):
            finish(nil)
            return nil
        case .success(let n):
            return n
        case .failure(let error):
            finish(error)
            return nil
        }
    }

    /// The connection ends: the stream closes when the task drops it.
    private func finish(_ error: IOError?) {
        if let error { stats.ended(by: error) }
        stats.bytes.add(echoed, ordering: .relaxed)
        stats.served.add(1, ordering: .relaxed)
        stats.active.subtract(1, ordering: .relaxed)
    }
}
