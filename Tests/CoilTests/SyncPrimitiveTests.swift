@testable import Coil
import CoilTestSupport
import Synchronization
import XCTest

/// oneshot, mpsc, Notify, Semaphore and AsyncMutex: each wakes exactly the waiters it should and
/// handles a dropped other side.
final class SyncPrimitiveTests: XCTestCase {
    func testOneshotDeliversAcrossTasks() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            let channel = Oneshot.channel(of: Int.self)
            let tx = channel.sender
            _ = runtime.spawn(sleep(for: .milliseconds(5)).map { tx.send(42) })
            let received = runtime.blockOn(channel.receiver)
            XCTAssertEqual(received, .success(42), name)
            runtime.shutdown()
        }
    }

    func testOneshotDroppedSenderClosesTheReceiver() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let channel = Oneshot.channel(of: Int.self)
        // The task owns the sender and drops it, unsent, after 5 ms.
        _ = runtime.spawn(Holding(channel.sender, until: sleep(for: .milliseconds(5))))
        let received = runtime.blockOn(channel.receiver)
        XCTAssertEqual(received, .failure(OneshotClosedError()))
    }

    func testOneshotSendToDroppedReceiverGivesTheValueBack() {
        let channel = Oneshot.channel(of: Int.self)
        let tx = channel.sender
        let rx = channel.receiver
        _ = consume rx  // dropped here
        XCTAssertTrue(tx.isClosed)
        guard case .failure(let error) = tx.send(7) else { return XCTFail("send succeeded without a receiver") }
        XCTAssertEqual(error.value, 7)
    }

    /// The channel state lives exactly as long as the second half: it is freed when both are
    /// gone, in either order, sent or not; a waker still stored in it is released with it.
    func testOneshotStateIsFreedByWhicheverHalfGoesSecond() {
        final class Freed: WakerTarget, @unchecked Sendable {
            static let count = Atomic<Int>(0)
            deinit { Self.count.add(1, ordering: .relaxed) }
        }
        let statesBefore = OneshotState.alive.load(ordering: .relaxed)
        for senderGoesLast in [false, true] {
            for sends in [false, true] {
                let label = "sender last: \(senderGoesLast), sends: \(sends)"
                let freedBefore = Freed.count.load(ordering: .relaxed)
                let channel = Oneshot.channel(of: Int.self)
                var tx: OneshotSender<Int>? = .some(channel.sender)
                var rx: OneshotReceiver<Int>? = .some(channel.receiver)
                do {
                    var context = Context(waker: Freed().makeWaker())
                    if case .ready = rx!.poll(&context) { XCTFail(label) }  // stores the waker
                }
                XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore + 1, label)
                if sends && !senderGoesLast { _ = tx!.send(1) }  // takes and wakes the waker
                if senderGoesLast { rx = nil } else { tx = nil }
                XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore + 1, "one half left: \(label)")
                if sends && senderGoesLast { _ = tx!.send(1) }  // fails: the receiver is gone
                if senderGoesLast { tx = nil } else { rx = nil }
                XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore, "both gone: \(label)")
                XCTAssertEqual(Freed.count.load(ordering: .relaxed), freedBefore + 1, "the stored waker released: \(label)")
            }
        }
    }

    /// A receiver that has taken its outcome lets go of the state at once (it never touches it
    /// again); the state lives on while the sender does, and the sender's drop frees it. The same
    /// with the halves' roles in time swapped, and for a closed outcome.
    func testOneshotReceiverThatTookItsOutcomeReleasesTheState() {
        let statesBefore = OneshotState.alive.load(ordering: .relaxed)
        do {
            let channel = Oneshot.channel(of: Int.self)
            let tx = channel.sender
            var rx = channel.receiver
            guard case .success = tx.send(5) else { return XCTFail("send") }
            XCTAssertEqual(rx.tryReceive(), .success(5))
            XCTAssertTrue(tx.isClosed, "the receiver has its outcome: a send would fail")
            XCTAssertEqual(tx.send(6).failureValue?.value, 6)
            _ = consume rx  // finished already: its drop touches nothing
            XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore + 1, "the sender still holds it")
            _ = consume tx
            XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore, "freed by the sender's drop")
        }
        do {
            let channel = Oneshot.channel(of: Int.self)
            let tx = channel.sender
            var rx = channel.receiver
            _ = tx.send(7)
            _ = consume tx
            XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore + 1, "the receiver still holds it")
            XCTAssertEqual(rx.tryReceive(), .success(7))
            XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore, "freed by the receive itself")
            _ = consume rx
            XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore)
        }
        do {
            let channel = Oneshot.channel(of: Int.self)
            var rx = channel.receiver
            let tx = channel.sender
            _ = consume tx  // unsent
            XCTAssertEqual(rx.tryReceive(), .failure(OneshotClosedError()))
            XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore, "freed by the receive")
            _ = consume rx
        }
    }

    /// Every value a oneshot carries is released exactly once, on every path: received, sent to
    /// a receiver dropped before or after the send, a second send refused. Once for a value that
    /// fits the channel's inline room (a reference) and once for one that takes a heap cell (a
    /// 40-byte struct holding a reference).
    func testOneshotReleasesEveryValueExactlyOnce() {
        let statesBefore = OneshotState.alive.load(ordering: .relaxed)
        defer { XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore, "every channel state freed") }
        func check<T>(_ wrap: (Payload) -> T, _ unwrap: (T) -> Payload, _ label: String) {
            let lives = Payload.Counter()
            do {
                let channel = Oneshot.channel(of: T.self)
                let tx = channel.sender
                var rx = channel.receiver
                let early = rx.tryReceive()
                XCTAssertNil(early, label)
                guard case .success = tx.send(wrap(Payload(1, lives))) else { return XCTFail(label) }
                guard case .failure(let again) = tx.send(wrap(Payload(2, lives))) else { return XCTFail(label) }
                XCTAssertEqual(unwrap(again.value).id, 2, label)
                guard case .success(let value)? = rx.tryReceive() else { return XCTFail(label) }
                XCTAssertEqual(unwrap(value).id, 1, label)
            }
            do {
                let channel = Oneshot.channel(of: T.self)
                _ = channel.sender.send(wrap(Payload(3, lives)))
                let rx = channel.receiver
                _ = consume rx  // sent, never received: the receiver's drop releases it
            }
            do {
                let channel = Oneshot.channel(of: T.self)
                let tx = channel.sender
                let rx = channel.receiver
                _ = consume rx  // the receiver is gone before the send
                guard case .failure(let back) = tx.send(wrap(Payload(4, lives))) else { return XCTFail(label) }
                XCTAssertEqual(unwrap(back.value).id, 4, label)
            }
            XCTAssertEqual(lives.created.load(ordering: .relaxed), 4, label)
            XCTAssertEqual(lives.released.load(ordering: .relaxed), 4, label)
        }
        check({ $0 }, { $0 }, "inline")
        check({ Wide(payload: $0) }, { $0.payload }, "heap cell")
        XCTAssertGreaterThan(MemoryLayout<Wide>.size, 32)
    }

    /// Sender and receiver on two threads, racing: the receiver thread follows the sender a
    /// channel or so behind and takes the value or drops the receiver (or both) while the send
    /// may be under way. Each of 20,000 values is received, handed back to the sender, or dropped
    /// with its receiver, and released exactly once.
    func testOneshotRacingSendAndReceiverDropReleaseEveryValueOnce() {
        let statesBefore = OneshotState.alive.load(ordering: .relaxed)
        defer { XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore, "every channel state freed") }
        let count = 20_000 * stressScale
        final class Tally: Sendable {
            let sent = Atomic<Int>(-1), dropped = Atomic<Int>(-1)
            let received = Atomic<Int>(0), handedBack = Atomic<Int>(0)
            /// Spins (yielding now and then) until `counter` reaches `index`: keeps the two
            /// threads within a channel or two of each other, so that sends and drops overlap.
            func await(_ counter: borrowing Atomic<Int>, _ index: Int) {
                var spins = 0
                while counter.load(ordering: .acquiring) < index {
                    spins += 1
                    if spins % 64 == 0 { sched_yield() }
                }
            }
        }
        let lives = Payload.Counter(), tally = Tally()
        let halves = OneshotHalves<Wide>(count)
        runThreads(2) { side in
            if side == 0 {
                for index in 0..<count {
                    let tx = (halves.senders + index).move()
                    tally.await(tally.dropped, index - 2)
                    tally.sent.store(index, ordering: .releasing)
                    if case .failure = tx.send(Wide(payload: Payload(index, lives))) { tally.handedBack.add(1, ordering: .relaxed) }
                }
            } else {
                for index in 0..<count {
                    tally.await(tally.sent, index - 1)
                    if index % 2 == 0, case .success(let value)? = halves.receivers[index]!.tryReceive() {
                        precondition(value.payload.id == index, "oneshot \(index) delivered \(value.payload.id)")
                        tally.received.add(1, ordering: .relaxed)
                    }
                    halves.receivers[index] = nil
                    tally.dropped.store(index, ordering: .releasing)
                }
            }
        }
        XCTAssertEqual(lives.created.load(ordering: .relaxed), count)
        XCTAssertEqual(lives.released.load(ordering: .relaxed), count)
        XCTAssertGreaterThan(tally.received.load(ordering: .relaxed), 0, "some values were received")
        XCTAssertGreaterThan(tally.handedBack.load(ordering: .relaxed), 0, "some receivers were dropped before their send")
        print("oneshot race: \(tally.received.load(ordering: .relaxed)) received, \(tally.handedBack.load(ordering: .relaxed)) handed back, of \(count)")
    }

    /// The waker protocol under races: for each of 20,000 channels the receiving thread polls
    /// with one waker and, for every third, polls again with a different one (the receiver moved
    /// to another task), while the sending thread sends, or drops its sender unsent, at a moment
    /// that drifts against those polls. Whenever a poll is pending, the waker of the latest poll
    /// must be woken (no lost wake-up), and the next poll must then be ready with the right
    /// outcome. Every waker reference the channel took is released (each target is freed).
    func testOneshotWakesTheLatestWaiterWhileTheSenderRaces() {
        let statesBefore = OneshotState.alive.load(ordering: .relaxed)
        defer { XCTAssertEqual(OneshotState.alive.load(ordering: .relaxed), statesBefore, "every channel state freed") }
        final class Target: WakerTarget, @unchecked Sendable {
            let wakes = Atomic<Int>(0)
            let lives: Lives
            init(_ lives: Lives) { self.lives = lives; lives.made.add(1, ordering: .relaxed) }
            override func wake() { wakes.add(1, ordering: .releasing) }
            deinit { lives.freed.add(1, ordering: .relaxed) }
        }
        final class Lives: Sendable { let made = Atomic<Int>(0), freed = Atomic<Int>(0) }
        final class Steps: Sendable { let started = Atomic<Int>(-1), acted = Atomic<Int>(-1) }
        let count = 20_000 * stressScale
        let halves = OneshotHalves<Int>(count), lives = Lives(), steps = Steps()
        let lost = Atomic<Int>(0), waited = Atomic<Int>(0), repolled = Atomic<Int>(0)
        runThreads(2) { side in
            if side == 0 {
                for index in 0..<count {
                    let tx = (halves.senders + index).move()
                    while steps.started.load(ordering: .acquiring) < index { sched_yield() }
                    for _ in 0..<(index % 7) * 20 { _ = steps.acted.load(ordering: .relaxed) }  // drift
                    if index % 4 == 3 {
                        _ = consume tx  // dropped unsent
                    } else {
                        _ = tx.send(index)
                    }
                    steps.acted.store(index, ordering: .releasing)
                }
            } else {
                for index in 0..<count {
                    steps.started.store(index, ordering: .releasing)
                    var latest = Target(lives)
                    var outcome = Self.poll(halves.receivers + index, with: latest)
                    if outcome == nil && index % 3 == 0 {
                        repolled.add(1, ordering: .relaxed)
                        latest = Target(lives)
                        outcome = Self.poll(halves.receivers + index, with: latest)
                    }
                    if outcome == nil {
                        // Pending: the sender's action must wake the latest waker.
                        waited.add(1, ordering: .relaxed)
                        let deadline = ContinuousClock.now + .seconds(10)
                        while latest.wakes.load(ordering: .acquiring) == 0 {
                            sched_yield()
                            if ContinuousClock.now > deadline { lost.add(1, ordering: .relaxed); break }
                        }
                        outcome = Self.poll(halves.receivers + index, with: latest)
                    }
                    let expected: Result<Int, OneshotClosedError> = index % 4 == 3 ? .failure(OneshotClosedError()) : .success(index)
                    precondition(outcome == expected, "oneshot \(index): \(String(describing: outcome)), expected \(expected)")
                    (halves.receivers + index).pointee = nil
                    while steps.acted.load(ordering: .acquiring) < index { sched_yield() }
                }
            }
        }
        print("oneshot wakes: \(waited.load(ordering: .relaxed)) waits for a wake, \(repolled.load(ordering: .relaxed)) polls by a second waker, of \(count)")
        XCTAssertGreaterThan(waited.load(ordering: .relaxed), 0, "some polls were pending")
        XCTAssertGreaterThan(repolled.load(ordering: .relaxed), 0, "some receivers were polled by a second waker")
        XCTAssertEqual(lost.load(ordering: .relaxed), 0, "pending polls whose latest waker was never woken")
        XCTAssertEqual(lives.freed.load(ordering: .relaxed), lives.made.load(ordering: .relaxed),
                       "every waker the channels stored was released")
    }

    /// Polls the receiver at `slot` once with a waker of `target`.
    private static func poll(_ slot: UnsafeMutablePointer<OneshotReceiver<Int>?>, with target: WakerTarget)
        -> Result<Int, OneshotClosedError>? {
        var context = Context(waker: target.makeWaker())
        switch slot.pointee!.poll(&context) {
        case .ready(let outcome): return outcome
        case .pending: return nil
        }
    }

    func testBoundedChannelAppliesBackPressureAndKeepsOrder() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            let (tx, rx) = MPSC.channel(of: Int.self, capacity: 2)
            XCTAssertNoThrow(try tx.trySend(0).get())
            XCTAssertNoThrow(try tx.trySend(1).get())
            guard case .failure(.full(2)) = tx.trySend(2) else { return XCTFail("a full channel must say full") }
            // A producer task sends 2..<1000 and waits for room each time the buffer is full.
            let producer = runtime.spawn(ProducerLoop(sender: tx, range: 2..<1000))
            var received: [Int] = []
            while let value = runtime.blockOn(rx.receive()) {
                received.append(value)
                if received.count == 1000 { break }
            }
            XCTAssertEqual(received, Array(0..<1000), name)
            let produced = runtime.blockOn(producer)
            XCTAssertNoThrow(try produced.get(), name)
            runtime.shutdown()
        }
    }

    func testUnboundedChannelEndsWhenEverySenderIsGone() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        var (tx, rx): (MPSC.UnboundedSender<Int>?, MPSC.Receiver<Int>) = MPSC.unboundedChannel(of: Int.self)
        let senders = 4
        for s in 0..<senders {
            let mine = tx!.clone()
            _ = runtime.spawn(pollFn { _ -> Poll<Void> in
                for i in 0..<250 { mine.send(s * 1000 + i) }
                return .ready(())
            })
        }
        tx = nil
        var seen = Set<Int>()
        while let value = runtime.blockOn(rx.receive()) { seen.insert(value) }
        XCTAssertEqual(seen.count, senders * 250, "every value once, then nil")
        XCTAssertEqual(rx.tryReceive().failureValue, .disconnected)
    }

    func testSendAfterReceiverDroppedFails() {
        var pair: (MPSC.Sender<String>, MPSC.Receiver<String>)? = MPSC.channel(of: String.self, capacity: 4)
        let tx = pair!.0
        pair = nil
        guard case .failure(.closed("x")) = tx.trySend("x") else { return XCTFail("expected closed") }
        XCTAssertTrue(tx.isClosed)
    }

    func testNotifyOneStoresOnePermitAndWakesOneWaiter() throws {
        let runtime = try Runtime.Builder.currentThread().build()
        defer { runtime.shutdown() }
        let notify = Notify()
        notify.notifyOne()
        notify.notifyOne()  // permits do not accumulate
        runtime.blockOn(notify.notified())  // consumes the permit at once
        let woken = Counter()
        for _ in 0..<3 { _ = runtime.spawn(notify.notified().map { woken.increment() }) }
        runtime.blockOn(yieldNow())
        XCTAssertEqual(woken.value, 0, "no permit left")
        notify.notifyOne()
        runtime.blockOn(sleep(for: .milliseconds(2)))
        XCTAssertEqual(woken.value, 1, "exactly one waiter")
        notify.notifyWaiters()
        runtime.blockOn(sleep(for: .milliseconds(2)))
        XCTAssertEqual(woken.value, 3)
        // notifyWaiters stores nothing.
        let later = runtime.spawn(notify.notified().map { woken.increment() })
        runtime.blockOn(sleep(for: .milliseconds(2)))
        XCTAssertFalse(later.isFinished)
    }

    func testNotificationChosenForADroppedWaiterPassesOn() throws {
        let runtime = try Runtime.Builder.currentThread().build()
        defer { runtime.shutdown() }
        let notify = Notify()
        let first = runtime.spawn(notify.notified())
        let second = runtime.spawn(notify.notified())
        runtime.blockOn(yieldNow())
        // notifyOne picks `first`; `first` is aborted before it observes it.
        notify.notifyOne()
        first.abort()
        let result = runtime.blockOn(second)
        XCTAssertNotNil(result.successValue)
    }

    func testBroadcastNotificationOfADroppedWaiterIsNotPassedOn() throws {
        let runtime = try Runtime.Builder.currentThread().build()
        defer { runtime.shutdown() }
        let notify = Notify()
        let waiter = runtime.spawn(notify.notified())
        runtime.blockOn(yieldNow())
        notify.notifyWaiters()
        waiter.abort()
        _ = runtime.blockOn(waiter)
        let later = runtime.spawn(notify.notified())
        runtime.blockOn(sleep(for: .milliseconds(2)))
        XCTAssertFalse(later.isFinished, "notifyWaiters left no permit behind")
        notify.notifyOne()
        _ = runtime.blockOn(later)
    }

    func testSemaphoreIsFairAndReturnsPermitsOfDroppedWaiters() throws {
        let runtime = try Runtime.Builder.currentThread().build()
        defer { runtime.shutdown() }
        let semaphore = Semaphore(permits: 2)
        XCTAssertTrue(semaphore.tryAcquire(2))
        let order = MPSC.unboundedChannel(of: Int.self)
        let big = runtime.spawn(semaphore.acquire(2).map { _ in order.0.send(2) })
        runtime.blockOn(yieldNow())
        let small = runtime.spawn(semaphore.acquire(1).map { _ in order.0.send(1) })
        runtime.blockOn(yieldNow())
        semaphore.release(1)
        runtime.blockOn(yieldNow())
        XCTAssertFalse(small.isFinished, "FIFO: the one-permit waiter queues behind the two-permit one")
        big.abort()
        _ = runtime.blockOn(big)
        _ = runtime.blockOn(small)
        XCTAssertEqual(order.1.tryReceive().successValue, 1)
        semaphore.release(1)
        XCTAssertEqual(semaphore.availablePermits, 1)
        semaphore.close()
        let closed = runtime.blockOn(semaphore.acquire())
        XCTAssertEqual(closed.failureValue, SemaphoreClosedError())
    }

    func testAsyncMutexSerialisesIncrementsAcrossWorkers() async throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let mutex = AsyncMutex(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask(executorPreference: runtime) {
                    for _ in 0..<200 { await mutex.withLock { $0 += 1 } }
                }
            }
        }
        let total = await mutex.withLock { $0 }
        XCTAssertEqual(total, 1600)
    }
}

