import CCoil
import CoilCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One worker's state: its local run queue and LIFO slot, its ring, its timer wheel, its park
/// state and its counters. A multi-thread runtime has one per thread; a current-thread runtime
/// has one, driven by whichever thread is inside `blockOn`.
///
/// Everything not atomic is touched only by the thread driving the worker ("the owner").
final class Worker: @unchecked Sendable {
    // SAFETY: non-atomic fields are owner-only (see above); other threads use `queue` through
    // its stealer operations, `parkWord`/`ringPointer` through `unpark`, and the counters.
    let index: Int
    /// Unretained: the shared state owns the workers (and outlives their threads, which hold it).
    /// Hot paths borrow it through `withShared`: a method called on `shared` retains and releases
    /// it first, and with several workers those counts bounce one cache line between them on
    /// every schedule.
    private let sharedRef: Unmanaged<Shared>
    var shared: Shared { sharedRef.takeUnretainedValue() }
    /// The work-stealing local run queue (C), when the runtime has several workers.
    let queue: OpaquePointer
    private let overflow: UnsafeMutablePointer<UInt64>
    /// One worker: nothing steals, so the run queue is `fifo`, private and unbounded, instead of
    /// `queue` (no atomic per push and pop, no spills into the inject queue).
    private let isAlone: Bool
    @exclusivity(unchecked) private var fifo: WordFIFO
    /// `fifo.count`, for readers on other threads (metrics); stored by the owner.
    private let fifoDepth = Atomic<Int>(0)
    private let lifoEnabled: Bool

    /// A task word woken by the running task, run next (LIFO), or 0.
    var lifo: UInt64 = 0
    /// Ticks (calls of `nextTask`) left until the inject queue is looked at first; counts down
    /// from `globalQueueInterval` (a countdown rather than `tick % interval`: no division per task).
    private var injectCountdown: UInt32 = 1
    var isSearching = false
    /// True while the owner handles timers and completions on its way out of a park.
    var inPark = false
    private var rng: UInt64

    /// Set by the owner before any other thread can call `unpark` (the startup barrier orders it).
    private(set) var ring: IORing? = nil
    private(set) var ringPointer: OpaquePointer? = nil
    private var ringFD: Int32 = -1
    let wheel: TimerWheel
    /// The worker's I/O: operations on its ring (set at the end of init; never nil after).
    private(set) var io: IODriver! = nil
    /// `io` unretained, for the per-operation path (a load of `io` retains and releases it).
    private(set) var ioRef: Unmanaged<IODriver>! = nil

    /// `running`, `parkedInRing`, `parkedOnFutex` (how `unpark` must wake it) or `notified` (an
    /// unpark came while it was not parked: its next park returns at once). A 32-bit word in its
    /// own allocation, because the futex park waits on it.
    static let running: UInt32 = 0, parkedInRing: UInt32 = 1, notified: UInt32 = 2, parkedOnFutex: UInt32 = 3
    private let parkWord: UnsafeMutablePointer<Atomic<UInt32>> = {
        let word = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        word.initialize(to: Atomic(Worker.running))
        return word
    }()

    /// Timers cancelled on other threads while in this worker's wheel; the owner unlinks them.
    private let cancelledTimers = ConditionLock([TimerEntry]())
    private let hasCancelledTimers = Atomic<Bool>(false)

    // Counters: written by the owner only (load + store, no read-modify-write), read anywhere.
    let polls = Atomic<UInt64>(0)
    let steals = Atomic<UInt64>(0)
    let parks = Atomic<UInt64>(0)
    let ringParks = Atomic<UInt64>(0)
    let spinWakes = Atomic<UInt64>(0)
    let overflows = Atomic<UInt64>(0)

