import CCoil
import CoilCore

#if canImport(Glibc)
import Glibc
#endif

/// Where a multishot operation's completions go (multishot accept, multishot receive): a queue of
/// results under a spin lock (held for a few stores or one copy), the waiter's waker, and whether
/// the kernel request is still armed.
///
/// The kernel request is armed by the first consumer that finds the queue empty, and re-armed
/// the same way after the kernel ends it (a completion without `IORING_CQE_F_MORE`). Closing
/// cancels the request and gives back what nobody will take: accepted descriptors are closed,
/// received buffers go back to their ring.
final class MultishotSink: @unchecked Sendable {
    // SAFETY: all state is behind `spin`.
    enum Kind { case descriptors, receivedBuffers }

    /// One completion: a result, and for a receive with data the provided buffer holding it (on
    /// `driver`'s ring). Plain values: queuing one retains nothing (the sink keeps the drivers).
    struct Item {
        var result: Int32
        var bufferID: UInt16 = 0
        /// The provided buffer's bytes (kept valid by `driver`, which owns the buffer ring).
        var bytes: UnsafeRawPointer? = nil
        /// Unretained: `State.drivers` holds every driver an item came from.
        var driver: Unmanaged<IODriver>? = nil
    }

    /// Completions in arrival order: a ring of plain items that doubles when full (one per
    /// completion not yet read; a receive holds at most one per provided buffer).
    struct ItemQueue: ~Copyable {
        private var storage: UnsafeMutablePointer<Item>
        private var capacity: Int
        private var head = 0
        private(set) var count = 0

        init() {
            capacity = 4
            storage = .allocate(capacity: capacity)
        }

        // Items are plain values (no references to release): the storage goes as it is.
        deinit { storage.deallocate() }

        var isEmpty: Bool { count == 0 }

        /// The oldest item (the queue must not be empty).
        var first: Item { storage[head] }

        mutating func append(_ item: Item) {
            if count == capacity { grow() }
            (storage + ((head + count) & (capacity - 1))).initialize(to: item)
            count += 1
        }

        mutating func removeFirst() {
            head = (head + 1) & (capacity - 1)
            count -= 1
        }

        /// Every item, oldest first; the queue is left empty.
        mutating func removeAll() -> [Item] {
            var all: [Item] = []
            all.reserveCapacity(count)
            while !isEmpty {
                all.append(first)
                removeFirst()
            }
            return all
        }

        private mutating func grow() {
            let larger = UnsafeMutablePointer<Item>.allocate(capacity: capacity * 2)
            for i in 0..<count { (larger + i).initialize(to: storage[(head + i) & (capacity - 1)]) }
            storage.deallocate()
            storage = larger
            capacity *= 2
            head = 0
        }
    }

    struct State: ~Copyable {
        var items = ItemQueue()
        /// Bytes of the head item already consumed (receive).
        var offset = 0
        var armed = false
        var closed = false
        /// The kernel ended the request for want of provided buffers (receive).
        var outOfBuffers = false
        var waker: Waker? = nil
        var op: IOOperation? = nil
        var userData: UInt64 = 0
        /// Every driver whose provided buffers items have named (the stream's reads may move
        /// between workers): kept until the sink goes, so an item's buffer memory stays valid and
        /// can be recycled outside the lock. `lastDriver` spares the search in the common case.
        var drivers: [IODriver] = []
        var lastDriver: UnsafeMutableRawPointer? = nil

        mutating func popHead() {
            items.removeFirst()
            offset = 0
        }

        mutating func keep(_ driver: IODriver) {
            let address = Unmanaged.passUnretained(driver).toOpaque()
            if lastDriver == address { return }
            lastDriver = address
            if !drivers.contains(where: { $0 === driver }) { drivers.append(driver) }
        }
    }
    /// `State` behind a spin lock (held for a few stores or one copy): behind a pointer rather
    /// than in a stored `var`, so that a locked access is not also a dynamically checked one.
    private let spin = SpinLock()
    private let statePointer = UnsafeMutablePointer<State>.allocate(capacity: 1)
    let kind: Kind