/// Sends `range` through a bounded sender, waiting for room.
struct ProducerLoop: ~Copyable, Future {
    let sender: MPSC.Sender<Int>
    var range: Range<Int>
    var pending: MPSC.Sender<Int>.Send? = nil

    init(sender: MPSC.Sender<Int>, range: Range<Int>) {
        self.sender = sender
        self.range = range
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        while true {
            if pending == nil {
                guard let next = range.popFirst() else { return .ready(()) }
                pending = sender.send(next)
            }
            guard case .ready = pending!.poll(&context) else { return .pending }
            pending = nil
        }
    }
}

extension Result {
    var successValue: Success? { if case .success(let value) = self { return value } else { return nil } }
    var failureValue: Failure? { if case .failure(let error) = self { return error } else { return nil } }
}

/// A value whose releases are counted.
private final class Payload: Sendable {
    final class Counter: Sendable {
        let created = Atomic<Int>(0), released = Atomic<Int>(0)
    }
    let id: Int
    let lives: Counter
    init(_ id: Int, _ lives: Counter) {
        self.id = id
        self.lives = lives
        lives.created.add(1, ordering: .relaxed)
    }
    deinit { lives.released.add(1, ordering: .relaxed) }
}

/// Too big for a oneshot's inline room: its send puts it in a heap cell.
private struct Wide: Sendable {
    let payload: Payload
    var padding: (Int, Int, Int, Int) = (0, 0, 0, 0)
}

