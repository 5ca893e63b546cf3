import CoilCore

/// Interprets a byte string as operations by several actors (scheduler, wakers, joiner, aborter,
/// shutdown) on up to four real tasks with a deterministic scheduler, and traps on any broken
/// invariant: every task deallocated exactly once and only when unreferenced, every future and
/// output dropped exactly once, join output read at most once, a registered join waker woken by
/// completion, every waker clone dropped exactly once.
///
/// Byte layout: low four bits = operation, next two = task slot, top two = unused.
public final class TaskProgram: @unchecked Sendable {
    // SAFETY: a program runs on one thread; the scheduler conformance only needs Sendable to exist.

    public static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        let program = TaskProgram()
        for byte in bytes { program.step(byte) }
        program.finish()
    }

    // MARK: State

    var queue: [RawTask] = []
    let owned = OwnedTasks()
    var slots: [Slot] = (0..<4).map { _ in Slot() }
    let joinWakers = [CountedWaker(), CountedWaker()]
    var spawned = 0, deallocs = 0, futureDrops = 0, outputsMade = 0, outputDrops = 0

    final class Slot {
        var spawned = false
        var control: Control? = nil
        var handle: JoinHandle<Output>? = nil
        var hasHandle = false
        var joinDone = false
        var abort: AbortHandle? = nil
        var held: [RawWaker] = []  // owned waker references, rebuilt into Wakers to use
        var registered: (waker: Int, wakesAtRegistration: Int)? = nil
    }

    /// What a task's future obeys: pending until `ready`, optionally waking itself on every poll.
    final class Control {
        var ready = false
        var selfWake = false
        var selfWakes = 0
        var stored: RawWaker? = nil  // one owned reference, the future's registered waker
        var futureAlive = true
    }

    final class Output {
        unowned let program: TaskProgram
        init(_ program: TaskProgram) { self.program = program; program.outputsMade += 1 }
        deinit { program.outputDrops += 1 }
    }

    final class DeallocToken: Sendable {
        nonisolated(unsafe) unowned let program: TaskProgram
        init(_ program: TaskProgram) { self.program = program }
        deinit { program.deallocs += 1 }
    }

    struct Scheduler: TaskScheduler {
        nonisolated(unsafe) unowned let program: TaskProgram
        let token: DeallocToken
        func schedule(_ task: consuming Notified) { program.queue.append(task.intoRaw()) }
        func release(_ task: RawTask) -> Bool { program.owned.remove(task) }
    }

    struct TaskFuture: Future, ~Copyable {
        let control: Control
        unowned let program: TaskProgram

        mutating func poll(_ context: inout Context) -> Poll<Output> {
            precondition(control.futureAlive, "polled a dropped future")
            if control.ready { return .ready(Output(program)) }
            if let previous = control.stored {
                if previous == context.waker.rawWaker { return .pending }
                control.stored = nil
                _ = Waker(unsafeRaw: previous)  // drop the replaced waker
            }
            control.stored = context.waker.clone().intoRaw()
            if control.selfWake {
                // Alternately a wake during the poll and one left for after it (wakeAfterPoll).
                control.selfWakes += 1
                if control.selfWakes % 2 == 0 { context.wakeAfterPoll() } else { context.waker.wakeByRef() }
            }
            return .pending
        }

        deinit {
            control.futureAlive = false
            program.futureDrops += 1
        }
    }

    // MARK: Operations

    func step(_ byte: UInt8) {
        let slot = slots[Int(byte >> 4) & 3]
        switch byte & 0x0F {
        case 0: spawn(slot)
        case 1: runOne()
        case 2: for _ in 0..<16 where runOne() {}
        case 3:  // open the gate: ready, and wake the stored waker by value
            guard let control = slot.control else { return }
            control.ready = true
            if let stored = control.stored.take() { Waker(unsafeRaw: stored).wake() }
        case 4:  // spurious wake by reference through a clone
            guard let stored = slot.control?.stored else { return }
            let waker = Waker(unsafeRaw: stored)
            waker.clone().wakeByRef()
            _ = waker.intoRaw()  // still owned by the control
        case 5:  // another holder clones the waker
            guard let stored = slot.control?.stored else { return }
            let waker = Waker(unsafeRaw: stored)
            slot.held.append(waker.clone().intoRaw())
            _ = waker.intoRaw()
        case 6: if let raw = slot.held.popLast() { _ = Waker(unsafeRaw: raw) }  // drop a held waker
        case 7: if let raw = slot.held.popLast() { Waker(unsafeRaw: raw).wake() }  // wake by value
        case 8: if slot.hasHandle { slot.handle!.abort() }
        case 9: if slot.abort == nil, slot.hasHandle { slot.abort = slot.handle!.makeAbortHandle() }
        case 10:
            slot.abort?.abort()
            slot.abort = nil
        case 11: pollJoin(slot, waker: 0)
        case 12: pollJoin(slot, waker: 1)
        case 13:
            slot.handle = nil
            slot.hasHandle = false
            slot.registered = nil
        case 14: slot.control?.selfWake.toggle()
        default: owned.closeAndShutdownAll()
        }
        checkJoinWakes()
    }

    func spawn(_ slot: Slot) {
        guard !slot.spawned else { return }
        slot.spawned = true
        let control = Control()
        slot.control = control
        spawned += 1
        var bound = owned.bind(TaskFuture(control: control, program: self),
                               scheduler: Scheduler(program: self, token: DeallocToken(self)))
        if let notified = bound.notified.take() { queue.append(notified.intoRaw()) }
        slot.handle = .some(bound.handle)
        slot.hasHandle = true
    }

    @discardableResult
    func runOne() -> Bool {
        guard !queue.isEmpty else { return false }
        Notified(unsafeRaw: queue.removeFirst()).run()
        return true
    }

    func pollJoin(_ slot: Slot, waker index: Int) {
        guard slot.hasHandle, !slot.joinDone else { return }
        let counted = joinWakers[index]
        let result = Context.withWaker(counted.makeWaker()) { slot.handle!.poll(&$0) }
        switch result {
        case .pending:
            slot.registered = (index, counted.wakes)
        case .ready(let outcome):
            slot.joinDone = true
            slot.registered = nil
            if case .failure(let error) = outcome { precondition(error.isCancelled, "join error that is not a cancellation") }
        }
    }

    /// A JoinHandle that registered a waker and then saw its task finish must have been woken.
    func checkJoinWakes() {
        for slot in slots {
            // The future is dropped inside the same operation that completes the task, so between
            // operations "future gone" means "finished" (reading `handle!.isFinished` from a class
            // property would consume the noncopyable handle).
            guard let registered = slot.registered, slot.hasHandle, slot.control?.futureAlive == false else { continue }
            precondition(joinWakers[registered.waker].wakes > registered.wakesAtRegistration,
                         "task finished without waking its JoinHandle's waker")
            slot.registered = nil
        }
    }

    func finish() {
        for slot in slots {
            slot.handle = nil
            slot.hasHandle = false
            slot.abort = nil
            while let raw = slot.held.popLast() { _ = Waker(unsafeRaw: raw) }
        }
        while runOne() {}
        owned.closeAndShutdownAll()
        while runOne() {}
        for slot in slots {
            if let stored = slot.control?.stored.take() { _ = Waker(unsafeRaw: stored) }
        }
        precondition(queue.isEmpty, "Notifieds left behind")
        precondition(owned.count == 0, "owned tasks left behind")
        precondition(deallocs == spawned, "\(spawned) tasks spawned, \(deallocs) deallocated")
        precondition(futureDrops == spawned, "\(spawned) futures, \(futureDrops) dropped")
        precondition(outputDrops == outputsMade, "\(outputsMade) outputs made, \(outputDrops) dropped")
        for waker in joinWakers {
            precondition(waker.clones == waker.drops, "join waker clones \(waker.clones) drops \(waker.drops)")
        }
    }
}

/// A waker over a counter: the number of clones, wakes and drops, with no reference counting of
/// its own (the program outlives every clone, which `finish()` checks).
final class CountedWaker {
    var clones = 0, wakes = 0, drops = 0

    nonisolated(unsafe) static let vtable: UnsafePointer<WakerVTable> = WakerVTable.makeStatic(WakerVTable(
        clone: { data in
            Unmanaged<CountedWaker>.fromOpaque(data!).takeUnretainedValue().clones += 1
            return data
        },
        wake: { data in
            let me = Unmanaged<CountedWaker>.fromOpaque(data!).takeUnretainedValue()
            me.wakes += 1
            me.drops += 1
        },
        wakeByRef: { data in Unmanaged<CountedWaker>.fromOpaque(data!).takeUnretainedValue().wakes += 1 },
        drop: { data in Unmanaged<CountedWaker>.fromOpaque(data!).takeUnretainedValue().drops += 1 }))

    /// A waker that the caller owns; counted as a clone so that clones == drops at the end.
    func makeWaker() -> Waker {
        clones += 1
        return Waker(unsafeRaw: RawWaker(data: UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()),
                                         vtable: CountedWaker.vtable))
    }
}
