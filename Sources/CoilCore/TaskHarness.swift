#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What one poll of a task's future came to.
@usableFromInline
enum PollOutcome {
    /// The future finished; its output is in the stage.
    case ready
    case pending
    /// Pending, and the future asked to be woken once the poll returns (`Context.wakeAfterPoll`).
    case wakeAfterPoll
}

/// What a task's stage storage holds (`TaskHeader.stageTag`).
@usableFromInline
enum StageTag: UInt8 {
    case future, output, cancelled, consumed
}

/// The typed operations of a task running future `F` (whose output is `Output`) on scheduler
/// `S`: the layout after the header, polling, completion, cancellation, the join protocol and
/// deallocation.
///
/// These class methods run unspecialized (a class's methods are called through its vtable), so
/// every type they touch must come from the class's own generic arguments: `Output` is one of
/// them (rather than `F.Output`, which would cost an associated-type lookup per use), and nothing
/// here builds a generic type such as `Result<Output, JoinError>` or `Poll<Output>`, whose
/// metadata an unspecialized caller looks up in a global hash table on every use. The typed work
/// that needs one happens in specialized code: `Future._pollStage` and `JoinHandle.poll`.
@usableFromInline
final class TypedTaskOps<F: Future & ~Copyable, Output, S: TaskScheduler>: TaskOps where F.Output == Output {

    // MARK: Layout

    @inlinable static func roundUp(_ offset: Int, _ alignment: Int) -> Int {
        (offset + alignment - 1) & ~(alignment - 1)
    }

    @inlinable static var schedulerOffset: Int {
        roundUp(MemoryLayout<TaskHeader>.size, MemoryLayout<S>.alignment)
    }
    @inlinable static var stageAlignment: Int { max(MemoryLayout<F>.alignment, MemoryLayout<Output>.alignment) }
    @inlinable static var stageOffset: Int { roundUp(schedulerOffset + MemoryLayout<S>.size, stageAlignment) }
    @inlinable static var joinWakerOffset: Int {
        roundUp(stageOffset + max(MemoryLayout<F>.size, MemoryLayout<Output>.size),
                MemoryLayout<RawWaker?>.alignment)
    }
    @inlinable static var size: Int { joinWakerOffset + MemoryLayout<RawWaker?>.size }
    @inlinable static var alignment: Int {
        max(MemoryLayout<TaskHeader>.alignment, MemoryLayout<S>.alignment, stageAlignment,
            MemoryLayout<RawWaker?>.alignment)
    }

    @inlinable static func scheduler(_ task: RawTask) -> UnsafeMutablePointer<S> {
        (task.pointer + schedulerOffset).assumingMemoryBound(to: S.self)
    }
    // The typed parts, at the offsets the header records (see Layout in Task.swift).
    @inlinable static func stage(_ task: RawTask) -> UnsafeMutableRawPointer {
        task.pointer + Int(task.header.pointee.stageOffset)
    }
    @inlinable static func future(_ task: RawTask) -> UnsafeMutablePointer<F> {
        stage(task).assumingMemoryBound(to: F.self)
    }
    @inlinable static func output(_ task: RawTask) -> UnsafeMutablePointer<Output> {
        stage(task).assumingMemoryBound(to: Output.self)
    }
    @inlinable static func joinWaker(_ task: RawTask) -> UnsafeMutablePointer<RawWaker?> {
        (task.pointer + Int(task.header.pointee.joinWakerOffset)).assumingMemoryBound(to: RawWaker?.self)
    }