/// Oneshot halves in raw memory (an Array cannot hold noncopyable values), for tests that hand
/// the senders to one thread and the receivers to another.
private final class OneshotHalves<T>: @unchecked Sendable {
    // SAFETY: only the sending thread touches `senders`, and only the receiving thread
    // `receivers`, while the threads run.
    let senders: UnsafeMutablePointer<OneshotSender<T>>
    let receivers: UnsafeMutablePointer<OneshotReceiver<T>?>
    init(_ count: Int) {
        senders = .allocate(capacity: count)
        receivers = .allocate(capacity: count)
        for index in 0..<count {
            let channel = Oneshot.channel(of: T.self)
            (senders + index).initialize(to: channel.sender)
            (receivers + index).initialize(to: channel.receiver)
        }
    }
    deinit {
        senders.deallocate()   // each sender was moved out and dropped by the sending thread
        receivers.deallocate() // each receiver was set to nil by the receiving thread
    }
}

/// Owns `held` until `until` is ready, then drops it and is ready.
private struct Holding<Held: ~Copyable, Until: Future & ~Copyable>: ~Copyable, Future {
    var held: Held?
    var until: Until

    init(_ held: consuming Held, until: consuming Until) {
        self.held = .some(held)
        self.until = until
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        guard case .ready = until.poll(&context) else { return .pending }
        held = nil
        return .ready(())
    }
}
