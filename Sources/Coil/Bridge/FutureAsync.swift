import CoilCore
import Synchronization

/// Awaiting Coil futures from Swift `async` code.
///
/// ```swift
/// let output = await runtime.spawn(work).value()      // a JoinHandle
/// try await sleep(for: .milliseconds(5)).value()
/// ```
///
/// The future is polled on the thread running the async code; when it is pending the async task
/// suspends, and the future's waker resumes it. On a Coil worker (a task started with
/// `Task(executorPreference: runtime)`) the resumption is queued on that worker like any woken
/// task: no thread hop.
extension Future where Self: ~Copyable {
    public consuming func value() async -> Output {
        let bridge = AsyncWakeBridge()
        var future = self
        var context = Context(waker: bridge.makeWaker())
        while true {
            if case .ready(let output) = future.poll(&context) { return output }
            // Woken already (the future woke itself, e.g. to yield): let other work run first.
            if !(await bridge.waitForWake()) { await Task.yield() }
        }
    }

    /// Like ``value()``, but if the Swift task is cancelled before the output is ready the future
    /// is dropped (which cancels what it was doing: an I/O future cancels its operation) and the
    /// result is nil.
    ///
    /// ```swift
    /// guard let stream = await listener.acceptFuture().cancellableValue() else { return }  // cancelled
    /// ```
    public consuming func cancellableValue() async -> Output? {
        await cancellableValue(through: AsyncWakeBridge())
    }

    /// ``cancellableValue()`` through a bridge the caller keeps for reuse (one waiter at a time),
    /// so that awaiting allocates nothing.
    consuming func cancellableValue(through bridge: AsyncWakeBridge) async -> Output? {
        var future = self
        var context = Context(waker: bridge.makeWaker())
        return await withTaskCancellationHandler { () async -> Output? in
            while !Task.isCancelled {
                if case .ready(let output) = future.poll(&context) { return output }
                if !(await bridge.waitForWake()) { await Task.yield() }
            }
            return nil
        } onCancel: {
            bridge.wake()
        }
    }
}

/// The waker between a pending future and the async task awaiting it.
///
/// States: idle (no wake pending, nobody suspended), suspended (the continuation is stored),
/// woken (a wake came while nobody was suspended). `wake` resumes a suspended task or leaves
/// `woken` behind; `waitForWake` consumes `woken` at once, so a wake is never lost.
final class AsyncWakeBridge: WakerTarget, @unchecked Sendable {
    // SAFETY: `continuation` is written before the release CAS to `suspended` and taken only by
    // whoever moves the state out of `suspended`.
    private static let idle = 0, suspended = 1, woken = 2
    private let state = Atomic<Int>(AsyncWakeBridge.idle)
    private var continuation: UnsafeContinuation<Void, Never>? = nil

    /// Suspends until the next wake; returns false without suspending if one came already.
    func waitForWake() async -> Bool {
        if state.compareExchange(expected: Self.woken, desired: Self.idle, ordering: .acquiring).exchanged { return false }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            self.continuation = continuation
            if !state.compareExchange(expected: Self.idle, desired: Self.suspended, ordering: .acquiringAndReleasing).exchanged {
                // Woken between the first check and now.
                self.continuation = nil
                state.store(Self.idle, ordering: .relaxed)
                continuation.resume()
            }
        }
        return true
    }

    override func wake() {
        while true {
            let current = state.load(ordering: .acquiring)
            if current == Self.woken { return }
            if current == Self.suspended {
                if state.compareExchange(expected: Self.suspended, desired: Self.idle, ordering: .acquiringAndReleasing).exchanged {
                    let continuation = self.continuation.take()
                    continuation?.resume()
                    return
                }
            } else if state.compareExchange(expected: Self.idle, desired: Self.woken, ordering: .acquiringAndReleasing).exchanged {
                return
            }
        }
    }
}