    init(index: Int, shared: Shared, localQueueCapacity: Int, lifoEnabled: Bool) throws(RuntimeError) {
        // A lone worker's run queue is `fifo` (sized by the configured capacity); its C queue is
        // then never used and takes the smallest size.
        let alone = shared.workerCount == 1
        guard let queue = coil_localq_create(UInt32(clamping: alone ? 2 : localQueueCapacity)) else {
            throw .invalidConfiguration("local queue capacity \(localQueueCapacity) (1...\(COIL_LOCALQ_MAX_CAPACITY))")
        }
        self.index = index
        sharedRef = Unmanaged.passUnretained(shared)
        self.queue = queue
        overflow = .allocate(capacity: Int(coil_localq_capacity(queue)) / 2 + 1)
        self.lifoEnabled = lifoEnabled
        isAlone = alone
        fifo = WordFIFO(capacity: alone ? localQueueCapacity : 0)
        globalQueueInterval = shared.config.globalQueueInterval
        injectCountdown = globalQueueInterval
        budget = shared.config.budget
        workerCount = shared.workerCount
        inject = shared.inject
        rng = 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1)
        wheel = TimerWheel(now: MonotonicTime.milliseconds(), id: 0)
        wheel.id = Int(bitPattern: Unmanaged.passUnretained(self).toOpaque())
        io = IODriver(worker: self)
        ioRef = Unmanaged.passUnretained(io)
    }

    deinit {
        coil_localq_destroy(queue)
        overflow.deallocate()
        parkWord.deinitialize(count: 1)
        parkWord.deallocate()
    }

    /// The worker the calling thread is driving, if any.
    @inline(__always)
    static var current: Worker? {
        guard let raw = coil_context_worker() else { return nil }
        return Unmanaged<Worker>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The same, for hot paths that must not retain it.
    @inline(__always)
    static var currentUnmanaged: Unmanaged<Worker>? {
        coil_context_worker().map { Unmanaged<Worker>.fromOpaque($0) }
    }

    /// Copies of the configuration the hot paths read (no trip through `shared`).
    private let globalQueueInterval: UInt32
    private let budget: Int32
    let workerCount: Int
    private let inject: OpaquePointer
    /// Every worker's local queue, by index (set once all workers exist), for stealing.
    var siblingQueues: [OpaquePointer] = []

    // MARK: Ring

    /// Creates the ring on the calling thread (which will own it) and enables remote wake-ups.
    func openRing(entries: Int, options: IORing.Options) throws(RuntimeError) {
        do {
            let ring = try IORing(entries: entries, options: options)
            try ring.enableWaker()
            self.ring = ring
            ringPointer = ring.ring
            ringFD = ring.fileDescriptor
            io.ring = ring.ring
        } catch {
            throw .ring(error)
        }
    }

    /// The owning thread is leaving: gives up its registered ring fd so the ring can be closed
    /// from any thread. The ring itself stays open until the worker is freed (with the runtime's
    /// shared state), because other threads may still unpark this worker through it.
    func detachRing() {
        if let ringPointer { _ = coil_ring_detach_thread(ringPointer) }
    }

    private static let reapBatch = 64

    /// Consumes every ready completion: the driver absorbs its own wake-ups, every other CQE goes
    /// to the operation record its user data names. Then takes in I/O handed over by other threads.
    func reapCompletions() {
        guard let ringPointer else { return }
        let io = self.io.unsafelyUnwrapped
        withUnsafeTemporaryAllocation(of: coil_cqe_t.self, capacity: Self.reapBatch) { buffer in
            let base = buffer.baseAddress!
            while true {
                let count = coil_ring_reap(ringPointer, base, UInt32(Self.reapBatch))
                if count <= 0 { break }
                for i in 0..<Int(count) {
                    let cqe = base[i]
                    io.complete(userData: cqe.user_data, result: cqe.res, flags: cqe.flags)
                }
                if count < Int32(Self.reapBatch) { break }
            }
        }
        io.processRemote()
    }

    /// Sends prepared operations to the kernel (one system call for everything prepared since).
    func submitPending() {
        guard let ringPointer, coil_ring_sq_pending(ringPointer) > 0 else { return }
        _ = coil_ring_submit(ringPointer)
    }

    // MARK: Scheduling (owner)

    /// Queues a word woken or spawned on this worker: into the LIFO slot (its previous occupant
    /// moves to the queue), or at the back of the queue for a yield.
    func scheduleLocal(_ word: UInt64, isYield: Bool) {
        var published: Bool
        if isYield || !lifoEnabled {
            pushBack(word)
            published = true
        } else {
            let previous = lifo
            lifo = word
            published = previous != 0
            if published { pushBack(previous) }
        }
        // A stealable task appeared: wake a sibling if nobody is searching. Not while this worker
        // is coming out of its own park (it is about to run the task itself).
        if published && workerCount > 1 && !inPark { withShared { $0.notifyParked() } }
    }

    /// Pushes at the back of the run queue. A lone worker's `fifo` grows; a shared worker's C
    /// queue, when full, sends half of itself and `word` to the inject queue.
    func pushBack(_ word: UInt64) {
        if isAlone {
            fifo.push(word)
            fifoDepth.store(fifo.count, ordering: .relaxed)
            return
        }
        let spilled = coil_localq_push(queue, word, overflow)
        if spilled > 0 {
            overflows.store(overflows.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
            for i in 0..<Int(spilled) { pushInject(overflow[i]) }
            if workerCount > 1 { withShared { $0.notifyParked() } }
        }
    }

    /// `Shared.pushInject` without a trip through `shared` on the common path.
    @inline(__always)
    private func pushInject(_ word: UInt64) {
        let pushed = coil_umpmc_push(inject, word)
        precondition(pushed, "out of memory growing the inject queue")
        if withShared({ $0.injectClosed.load(ordering: .sequentiallyConsistent) }) { withShared { $0.drainInject() } }
    }

    @inline(__always)
    private func popInject() -> UInt64? {
        var word: UInt64 = 0
        return coil_umpmc_try_pop(inject, &word) ? word : nil
    }

    /// Owner only.
    var hasLocalWork: Bool { lifo != 0 || (isAlone ? !fifo.isEmpty : !coil_localq_is_empty(queue)) }

    /// Whether the run queue (not the LIFO slot) is empty; any thread may ask.
    var isQueueEmpty: Bool { isAlone ? fifoDepth.load(ordering: .relaxed) == 0 : coil_localq_is_empty(queue) }

    /// How many words the run queue holds; any thread may ask.
    var queueDepth: Int { isAlone ? fifoDepth.load(ordering: .relaxed) : Int(coil_localq_len(queue)) }

    @inline(__always)
    private func popLocal() -> UInt64? {
        if isAlone {
            guard let word = fifo.pop() else { return nil }
            fifoDepth.store(fifo.count, ordering: .relaxed)
            return word
        }
        var word: UInt64 = 0
        return coil_localq_pop(queue, &word) ? word : nil
    }

    /// The next word to run: the inject queue first every `globalQueueInterval` ticks (so remote
    /// work is not starved), else the LIFO slot, the local queue, then the inject queue.
    func nextTask() -> UInt64? {
        injectCountdown &-= 1
        if injectCountdown == 0 {
            injectCountdown = globalQueueInterval
            if let word = popInject() { return word }
        }
        if lifo != 0 {
            let word = lifo
            lifo = 0
            return word
        }
        if let word = popLocal() { return word }
        return popInjectBatch()
    }

    /// Takes one word from the inject queue and moves a fair share of the rest into the local
    /// queue, so that remote spawns are not fetched one contended pop at a time.
    private func popInjectBatch() -> UInt64? {
        guard let first = popInject() else { return nil }
        let available = coil_umpmc_count_approx(inject)
        guard available > 0 else { return first }
        let room = isAlone ? 64 : Int(coil_localq_capacity(queue)) / 2 - Int(coil_localq_len(queue))
        var share = min(available / workerCount + 1, room, 64)
        while share > 0, let word = popInject() {
            pushBack(word)
            share -= 1
        }
        return first
    }

    /// Steals half of a random sibling's queue (then tries the inject queue). Only searching
    /// workers steal, and at most half the workers search.
    func steal() -> UInt64? {
        let count = workerCount
        if !isSearching {
            // Even a lone worker becomes a searcher: the last searcher to park rechecks the
            // inject queue, which is what closes the race with a remote spawn (see Idle).
            guard withShared({ $0.idle.transitionToSearching() }) else { return nil }
            isSearching = true
        }
        guard count > 1 else { return popInject() }
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        let start = Int(rng % UInt64(count))
        var word: UInt64 = 0
        for offset in 0..<count {
            let victim = (start + offset) % count
            if victim == index { continue }
            if coil_localq_steal_into(siblingQueues[victim], queue, &word) {
                steals.store(steals.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
                return word
            }
        }
        return popInject()
    }

    /// A searching worker found work: stop searching; if it was the last searcher, wake another
    /// so that any further work still has someone looking for it.
    func transitionFromSearching() {
        guard isSearching else { return }
        isSearching = false
        withShared { shared in
            if shared.idle.transitionFromSearching() { shared.notifyParked() }
        }
    }

    @inline(__always)
    func withShared<R>(_ body: (Shared) -> R) -> R { sharedRef._withUnsafeGuaranteedRef(body) }

    // MARK: Running

    @inline(__always)
    func run(_ word: UInt64) {
        polls.store(polls.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        if RunQueueEntry.isJob(word) {
            // A Swift job is not a Coil task: it yields at its own awaits, and Coil futures it
            // awaits through `value()` must not see a spent budget (they would spin in the job).
            let budget = coil_context_budget()
            coil_context_set_budget(-1)
            withShared { RunQueueEntry.job(word).runSynchronously(on: $0.jobExecutor!) }
            coil_context_set_budget(budget)
        } else {
            RunQueueEntry.task(word).run()
        }
    }

    static let maxLIFOPolls = 3

    /// Runs `word` under a fresh cooperative budget, then up to `maxLIFOPolls` tasks it woke
    /// through the LIFO slot while the budget lasts; the rest go to the back of the queue.
    func runTask(_ word: UInt64) {
        coil_context_set_budget(budget)
        run(word)
        var lifoPolls = 0
        while lifo != 0 {
            let next = lifo
            lifo = 0
            if lifoPolls >= Self.maxLIFOPolls || coil_context_budget() <= 0 || withShared(\.isShuttingDown) {
                pushBack(next)
                break
            }
            lifoPolls += 1
            run(next)
        }
        coil_context_set_budget(-1)
    }

    // MARK: Parking

    /// Wakes the worker if it is parked, or makes its next park return at once.
    func unpark() {
        switch parkWord.pointee.exchange(Worker.notified, ordering: .acquiringAndReleasing) {
        case Worker.parkedInRing: wakeRing()
        case Worker.parkedOnFutex: _ = coil_futex_wake(UnsafeMutableRawPointer(parkWord), 1)
        default: break
        }
    }

    private func wakeRing() {
        guard let target = ringPointer else { return }
        // From another worker: a MSG_RING on that worker's own ring. From any other thread (or if
        // that fails): the eventfd.
        if let current = Worker.current, current !== self, let mine = current.ringPointer,
           coil_ring_prep_wake(mine, ringFD) == 0, coil_ring_submit(mine) >= 0 {
            return
        }
        _ = coil_ring_wake(target)
    }

    /// Waits until a wake-up, a completion, or `deadline` (a millisecond tick). Returns at once if
    /// an unpark came first.
    ///
    /// With operations in flight it waits in the ring (`io_uring_enter`), where their completions
    /// end the wait. With none, no completion can come, so it yields for a while
    /// (`spinBeforeSleeping`) and then waits on a futex instead: waking a
    /// thread blocked there is one system call for the waker and a short path in the kernel,
    /// where waking a ring waiter goes through the eventfd, a poll callback and the ring's task
    /// work, and then re-arms the eventfd read. (Tokio parks its workers that do not hold the I/O
    /// driver on a condition variable the same way.) Nothing can start an operation on this ring
    /// but its owner, so `inFlight` cannot change while it sleeps; other threads hand operations
    /// over through `IODriver.remote` and `unpark`, which wakes the futex.
    ///
    /// With operations in flight it also yields for a while before waiting in its ring, watching
    /// for completions. A worker runs out of work often, between short gaps of its own
    /// connections (more often with several workers, each with its own ring); sleeping through
    /// every gap costs a sleep and a wake-up each time (on a VM, a halted vCPU to bring back:
    /// about 25 µs, 40 µs of each round trip of a lone connection), and with more runnable
    /// threads than cores (a load client on the same machine) it also hands the CPU around
    /// through the scheduler (BENCHMARKS.md, "Yielding before a ring park").
    ///
    /// Every way out that takes an unpark also takes in what other threads handed the driver
    /// (`IODriver.remote`: operations to start, cancels, released records): the unpark may have
    /// been for that, and the caller goes back to parking when it finds no task to run.
    func park(deadline: UInt64?) {
        let onFutex = ringPointer == nil || io.inFlight == 0
        if parkWord.pointee.compareExchange(expected: Worker.notified, desired: Worker.running, ordering: .acquiring).exchanged {
            takeHandOvers()
            return
        }
        // Before yielding, what is prepared goes to the kernel (its completions can end the
        // yielding). A ring wait without yielding (`parkSpins` 0) submits it with the same
        // `io_uring_enter` it waits in: one system call per park, not two.
        if onFutex {
            submitPending()
            if spinBeforeSleeping(watching: nil) {
                takeHandOvers()
                return
            }
        } else if shared.config.parkSpins > 0, let ringPointer {
            submitPending()
            if spinBeforeSleeping(watching: ringPointer) {
                // Takes in hand-overs too (what they prepare goes with the next submission).
                reapCompletions()
                return
            }
        }
        let parkedAs = onFutex ? Worker.parkedOnFutex : Worker.parkedInRing
        guard parkWord.pointee.compareExchange(expected: Worker.running, desired: parkedAs, ordering: .acquiringAndReleasing).exchanged else {
            _ = parkWord.pointee.exchange(Worker.running, ordering: .acquiring)
            takeHandOvers()
            return
        }
        parks.store(parks.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        var timeout: Int64 = -1
        if let deadline {
            let now = MonotonicTime.nanoseconds()
            let at = deadline &* 1_000_000
            timeout = at > now ? Int64(at - now) : 0
        }
        if onFutex {
            // Returns on a wake, a timeout, a signal, or at once if `unpark` already moved the
            // word off `parkedOnFutex`; every case rechecks below.
            _ = coil_futex_wait(UnsafeMutableRawPointer(parkWord), Worker.parkedOnFutex, timeout)
        } else if let ringPointer {
            ringParks.store(ringParks.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
            _ = coil_ring_submit_and_wait(ringPointer, 1, timeout)
        }
        _ = parkWord.pointee.exchange(Worker.running, ordering: .acquiring)
        reapCompletions()
    }

    /// An unpark was taken without a wait: operations, cancels and records other threads handed
    /// the driver are taken in (the unpark may have been for them), and what is prepared goes to
    /// the kernel.
    private func takeHandOvers() {
        io.processRemote()
        submitPending()
    }

    /// Before sleeping, gives the CPU away up to `parkSpins` times (`sched_yield`), watching for
    /// an unpark and, given `ring`, for completions there (read from the ring's shared memory:
    /// no system call). The park word stays `running` meanwhile, so an unpark is one exchange
    /// with no system call, and the wake costs this thread no trip through the scheduler's sleep
    /// and wake-up (on a VM, no halted vCPU to bring back). Work handed over within a few
    /// microseconds of the worker going idle (a join, a reply, the next spawn, a completion) is
    /// picked up at once. Returns true if an unpark came (consumed) or the ring has completions.
    private func spinBeforeSleeping(watching ring: OpaquePointer?) -> Bool {
        let spins = shared.config.parkSpins
        guard spins > 0 else { return false }
        var completed = false
        for _ in 0..<spins {
            if let ring, coil_ring_has_events(ring) {
                completed = true
                break
            }
            if parkWord.pointee.load(ordering: .relaxed) == Worker.notified { break }
            sched_yield()
        }
        let notified = parkWord.pointee.compareExchange(expected: Worker.notified, desired: Worker.running, ordering: .acquiring).exchanged
        guard notified || completed else { return false }
        spinWakes.store(spinWakes.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        return true
    }

    // MARK: Timers

    /// Arms `entry` in this worker's wheel (called on the owner thread).
    func insertTimer(_ entry: TimerEntry) {
        if !wheel.insert(entry) { entry.fire() }
    }

    /// Hands a timer cancelled on another thread to this worker, which unlinks it.
    func disarmRemotely(_ entry: TimerEntry) {
        cancelledTimers.withLock { $0.append(entry) }
        hasCancelledTimers.store(true, ordering: .releasing)
        unpark()
    }

    /// Fires due timers, unlinks timers cancelled elsewhere, and (worker 0) adopts timers armed
    /// from outside the workers.
    func processTimers() {
        if index == 0 { shared.adoptRemoteTimers(into: self) }
        if hasCancelledTimers.load(ordering: .acquiring) {
            let cancelled = cancelledTimers.withLock { list -> [TimerEntry] in
                hasCancelledTimers.store(false, ordering: .relaxed)
                defer { list.removeAll(keepingCapacity: true) }
                return list
            }
            for entry in cancelled where entry.wheelID.load(ordering: .relaxed) == wheel.id { wheel.remove(entry) }
        }
        if wheel.count > 0 { wheel.advance(to: MonotonicTime.milliseconds()) }
    }

    /// Periodic work between tasks: completions and timers.
    func maintenance() {
        submitPending()
        reapCompletions()
        processTimers()
    }

    // MARK: Shutdown

    /// Drops every queued task reference (the tasks are already cancelled) and counts Swift jobs
    /// that can no longer run.
    func drainQueues() {
        if lifo != 0 {
            shared.discard(lifo)
            lifo = 0
        }
        while let word = popLocal() { shared.discard(word) }
    }
}
