import CCoil
import CoilCore

#if canImport(Glibc)
import Glibc
#endif

extension TCPStream {
    /// The stream's incoming bytes through one multishot receive: a single kernel request stays
    /// armed and fills buffers the kernel picks from the worker's provided-buffer ring, so a busy
    /// connection costs one submission instead of one per read.
    ///
    /// ```swift
    /// let incoming = stream.receiveStream()
    /// let buffer = IOBuffer(capacity: 4096)
    /// while try await incoming.read(into: buffer) > 0 {
    ///     try await stream.writeAll(buffer)
    ///     buffer.clear()
    /// }
    /// ```
    ///
    /// Use one receive stream per connection, read by one task at a time, and don't mix it with
    /// ``read(into:timeout:)`` on the same stream (the order of bytes between them is undefined).
    public func receiveStream() -> ReceiveStream { ReceiveStream(stream: self) }
}

/// A TCP stream's incoming bytes, delivered by a multishot receive (see
/// ``TCPStream/receiveStream()``).
///
/// Bytes wait in the worker's provided buffers until read; a read copies them into the caller's
/// ``IOBuffer`` and gives the provided buffer back as soon as it is empty. When every provided
/// buffer is taken the kernel ends the request with `ENOBUFS`; the next read then receives
/// straight into the caller's buffer (the data waits in the socket meanwhile) and re-arms the
/// request. Closing (or dropping) the receive stream cancels the request and gives its buffers back;
/// it does not close the TCP stream.
public final class ReceiveStream: @unchecked Sendable {
    // SAFETY: immutable; the sink has its own lock.
    let stream: TCPStream
    let sink = MultishotSink(kind: .receivedBuffers)
    /// Wakes the task awaiting ``read(into:)``: one per stream, reused by every read (there is
    /// one reader at a time), so that reading allocates nothing.
    let bridge = AsyncWakeBridge()

    init(stream: TCPStream) { self.stream = stream }

    deinit { sink.close() }

    /// Copies the next bytes into `buffer`'s free space; returns how many (0: the peer closed its
    /// side; every later read returns 0 too) and grows `buffer.count` by it. The buffer must have
    /// free space. Cancelling the Swift task throws `ECANCELED` (no byte is lost).
    public func read(into buffer: IOBuffer) async throws(IOError) -> Int {
        guard let result = await readFuture(into: buffer).cancellableValue(through: bridge) else {
            throw IOError(operation: "recv", errno: ECANCELED)
        }
        return try result.get()
    }

    /// ``read(into:)`` as a future (use the `timeout` combinator for a deadline). Dropping it
    /// while it waits loses no queued byte; if it had fallen back to a plain receive, that
    /// receive is cancelled like any dropped read.
    public func readFuture(into buffer: IOBuffer) -> ReceiveFuture {
        precondition(buffer.freeCapacity > 0, "ReceiveStream.read into a full buffer")
        return ReceiveFuture(receiver: self, buffer: buffer)
    }

    /// Stops receiving: cancels the kernel request and gives queued buffers back. A pending or
    /// later read fails with `EBADF`.
    public func close() { sink.close() }

    /// Starts (again) the multishot receive feeding the sink.
    func arm() -> IOOperation? {
        guard !stream.descriptor.isClosed else { return nil }
        return IOOperation.start { op in
            op.request = .multishotReceive(fd: stream.descriptor.fd)
            op.sink = sink
            op.owner = stream.descriptor
        }
    }
}

/// The future of ``ReceiveStream/read(into:)``.
public struct ReceiveFuture: ~Copyable, Future {
    let receiver: ReceiveStream
    /// `receiver.sink`, unretained: `receiver` keeps it, so a call through it needs no reference.
    let sink: Unmanaged<MultishotSink>
    let buffer: IOBuffer
    /// The plain receive made when the provided buffers ran out.
    var direct: IOFuture<Int>? = nil

    init(receiver: ReceiveStream, buffer: IOBuffer) {
        self.receiver = receiver
        sink = Unmanaged.passUnretained(receiver.sink)
        self.buffer = buffer
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<Int, IOError>> {
        if direct == nil {
            guard Coop.proceed(&context) else { return .pending }
            let received = sink._withUnsafeGuaranteedRef { $0.receive(into: buffer, context.waker) }
            switch received {
            case .ready(let result):
                return .ready(result >= 0 ? .success(Int(result)) : .failure(IOError(operation: "recv", errno: -result)))
            case .pending:
                return .pending
            case .arm:
                sink._withUnsafeGuaranteedRef { $0.armed(receiver.arm()) }
                return .pending
            case .readDirectly:
                IODiagnostics.receiveBufferExhaustions.add(1, ordering: .relaxed)
                direct = receiver.stream.readFuture(into: buffer)
            }
        }
        // `direct` is set: poll it (it consumes the budget itself).
        guard case .ready(let result) = direct!.poll(&context) else { return .pending }
        direct = nil
        return .ready(result)
    }
}
