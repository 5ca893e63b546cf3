import Synchronization

/// The waker `blockOn` gives its future: waking sets `woken` and unparks the thread.
final class BlockOnSignal: WakerTarget, @unchecked Sendable {
    let parker: ThreadParker
    let woken = Atomic<Bool>(true)  // poll once at the start

    init(parker: ThreadParker) { self.parker = parker }

    override func wake() {
        woken.store(true, ordering: .releasing)
        parker.unpark()
    }
}

/// Runs `future` to completion on the calling thread, sleeping while it is pending until its waker
/// is woken (from any thread). Before each sleep the thread yields the CPU up to
/// `spinsBeforeSleeping` times (`sched_yield`), watching for the wake: a result that arrives
/// within microseconds then costs no sleep and wake-up.
///
/// ```swift
/// let (a, b) = blockOn(join(ready(1), ready(2)))
/// ```
public func blockOn<F: Future & ~Copyable>(_ future: consuming F, spinsBeforeSleeping: Int = 0) -> F.Output {
    drive(future, parker: ThreadParker(spins: max(0, spinsBeforeSleeping)), runOthers: { false })
}

/// The loop behind both `blockOn`s: poll `future` whenever its waker was woken; between polls let
/// `runOthers` run other work (it returns whether it ran any); sleep on `parker` when neither has
/// anything to do. Any wake of the future, and anything `runOthers` waits for, must unpark `parker`.
func drive<F: Future & ~Copyable>(_ future: consuming F, parker: ThreadParker, runOthers: () -> Bool) -> F.Output {
    let signal = BlockOnSignal(parker: parker)
    var future = future
    var context = Context(waker: signal.makeWaker())
    while true {
        if signal.woken.exchange(false, ordering: .acquiring), case .ready(let value) = future.poll(&context) {
            return value
        }
        // The parker's token makes a wake between this check and park() return at once.
        if !runOthers() && !signal.woken.load(ordering: .acquiring) { parker.park() }
    }
}
