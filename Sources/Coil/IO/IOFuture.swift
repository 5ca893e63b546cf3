import CoilCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A Coil I/O operation as a future: ready with the operation's outcome once its completion
/// arrives. Every I/O type's async methods are built on the same operation; these futures are
/// for hand-written futures and combinators (`select`, `timeout`, `JoinAll`).
///
/// The operation is submitted when the future is created. Dropping the future before it is ready
/// cancels the operation: the kernel is asked to cancel it, the buffer it uses stays alive until
/// the kernel is done with it, and a descriptor it returns anyway (an accept, an open) is closed.
public struct IOFuture<Success>: ~Copyable, Future {
    public typealias Output = Result<Success, IOError>

    var op: IOOperation?
    let finish: (IOOperation) -> Result<Success, IOError>

    init(_ op: IOOperation, finish: @escaping (IOOperation) -> Result<Success, IOError>) {
        self.op = op
        self.finish = finish
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<Success, IOError>> {
        guard let op else { preconditionFailure("IOFuture polled after it was ready") }
        guard Coop.proceed(&context) else { return .pending }
        guard op.register(context.waker) else { return .pending }
        self.op = nil
        let output = finish(op)
        op.driver.release(op)
        return .ready(output)
    }

    deinit {
        guard let op else { return }
        let userData = op.userData
        if op.abandon() {
            op.driver.release(op)
        } else {
            op.driver.cancel(op, userData: userData)
        }
    }
}

extension IOOperation {
    /// Starts an operation on the calling thread's driver: `configure` fills in the record.
    static func start(_ configure: (IOOperation) -> Void) -> IOOperation {
        let driver = IODriver.forCurrentThread()
        let op = driver.makeOperation()
        configure(op)
        driver.start(op)
        return op
    }

    /// Suspends the calling async task until the operation completes, then hands the record to
    /// `finish` and releases it. The completion resumes the task from the thread that reaped it:
    /// on a Coil worker, into that worker's run queue.
    ///
    /// Cancelling the Swift task cancels the operation: it then fails with `ECANCELED` (unless it
    /// completed first).
    nonisolated(nonsending) func wait<T>(_ finish: (IOOperation) -> Result<T, IOError>) async throws(IOError) -> T {
        if !isCompleted {
            let userData = self.userData
            await withTaskCancellationHandler {
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in suspend(continuation) }
            } onCancel: {
                driver.cancel(self, userData: userData)
            }
        }
        let output = finish(self)
        driver.release(self)
        return try output.get()
    }

    /// The result as a byte count, or the error.
    static func count(_ op: IOOperation) -> Result<Int, IOError> {
        op.result >= 0 ? .success(Int(op.result)) : .failure(op.error(for: op.result))
    }

    /// Success without a value, or the error.
    static func done(_ op: IOOperation) -> Result<Void, IOError> {
        op.result >= 0 ? .success(()) : .failure(op.error(for: op.result))
    }

    /// The result as a descriptor now owned by the caller, or the error.
    static func descriptor(_ op: IOOperation) -> Result<Int32, IOError> {
        guard op.result >= 0 else { return .failure(op.error(for: op.result)) }
        op.resultTaken = true
        return .success(op.result)
    }
}

/// Where a multishot operation's completions go (multishot accept): a queue of results under a
/// lock, the waiter's waker, and whether the kernel request is still armed.
final class MultishotSink: @unchecked Sendable {
    // SAFETY: all state is behind the mutex.
    struct State: ~Copyable {
        var results: [Int32] = []
        var head = 0
        var armed = false
        var closed = false
        var waker: Waker? = nil
        var op: IOOperation? = nil
        var userData: UInt64 = 0
    }
    let state = ConditionLock(State())
    /// Descriptor results are closed when nobody will take them.
    let resultsAreDescriptors: Bool

    init(resultsAreDescriptors: Bool) { self.resultsAreDescriptors = resultsAreDescriptors }

    /// A completion (driver thread). `isFinal`: the kernel request is no longer armed.
    func deliver(result: Int32, isFinal: Bool) {
        let waker = state.withLock { state -> Waker? in
            if isFinal {
                state.armed = false
                state.op = nil
            }
            if state.closed {
                if resultsAreDescriptors && result >= 0 { _ = Glibc.close(result) }
                return nil
            }
            // The end of an armed request that was cancelled is not news; anything else is.
            if !(isFinal && result == -ECANCELED) { state.results.append(result) }
            return state.waker.take()
        }
        waker?.wake()
    }

    /// The next result, or nil after registering `waker`. `arm` is called (outside the lock) when
    /// the kernel request has to be started again; it returns the started operation.
    func next(_ waker: borrowing Waker, arm: () -> IOOperation?) -> Int32? {
        enum Step { case result(Int32), wait, arm }
        let step = state.withLock { state -> Step in
            if state.head < state.results.count {
                let result = state.results[state.head]
                state.head += 1
                if state.head == state.results.count {
                    state.results.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return .result(result)
            }
            if state.closed { return .result(-EBADF) }
            if !(state.waker?.willWake(waker) ?? false) { state.waker = waker.clone() }
            if state.armed { return .wait }
            state.armed = true
            return .arm
        }
        switch step {
        case .result(let result): return result
        case .wait: return nil
        case .arm:
            guard let op = arm() else { return nil }
            let userData = op.userData
            let closedMeanwhile = state.withLock { state -> Bool in
                if state.armed && state.op == nil {
                    state.op = op
                    state.userData = userData
                }
                return state.closed
            }
            if closedMeanwhile { op.driver.cancel(op, userData: userData) }
            return nil
        }
    }

    /// No more results wanted: cancels the kernel request and closes descriptors not taken.
    func close() {
        var waker: Waker? = nil
        let (op, userData, pending) = state.withLock { state -> (IOOperation?, UInt64, [Int32]) in
            state.closed = true
            let pending = Array(state.results[state.head...])
            state.results.removeAll()
            state.head = 0
            waker = state.waker.take()
            return (state.op, state.userData, pending)
        }
        if resultsAreDescriptors { for fd in pending where fd >= 0 { _ = Glibc.close(fd) } }
        if let op { op.driver.cancel(op, userData: userData) }
        // A waiter learns of the close (EBADF) on its next poll.
        waker?.wake()
    }
}
