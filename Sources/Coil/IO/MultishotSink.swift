import CCoil
import CoilCore

#if canImport(Glibc)
import Glibc
#endif

/// Where a multishot operation's completions go (multishot accept, multishot receive): a queue of
/// results under a lock, the waiter's waker, and whether the kernel request is still armed.
///
/// The kernel request is armed by the first consumer that finds the queue empty, and re-armed
/// the same way after the kernel ends it (a completion without `IORING_CQE_F_MORE`). Closing
/// cancels the request and gives back what nobody will take: accepted descriptors are closed,
/// received buffers go back to their ring.
final class MultishotSink: @unchecked Sendable {
    // SAFETY: all state is behind the lock.
    enum Kind { case descriptors, receivedBuffers }

    /// One completion: a result, and for a receive with data the provided buffer holding it (on
    /// `driver`'s ring).
    struct Item {
        var result: Int32
        var bufferID: UInt16 = 0
        /// The provided buffer's bytes (kept valid by `driver`, which owns the buffer ring).
        var bytes: UnsafeRawPointer? = nil
        var driver: IODriver? = nil
    }

    struct State: ~Copyable {
        var items: [Item] = []
        var head = 0
        /// Bytes of the head item already consumed (receive).
        var offset = 0
        var armed = false
        var closed = false
        /// The kernel ended the request for want of provided buffers (receive).
        var outOfBuffers = false
        var waker: Waker? = nil
        var op: IOOperation? = nil
        var userData: UInt64 = 0

        mutating func popHead() {
            head += 1
            offset = 0
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            }
        }
    }
    let state = ConditionLock(State())
    let kind: Kind

    init(kind: Kind) { self.kind = kind }

    /// A completion (driver thread). `isFinal`: the kernel request is no longer armed.
    func deliver(result: Int32, flags: UInt32, isFinal: Bool, driver: IODriver) {
        let hasBuffer = coil_cqe_has_buffer(flags)
        let bufferID = coil_cqe_buffer_id(flags)
        let waker = state.withLock { state -> Waker? in
            if isFinal {
                state.armed = false
                state.op = nil
            }
            if state.closed {
                if kind == .descriptors && result >= 0 { _ = Glibc.close(result) }
                if hasBuffer { driver.recycleReceiveBuffer(bufferID) }
                return nil
            }
            if isFinal && result == -ECANCELED {
                // The end of an armed request that was cancelled is not news.
            } else if isFinal && result == -ENOBUFS && kind == .receivedBuffers {
                // No provided buffer was free: the data waits in the socket for the next read.
                state.outOfBuffers = true
            } else {
                state.items.append(hasBuffer
                    ? Item(result: result, bufferID: bufferID, bytes: driver.receiveBuffer(bufferID), driver: driver)
                    : Item(result: result))
            }
            return state.waker.take()
        }
        waker?.wake()
    }

    /// Under the lock: registers `waker` and says whether the consumer must arm the request.
    private func mustArm(_ state: inout State, _ waker: borrowing Waker) -> Bool {
        if !(state.waker?.willWake(waker) ?? false) { state.waker = waker.clone() }
        if state.armed { return false }
        state.armed = true
        return true
    }

    /// Outside the lock: arms the request (`arm` starts it) and records it for cancellation.
    private func arm(_ arm: () -> IOOperation?) {
        guard let op = arm() else { return }
        let userData = op.userData
        let closedMeanwhile = state.withLock { state -> Bool in
            if state.armed && state.op == nil {
                state.op = op
                state.userData = userData
            }
            return state.closed
        }
        if closedMeanwhile { op.driver.cancel(op, userData: userData) }
    }

    /// The next result (accept), or nil after registering `waker`.
    func next(_ waker: borrowing Waker, arm: () -> IOOperation?) -> Int32? {
        enum Step { case result(Int32), wait, arm }
        let step = state.withLock { state -> Step in
            if state.head < state.items.count {
                let result = state.items[state.head].result
                state.popHead()
                return .result(result)
            }
            if state.closed { return .result(-EBADF) }
            return mustArm(&state, waker) ? .arm : .wait
        }
        switch step {
        case .result(let result): return result
        case .wait: return nil
        case .arm:
            self.arm(arm)
            return nil
        }
    }

    /// What ``receive(into:_:arm:)`` found.
    enum Received {
        /// Bytes copied into the buffer (0: end of stream), or the error.
        case ready(Int32)
        /// Nothing yet; the waker is registered.
        case pending
        /// The kernel ran out of provided buffers: read into the caller's buffer with a plain
        /// receive once (the data is still in the socket), then arm again.
        case readDirectly
    }

    /// Copies queued bytes into `buffer`'s free space (receive), or registers `waker`.
    func receive(into buffer: IOBuffer, _ waker: borrowing Waker, arm: () -> IOOperation?) -> Received {
        enum Step { case received(Received), arm }
        var finished: Item? = nil
        let step = state.withLock { state -> Step in
            if state.head < state.items.count {
                // Fields one by one: copying the item would retain its driver.
                let result = state.items[state.head].result
                guard result > 0, let source = state.items[state.head].bytes else {
                    // End of stream stays for every later read; an error is reported once.
                    if result != 0 { state.popHead() }
                    return .received(.ready(result))
                }
                let n = min(Int(result) - state.offset, buffer.freeCapacity)
                buffer.freeRegion.baseAddress!.copyMemory(from: source + state.offset, byteCount: n)
                buffer.count += n
                state.offset += n
                if state.offset == Int(result) {
                    finished = state.items[state.head]
                    state.popHead()
                }
                return .received(.ready(Int32(n)))
            }
            if state.closed { return .received(.ready(-EBADF)) }
            if state.outOfBuffers && !state.armed {
                state.outOfBuffers = false
                return .received(.readDirectly)
            }
            return mustArm(&state, waker) ? .arm : .received(.pending)
        }
        if let finished { finished.driver!.recycleReceiveBuffer(finished.bufferID) }
        switch step {
        case .received(let received): return received
        case .arm:
            self.arm(arm)
            return .pending
        }
    }

    /// No more results wanted: cancels the kernel request and gives back what was queued.
    func close() {
        var waker: Waker? = nil
        let (op, userData, pending) = state.withLock { state -> (IOOperation?, UInt64, ArraySlice<Item>) in
            state.closed = true
            let pending = state.items[state.head...]
            state.items = []
            state.head = 0
            waker = state.waker.take()
            return (state.op, state.userData, pending)
        }
        for item in pending {
            if kind == .descriptors && item.result >= 0 { _ = Glibc.close(item.result) }
            if let driver = item.driver { driver.recycleReceiveBuffer(item.bufferID) }
        }
        if let op { op.driver.cancel(op, userData: userData) }
        // A waiter learns of the close (EBADF) on its next poll.
        waker?.wake()
    }
}
