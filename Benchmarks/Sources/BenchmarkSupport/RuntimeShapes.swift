import Coil
import Synchronization

/// The scheduler shapes of Tokio's `benches/rt_multi_threaded.rs`, as measured by the Tokio
/// anchor (`../shared/anchors/tokio/src/bin/sched_bench.rs`), written against Coil's public API.
/// Completion is awaited through Coil's unbounded mpsc channel (the anchor's "async" flavours).
public enum RuntimeShapes {
    public static let spawnCount = 10_000
    public static let yieldTasks = 1_000
    public static let yieldsPerTask = 1_000
    public static let pingPairs = 1_000
    public static let chainLength = 1_000
    public static let spawnJoinOps = 10_000

    public final class Remaining: Sendable {
        let value = Atomic<Int>(0)
        public init() {}
        public func set(_ count: Int) { value.store(count, ordering: .relaxed) }
        /// Whether this was the last one.
        public func decrement() -> Bool { value.subtract(1, ordering: .relaxed).oldValue == 1 }
    }

    // MARK: spawn_many_local: 10,000 spawns from the blockOn future, the last signals.

    public static func spawnManyLocal(_ runtime: Runtime) {
        let (tx, rx) = MPSC.unboundedChannel(of: Void.self)
        let remaining = Remaining()
        remaining.set(spawnCount)
        var spawned = false
        var receive = rx.receive()
        runtime.blockOn(pollFn { context -> Poll<Void> in
            if !spawned {
                spawned = true
                for _ in 0..<spawnCount { _ = spawn(CountDown(remaining: remaining, done: tx)) }
            }
            return receive.poll(&context).map { _ in () }
        })
    }

    /// The spawned task of spawn_many_local: its captures live in the task (as an async block's
    /// do in Tokio), not in a closure context of their own.
    struct CountDown: Future {
        let remaining: Remaining
        let done: MPSC.UnboundedSender<Void>
        mutating func poll(_ context: inout Context) -> Poll<Void> {
            if remaining.decrement() { done.send(()) }
            return .ready(())
        }
    }

    // MARK: spawn_many_remote_idle: 10,000 spawns from outside, then join them all.

    public static func spawnManyRemoteIdle(_ runtime: Runtime) {
        let handles = UnsafeMutablePointer<JoinHandle<Void>>.allocate(capacity: spawnCount)
        defer { handles.deallocate() }
        for index in 0..<spawnCount { (handles + index).initialize(to: runtime.spawn(ready(()))) }
        // Awaited one after another, as the anchor does (`for h in handles { h.await }`).
        runtime.blockOn(JoinInOrder(handles: handles, count: spawnCount))
    }

    /// Awaits `count` join handles in order, consuming them.
    struct JoinInOrder: Future {
        let handles: UnsafeMutablePointer<JoinHandle<Void>>
        let count: Int
        var next = 0

        mutating func poll(_ context: inout Context) -> Poll<Void> {
            while next < count {
                guard case .ready = handles[next].poll(&context) else { return .pending }
                (handles + next).deinitialize(count: 1)
                next += 1
            }
            return .ready(())
        }
    }

    // MARK: yield_many: 1,000 tasks x 1,000 yields.

    struct YieldThenSignal: Future {
        var left: Int
        var yielding = YieldNow()
        let done: MPSC.UnboundedSender<Void>

        mutating func poll(_ context: inout Context) -> Poll<Void> {
            while left > 0 {
                guard case .ready = yielding.poll(&context) else { return .pending }
                yielding = YieldNow()
                left -= 1
            }
            done.send(())
            return .ready(())
        }
    }

    public static func yieldMany(_ runtime: Runtime) {
        let (tx, rx) = MPSC.unboundedChannel(of: Void.self)
        for _ in 0..<yieldTasks { _ = runtime.spawn(YieldThenSignal(left: yieldsPerTask, done: tx)) }
        var received = 0
        var receive = rx.receive()
        runtime.blockOn(pollFn { context -> Poll<Void> in
            while received < yieldTasks {
                guard case .ready = receive.poll(&context) else { return .pending }
                receive = rx.receive()
                received += 1
            }
            return .ready(())
        })
    }

    // MARK: ping_pong: 1,000 pairs over oneshots.

    struct Pong: ~Copyable, Future {
        var rx1: OneshotReceiver<Void>
        let tx2: OneshotSender<Void>
        mutating func poll(_ context: inout Context) -> Poll<Void> {
            guard case .ready = rx1.poll(&context) else { return .pending }
            tx2.send(())
            return .ready(())
        }
    }