    /// Allocates and initialises a task in the initial state (three references: rule 1).
    ///
    /// The memory comes from `malloc` (or `posix_memalign` when the task needs more than
    /// malloc's 16-byte alignment) and goes back with `free`. Not through
    /// `UnsafeMutableRawPointer.allocate(byteCount:alignment:)`: for a small alignment it asks
    /// the Swift runtime for "default" alignment, which on Linux is served by `posix_memalign`,
    /// about 70 instructions more per spawn (cachegrind, ct chained_spawn).
    @inlinable
    static func allocate(future: consuming F, scheduler: S) -> RawTask {
        precondition(stageOffset <= Int(UInt16.max) && joinWakerOffset <= Int(UInt32.max), "task layout too large")
        var memory: UnsafeMutableRawPointer?
        if alignment <= 2 * MemoryLayout<Int>.size {
            memory = malloc(size)
        } else if posix_memalign(&memory, alignment, size) != 0 {
            memory = nil
        }
        guard let pointer = memory else { fatalError("out of memory allocating a task of \(size) bytes") }
        let task = RawTask(pointer)
        pointer.bindMemory(to: TaskHeader.self, capacity: 1)
            .initialize(to: TaskHeader(ops: TypedTaskOps<F, Output, S>.self, id: TaskID.next(),
                                       stageOffset: stageOffset, joinWakerOffset: joinWakerOffset))
        (pointer + schedulerOffset).bindMemory(to: S.self, capacity: 1).initialize(to: scheduler)
        (pointer + stageOffset).bindMemory(to: F.self, capacity: 1).initialize(to: future)
        (pointer + joinWakerOffset).bindMemory(to: RawWaker?.self, capacity: 1).initialize(to: nil)
        return task
    }

    // MARK: Poll

    /// Runs one poll on behalf of a Notified, whose reference this call consumes.
    @inlinable
    override class func poll(_ task: RawTask) {
        switch task.updateState(TaskState.transitionToRunning) {
        case .success:
            let outcome = pollFuture(task)
            if outcome == .ready {
                complete(task)
                return
            }
            // A wake the future left for after the poll (`Context.wakeAfterPoll`) is folded into
            // this transition: running -> notified, no transition of its own.
            let toIdle = outcome == .pending
                ? task.updateState(TaskState.transitionToIdle) : task.updateState(TaskState.transitionToIdleNotified)
            switch toIdle {
            case .ok:
                return
            case .okNotified:
                // Woken while running: this poll's reference becomes the new Notified's (rule 4).
                S._yieldNow(at: scheduler(task), Notified(unsafeRaw: task))
            case .okDealloc:
                dealloc(task)
            case .cancelled:
                cancel(task)
                complete(task)
            }
        case .cancelled:
            cancel(task)
            complete(task)
        case .failed:
            return
        case .dealloc:
            dealloc(task)
        }
    }

    /// Polls the future once; on ready, replaces it with its output.
    @inlinable
    static func pollFuture(_ task: RawTask) -> PollOutcome {
        // SAFETY: rule 2, the caller holds RUNNING.
        precondition(task.header.pointee.stageTag == .future, "task polled after completion")
        var context = Context(taskWaker: task.borrowedWaker)
        // Through the future's own (specialized) witness: see Future._pollStage.
        guard F._pollStage(stage(task), &context) else {
            return context.wakeRequestedAfterPoll ? .wakeAfterPoll : .pending
        }
        task.header.pointee.stageTag = .output
        return .ready
    }

    /// Drops the future (dropping is cancelling) and records the cancellation.
    @inlinable
    static func cancel(_ task: RawTask) {
        // SAFETY: rule 2, the caller holds RUNNING.
        dropStage(task)
        task.header.pointee.stageTag = .cancelled
    }

    /// Deinitialises whatever the stage holds. (A trivial type needs nothing; checking first
    /// saves this unspecialized code a call into the runtime's generic destroy.)
    @inlinable
    static func dropStage(_ task: RawTask) {
        switch task.header.pointee.stageTag {
        case .future: if !_isPOD(F.self) { future(task).deinitialize(count: 1) }
        case .output: if !_isPOD(Output.self) { output(task).deinitialize(count: 1) }
        case .cancelled, .consumed: break
        }
        task.header.pointee.stageTag = .consumed
    }

    @inlinable
    static func dropJoinWaker(_ task: RawTask) {
        if let waker = joinWaker(task).pointee {
            joinWaker(task).pointee = nil
            waker.vtable.pointee.drop(waker.data)
        }
    }