    init(kind: Kind) {
        self.kind = kind
        statePointer.initialize(to: State())
    }

    deinit {
        statePointer.deinitialize(count: 1)
        statePointer.deallocate()
    }

    @inline(__always)
    private func withState<R: ~Copyable>(_ body: (inout State) -> R) -> R {
        spin.lock()
        defer { spin.unlock() }
        return body(&statePointer.pointee)
    }

    /// A completion (driver thread). `isFinal`: the kernel request is no longer armed.
    func deliver(result: Int32, flags: UInt32, isFinal: Bool, driver: IODriver) {
        let hasBuffer = coil_cqe_has_buffer(flags)
        let bufferID = coil_cqe_buffer_id(flags)
        let waker = withState { state -> Waker? in
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
            } else if hasBuffer {
                state.keep(driver)
                state.items.append(Item(result: result, bufferID: bufferID, bytes: driver.receiveBuffer(bufferID),
                                        driver: Unmanaged.passUnretained(driver)))
            } else {
                state.items.append(Item(result: result))
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

    /// Outside the lock: records `op`, the request a consumer armed after `mustArm` said so (nil
    /// if it could not start), for cancellation.
    func armed(_ op: IOOperation?) {
        guard let op else { return }
        let userData = op.userData
        let closedMeanwhile = withState { state -> Bool in
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
        let step = withState { state -> Step in
            if !state.items.isEmpty {
                let result = state.items.first.result
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
            armed(arm())
            return nil
        }
    }

    /// What ``receive(into:_:)`` found.
    enum Received {
        /// Bytes copied into the buffer (0: end of stream), or the error.
        case ready(Int32)
        /// Nothing yet; the waker is registered.
        case pending
        /// Nothing yet; the waker is registered, and the caller must start the multishot receive
        /// and hand it to ``armed(_:)``.
        case arm
        /// The kernel ran out of provided buffers: read into the caller's buffer with a plain
        /// receive once (the data is still in the socket), then arm again.
        case readDirectly
    }

    /// Copies queued bytes into `buffer`'s free space (receive), or registers `waker`.
    func receive(into buffer: IOBuffer, _ waker: borrowing Waker) -> Received {
        var finished: Item? = nil
        let received = withState { state -> Received in
            if !state.items.isEmpty {
                let item = state.items.first
                guard item.result > 0, let source = item.bytes else {
                    // End of stream stays for every later read; an error is reported once.
                    if item.result != 0 { state.popHead() }
                    return .ready(item.result)
                }
                let n = min(Int(item.result) - state.offset, buffer.freeCapacity)
                buffer.freeRegion.baseAddress!.copyMemory(from: source + state.offset, byteCount: n)
                buffer.count += n
                state.offset += n
                if state.offset == Int(item.result) {
                    finished = item
                    state.popHead()
                }
                return .ready(Int32(n))
            }
            if state.closed { return .ready(-EBADF) }
            if state.outOfBuffers && !state.armed {
                state.outOfBuffers = false
                return .readDirectly
            }
            return mustArm(&state, waker) ? .arm : .pending
        }
        // The sink keeps the item's driver (`State.drivers`), and the reader keeps the sink.
        if let finished { finished.driver!._withUnsafeGuaranteedRef { $0.recycleReceiveBuffer(finished.bufferID) } }
        return received
    }

    /// No more results wanted: cancels the kernel request and gives back what was queued.
    func close() {
        var waker: Waker? = nil
        let (op, userData, pending) = withState { state -> (IOOperation?, UInt64, [Item]) in
            state.closed = true
            state.offset = 0
            waker = state.waker.take()
            return (state.op, state.userData, state.items.removeAll())
        }
        for item in pending {
            if kind == .descriptors && item.result >= 0 { _ = Glibc.close(item.result) }
            if let driver = item.driver { driver._withUnsafeGuaranteedRef { $0.recycleReceiveBuffer(item.bufferID) } }
        }
        if let op { op.driver.cancel(op, userData: userData) }
        // A waiter learns of the close (EBADF) on its next poll.
        waker?.wake()
    }
}
