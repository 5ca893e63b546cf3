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
