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

    @usableFromInline var op: IOOperation?
    @usableFromInline let finish: (IOOperation) -> Result<Success, IOError>

    init(_ op: IOOperation, finish: @escaping (IOOperation) -> Result<Success, IOError>) {
        self.op = op
        self.finish = finish
    }

    // Inlinable so that callers in other modules get it specialised: an unspecialised generic
    // poll looks up its result type's metadata on every call.
    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Result<Success, IOError>> {
        guard self.op != nil else { preconditionFailure("IOFuture polled after it was ready") }
        guard self.op!.isReady(&context) else { return .pending }
        let op = self.op.take()!
        let output = finish(op)
        op.release()
        return .ready(output)
    }

    deinit {
        op?.drop()
    }
}

extension IOOperation {
    /// For a polled future: true once the operation completed (else the waker is registered, or
    /// the task's budget ran out and it was asked to yield).
    @usableFromInline
    func isReady(_ context: inout Context) -> Bool {
        guard Coop.proceed(&context) else { return false }
        return register(context.waker)
    }

    /// The waiter took the result: the record goes back to its driver.
    @usableFromInline
    func release() { driver.release(self) }

    /// The waiter is gone before the result: the operation is cancelled if still in flight, and
    /// the driver gets a reference that keeps the record alive until its CQE (R4). The reference
    /// is taken before the state says `abandoned`, since the driver may see that at once.
    @usableFromInline
    func drop() {
        let userData = self.userData
        let leftWithDriver = Unmanaged.passRetained(self)
        if abandon() {
            leftWithDriver.release()
            driver.release(self)
        } else {
            driver.cancel(self, userData: userData)
        }
    }

    /// Starts an operation on the calling thread's driver: `configure` fills in the record.
    static func start(_ configure: (IOOperation) -> Void) -> IOOperation {
        // The worker (and its driver) outlive the call: no retain of either.
        if let worker = Worker.currentUnmanaged {
            return worker._withUnsafeGuaranteedRef { $0.ioRef }._withUnsafeGuaranteedRef { io in
                let op = io.makeOperation()
                configure(op)
                io.start(op)
                return op
            }
        }
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