    /// The output (or cancellation) is stored and RUNNING is held with one reference: publish
    /// COMPLETE, wake the joiner, leave the owned list and give up the references.
    @inlinable
    static func complete(_ task: RawTask) {
        if !task.state.isJoinInterested {
            // Nobody can join (JOIN_INTEREST is never set again): the output is ours (rule 3)
            // even before COMPLETE, and no join waker will be read. One RMW at the end publishes
            // COMPLETE and drops the references (one less than the general path below).
            dropStage(task)
            let released: UInt64 = S._release(at: scheduler(task), task) ? 2 : 1
            if task.updateState({ TaskState.transitionToCompleteDetached($0, count: released) }) {
                dealloc(task)
            }
            return
        }
        let snapshot = task.updateState(TaskState.transitionToComplete)
        if !snapshot.isJoinInterested {
            // SAFETY: rule 3, nobody will read the output; it is ours to drop.
            dropStage(task)
        } else if snapshot.isJoinWakerSet {
            // SAFETY: rule 5, the field is set and read-only until we clear JOIN_WAKER.
            let waker = joinWaker(task).pointee!
            waker.vtable.pointee.wakeByRef(waker.data)
            if !task.updateState(TaskState.unsetWakerAfterComplete) {
                dropJoinWaker(task)  // rule 5: the JoinHandle is gone, the waker is ours
            }
        }
        let released: UInt64 = S._release(at: scheduler(task), task) ? 2 : 1
        if task.updateState({ TaskState.transitionToTerminal($0, count: released) }) {
            dealloc(task)
        }
    }

    // MARK: Scheduling, shutdown, deallocation

    /// Hands one already-counted Notified reference to the scheduler.
    @inlinable
    override class func schedule(_ task: RawTask) {
        S._schedule(at: scheduler(task), Notified(unsafeRaw: task))
    }

    /// Shutdown on behalf of the owned list, whose reference this call consumes.
    @inlinable
    override class func shutdown(_ task: RawTask) {
        if task.updateState(TaskState.transitionToShutdown) {
            cancel(task)
            complete(task)
        } else {
            task.dropReference()  // a poller runs it and will see CANCELLED
        }
    }

    @inlinable
    override class func dealloc(_ task: RawTask) {
        // SAFETY: rule 1, the reference count is zero: nobody else can reach the task.
        assert(task.state.refCount == 0 && task.state.isComplete, "dealloc of a live task: \(task.state)")
        dropStage(task)
        dropJoinWaker(task)
        if !_isPOD(S.self) { scheduler(task).deinitialize(count: 1) }
        task.header.deinitialize(count: 1)
        free(task.pointer)  // malloc'd or posix_memalign'd by `allocate`
    }

    // MARK: Join

    /// If the task has completed, hands its output over: `.output` points at it (the caller moves
    /// it out; the stage is marked consumed), `.cancelled` says there is none. Otherwise registers
    /// `waker` as the join waker and returns `.pending`.
    @inlinable
    override class func takeOutput(_ task: RawTask, waker: RawWaker) -> JoinRead {
        guard canReadOutput(task, waker: waker) else { return .pending }
        // SAFETY: rule 3, COMPLETE with JOIN_INTEREST held by the caller: the stage is ours.
        let tag = task.header.pointee.stageTag
        task.header.pointee.stageTag = .consumed
        switch tag {
        case .output: return .output(stage(task))
        case .cancelled: return .cancelled
        case .future, .consumed: preconditionFailure("JoinHandle polled after it returned its result")
        }
    }

    @inlinable
    static func canReadOutput(_ task: RawTask, waker: RawWaker) -> Bool {
        let snapshot = task.state
        if snapshot.isComplete { return true }
        if snapshot.isJoinWakerSet {
            // SAFETY: rule 5, set means readable.
            if joinWaker(task).pointee == waker { return false }
            if !task.updateState(TaskState.unsetJoinWaker) { return true }  // completed meanwhile
        }
        return storeJoinWaker(task, waker: waker)
    }

    /// Stores a clone of `waker` and publishes it. Returns true if the task completed first.
    @inlinable
    static func storeJoinWaker(_ task: RawTask, waker: RawWaker) -> Bool {
        // SAFETY: rule 5, JOIN_WAKER is clear and the task was not complete: the field is ours.
        dropJoinWaker(task)
        joinWaker(task).pointee = RawWaker(data: waker.vtable.pointee.clone(waker.data), vtable: waker.vtable)
        if task.updateState(TaskState.setJoinWaker) { return false }
        dropJoinWaker(task)  // completed: the field is still ours (rule 5)
        return true
    }

    /// The JoinHandle goes away without the fast path: clean up what rules 3 and 5 give it, then
    /// drop its reference.
    @inlinable
    override class func dropJoinHandleSlow(_ task: RawTask) {
        let cleanup = task.updateState(TaskState.transitionToJoinHandleDropped)
        if cleanup.dropOutput { dropStage(task) }
        if cleanup.dropWaker { dropJoinWaker(task) }
        task.dropReference()
    }
}
