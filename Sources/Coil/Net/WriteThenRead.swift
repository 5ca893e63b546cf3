import CCoil
import CoilCore

#if canImport(Glibc)
import Glibc
#endif

extension TCPStream {
    /// Sends all of `output`'s bytes, then receives into `input`'s free space: a request and its
    /// reply in one kernel round. The two go to the kernel together as linked submissions (the
    /// receive starts when the send has sent everything), and the waiting task wakes once, for
    /// the reply. Returns the byte count received (0: the peer closed its side) and grows
    /// `input.count` by it.
    ///
    /// ```swift
    /// let request = IOBuffer(string: "PING\r\n"), reply = IOBuffer(capacity: 512)
    /// let n = try await stream.writeThenRead(request, into: reply)
    /// ```
    ///
    /// Use two buffers (an echo swaps them after each round). A send that fails throws its error (the receive is then
    /// cancelled and consumes nothing); a send the kernel could not finish throws `EPIPE`.
    /// Cancelling the Swift task cancels both. `timeout` bounds the wait for the reply once the
    /// request is sent (a linked timeout on the receive: `ETIMEDOUT`); for a deadline on the
    /// whole exchange, use the `timeout` combinator on ``writeThenReadFuture(_:into:timeout:)``.
    nonisolated(nonsending) public func writeThenRead(_ output: IOBuffer, into input: IOBuffer, timeout: Duration? = nil) async throws(IOError) -> Int {
        let (send, receive) = startWriteThenRead(output, into: input, timeout: timeout)
        return try await receive.wait { receive in Self.finishWriteThenRead(send: send, receive: receive) }
    }

    /// ``writeThenRead(_:into:)`` as a future (dropping it cancels both operations).
    public func writeThenReadFuture(_ output: IOBuffer, into input: IOBuffer, timeout: Duration? = nil) -> WriteThenReadFuture {
        let (send, receive) = startWriteThenRead(output, into: input, timeout: timeout)
        return WriteThenReadFuture(send: send, receive: receive)
    }

    private func startWriteThenRead(_ output: IOBuffer, into input: IOBuffer, timeout: Duration?) -> (IOOperation, IOOperation) {
        precondition(input.freeCapacity > 0, "TCPStream.writeThenRead into a full buffer")
        precondition(output !== input || output.count == 0, "TCPStream.writeThenRead: use two buffers")
        var receive: IOOperation! = nil
        let send = IOOperation.start { send in
            send.request = .sendAll(fd: descriptor.fd)
            send.buffer = output
            send.region = output.dataRegion(from: 0)
            send.owner = descriptor
            // A blank record of the same driver, prepared right after the send and linked to it.
            receive = send.driver.makeOperation()
            // The reply cannot be in the socket before the request is out: wait for it directly.
            receive.request = .receive(fd: descriptor.fd, pollFirst: true)
            receive.buffer = input
            receive.region = input.freeRegion
            receive.owner = descriptor
            receive.timeout = timeout?.clampedNanoseconds ?? 0
            send.linkedNext = receive
        }
        return (send, receive)
    }

    /// The outcome of a linked send and receive, once the receive completed (the send's
    /// completion always comes first: the receive starts only after it). Releases the send.
    static func finishWriteThenRead(send: IOOperation, receive: IOOperation) -> Result<Int, IOError> {
        guard send.isCompleted else {
            // Not reachable (see above); give up the send rather than read its state early.
            send.drop()
            return .failure(IOError(operation: "send", errno: EIO))
        }
        let sent = send.result
        let expected = send.region.count
        // Named before the release: a released record may be reset for another use at once.
        let failure = sent < 0 ? send.error(for: sent) : nil
        send.release()
        if let failure { return .failure(failure) }
        if Int(sent) < expected {
            // Cut short: by our cancel, or by an error the kernel reported as the partial count.
            return .failure(IOError(operation: "send", errno: receive.cancelRequested ? ECANCELED : EPIPE))
        }
        return TCPStream.finishStreamRead(receive)
    }
}

/// The future of ``TCPStream/writeThenRead(_:into:)``.
public struct WriteThenReadFuture: ~Copyable, Future {
    var send: IOOperation?
    var receive: IOOperation?

    init(send: IOOperation, receive: IOOperation) {
        self.send = send
        self.receive = receive
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<Int, IOError>> {
        guard let receive, let send else { preconditionFailure("WriteThenReadFuture polled after it was ready") }
        guard receive.isReady(&context) else { return .pending }
        self.receive = nil
        self.send = nil
        let output = TCPStream.finishWriteThenRead(send: send, receive: receive)
        receive.release()
        return .ready(output)
    }

    deinit {
        receive?.drop()
        send?.drop()
    }
}