    struct Ping: ~Copyable, Future {
        let remaining: Remaining
        let done: MPSC.UnboundedSender<Void>
        var rx2: OneshotReceiver<Void>? = nil

        mutating func poll(_ context: inout Context) -> Poll<Void> {
            if rx2 == nil {
                let first = Oneshot.channel(of: Void.self), second = Oneshot.channel(of: Void.self)
                let tx1 = first.sender
                _ = spawn(Pong(rx1: first.receiver, tx2: second.sender))
                tx1.send(())
                rx2 = .some(second.receiver)
            }
            guard case .ready = rx2!.poll(&context) else { return .pending }
            if remaining.decrement() { done.send(()) }
            return .ready(())
        }
    }

    /// `count` oneshot channels, each sent on and received from once, the sender through a
    /// closure the optimizer cannot see (as a channel whose halves go to two tasks), so that the
    /// channel's state is not promoted to the stack. Returns the sum of the values received.
    public static func oneshotRoundTrips(_ count: Int) -> Int {
        var sum = 0
        for index in 0..<count {
            let channel = Oneshot.channel(of: Int.self)
            var receiver = channel.receiver
            sendThrough(channel.sender, index)
            if case .success(let value)? = receiver.tryReceive() { sum &+= value }
        }
        return sum
    }

    /// A public global variable (another module could replace it), so that calls through it are
    /// opaque.
    nonisolated(unsafe) public static var sendThrough: (consuming OneshotSender<Int>, Int) -> Void = { sender, value in
        _ = sender.send(value)
    }

    public static func pingPong(_ runtime: Runtime) {
        let (tx, rx) = MPSC.unboundedChannel(of: Void.self)
        let remaining = Remaining()
        remaining.set(pingPairs)
        var started = false
        var receive = rx.receive()
        runtime.blockOn(pollFn { context -> Poll<Void> in
            if !started {
                started = true
                _ = spawn(pollFn { _ -> Poll<Void> in
                    for _ in 0..<pingPairs { _ = spawn(Ping(remaining: remaining, done: tx)) }
                    return .ready(())
                })
            }
            return receive.poll(&context).map { _ in () }
        })
    }

    // MARK: chained_spawn: each task spawns the next, 1,000 deep.

    struct ChainLink: Future {
        let left: Int
        let done: MPSC.UnboundedSender<Void>
        mutating func poll(_ context: inout Context) -> Poll<Void> {
            if left == 0 { done.send(()) } else { _ = spawn(ChainLink(left: left - 1, done: done)) }
            return .ready(())
        }
    }

    public static func chainedSpawn(_ runtime: Runtime) {
        let (tx, rx) = MPSC.unboundedChannel(of: Void.self)
        var started = false
        var receive = rx.receive()
        runtime.blockOn(pollFn { context -> Poll<Void> in
            if !started {
                started = true
                _ = spawn(ChainLink(left: chainLength, done: tx))
            }
            return receive.poll(&context).map { _ in () }
        })
    }

    // MARK: spawn+join, from blockOn and inside a task.

    struct SpawnJoinLoop: ~Copyable, Future {
        var left: Int
        var handle: JoinHandle<Void>? = nil

        mutating func poll(_ context: inout Context) -> Poll<Void> {
            while true {
                if handle == nil {
                    if left == 0 { return .ready(()) }
                    left -= 1
                    handle = spawn(ready(()))
                }
                guard case .ready = handle!.poll(&context) else { return .pending }
                handle = nil
            }
        }
    }

    public static func spawnJoinFromBlockOn(_ runtime: Runtime) {
        runtime.blockOn(SpawnJoinLoop(left: spawnJoinOps))
    }

    public static func spawnJoinInTask(_ runtime: Runtime) {
        _ = runtime.blockOn(runtime.spawn(SpawnJoinLoop(left: spawnJoinOps)))
    }

    // MARK: Swift's Task.yield round trip, on Coil's executor and on the default one.

    public static func swiftYields(_ count: Int, on runtime: Runtime?) -> Duration {
        let clock = ContinuousClock()
        let box = ResultBox()
        let run: @Sendable () async -> Void = {
            let start = clock.now
            for _ in 0..<count { await Task.yield() }
            box.set(clock.now - start)
        }
        let group = BlockingLatch()
        if let runtime {
            Task(executorPreference: runtime) {
                await run()
                group.release()
            }
        } else {
            Task {
                await run()
                group.release()
            }
        }
        group.wait()
        return box.get()
    }
}
