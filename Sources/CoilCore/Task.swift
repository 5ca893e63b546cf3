import CCoilCore
import Synchronization

// MARK: - Layout
//
// A task is one allocation (see TaskState.swift for the state protocol):
//
//   offset 0                    TaskHeader (55 bytes, stride 56): state, ops, queue link, owned
//                               links, id, the two offsets below, and the stage tag (which of
//                               future / output / cancellation / nothing the stage holds)
//   schedulerOffset             the scheduler value S (one reference for a class scheduler)
//   stageOffset                 the future, then in the same storage its output (a union)
//   joinWakerOffset             the join waker, `RawWaker?` (nil: none)
//
// The header is type-erased: `ops` is the class metatype of `TypedTaskOps<F, Output, S>`, whose
// class methods know the layout after the header. A class metatype is one word and needs no
// allocation or reference counting. Those class methods run unspecialized (through the vtable),
// where computing an offset from the types' sizes and alignments means walking their metadata on
// every use; so the allocating (specialized) code writes the two offsets it computed into the
// header, and the typed operations read them back with one load.

/// A task's identity, unique in the process.
public struct TaskID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    /// A new process-unique ID (from the calling thread's block: coil_task_id.h).
    @inlinable static func next() -> TaskID {
        TaskID(rawValue: coil_task_id_next())
    }

    @inlinable init(rawValue: UInt64) { self.rawValue = rawValue }

    /// `task#<n>`.
    public var description: String { "task#\(rawValue)" }
}

/// The type-erased head of every task allocation.
@usableFromInline
struct TaskHeader: ~Copyable {
    @usableFromInline let state: TaskStateCell
    @usableFromInline let ops: TaskOps.Type
    /// Intrusive link for a scheduler's run queue; only its queue touches it (rule 4: one Notified).
    @usableFromInline var queueNext: UnsafeMutableRawPointer?
    /// Intrusive links for the owned list; only touched under that list's lock.
    @usableFromInline var ownedPrev: UnsafeMutableRawPointer?
    @usableFromInline var ownedNext: UnsafeMutableRawPointer?
    @usableFromInline let id: TaskID
    /// Where the join waker and the stage start (see Layout).
    @usableFromInline let joinWakerOffset: UInt32
    @usableFromInline let stageOffset: UInt16
    /// What the stage holds. Only the RUNNING holder changes it before COMPLETE (rule 2); after
    /// COMPLETE, whoever rule 3 names.
    @usableFromInline var stageTag: StageTag

    @inlinable
    init(ops: TaskOps.Type, id: TaskID, stageOffset: Int, joinWakerOffset: Int) {
        state = TaskStateCell(.initial)
        self.ops = ops
        queueNext = nil
        ownedPrev = nil
        ownedNext = nil
        self.id = id
        self.joinWakerOffset = UInt32(joinWakerOffset)
        self.stageOffset = UInt16(stageOffset)
        stageTag = .future
    }
}

/// An unowned pointer to a task. Holding one says nothing about the task being alive: the typed
/// handles (`Notified`, `OwnedTask`, `JoinHandle`, `AbortHandle`, `Waker`) are what hold references.
/// Schedulers use it to store a `Notified` in a queue of machine words (`Notified.intoRaw()`).
public struct RawTask: Hashable, @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer

    /// The task at `pointer`, which must be the address of a task allocation (from `intoRaw()`).
    @inlinable public init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }

    @inlinable var header: UnsafeMutablePointer<TaskHeader> { pointer.assumingMemoryBound(to: TaskHeader.self) }

    /// A snapshot of the state word (for metrics, tests and assertions).
    @inlinable public var state: TaskState { header.pointee.state.load() }
    @inlinable public var id: TaskID { header.pointee.id }
    @inlinable var ops: TaskOps.Type { header.pointee.ops }

    /// Applies a pure transition to the state word atomically (TaskStateCell.update).
    @inlinable func updateState<Outcome>(_ transition: (TaskState) -> (TaskState, Outcome)) -> Outcome {
        header.pointee.state.update(transition)
    }

    /// The intrusive run-queue link. Only the queue holding the task's `Notified` may use it (rule 4).
    @inlinable public var queueNext: RawTask? {
        get { header.pointee.queueNext.map(RawTask.init) }
        nonmutating set { header.pointee.queueNext = newValue?.pointer }
    }

    @inlinable var ownedPrev: UnsafeMutableRawPointer? {
        get { header.pointee.ownedPrev }
        nonmutating set { header.pointee.ownedPrev = newValue }
    }

    @inlinable var ownedNext: UnsafeMutableRawPointer? {
        get { header.pointee.ownedNext }
        nonmutating set { header.pointee.ownedNext = newValue }
    }

    /// Gives up one reference; deallocates on the last (rule 1).
    @inlinable func dropReference() {
        if header.pointee.state.decrementRef() { ops.dealloc(self) }
    }
}

/// The per-(future, scheduler) operations, dispatched through the class metatype in the header.
/// Never instantiated; `TypedTaskOps` overrides every method.
@usableFromInline
class TaskOps {
    @usableFromInline class func poll(_ task: RawTask) { fatalError("abstract") }
    @usableFromInline class func schedule(_ task: RawTask) { fatalError("abstract") }
    @usableFromInline class func dealloc(_ task: RawTask) { fatalError("abstract") }
    @usableFromInline class func shutdown(_ task: RawTask) { fatalError("abstract") }
    @usableFromInline class func dropJoinHandleSlow(_ task: RawTask) { fatalError("abstract") }
    @usableFromInline class func takeOutput(_ task: RawTask, waker: RawWaker) -> JoinRead { fatalError("abstract") }
}

/// What a JoinHandle's poll finds (`TaskOps.takeOutput`).
@usableFromInline
enum JoinRead {
    /// Not complete: the join waker is registered.
    case pending
    /// Complete with an output at this address, which the caller now owns and must move out.
    case output(UnsafeMutableRawPointer)
    /// Complete without an output.
    case cancelled
}

// MARK: - The task's waker
//
// data = the task pointer; the reference a waker owns is one count in the state word.

// The functions of the task waker's vtable, which lives in static storage in CCoilCore
// (coil_core_vtables.h says why).

@_cdecl("coil__task_waker_clone")
func taskWakerClone(_ data: UnsafeRawPointer?) -> UnsafeRawPointer? {
    RawTask(UnsafeMutableRawPointer(mutating: data!)).header.pointee.state.incrementRef()
    return data
}

@_cdecl("coil__task_waker_wake")
func taskWakerWake(_ data: UnsafeRawPointer?) {
    let task = RawTask(UnsafeMutableRawPointer(mutating: data!))
    switch task.updateState(TaskState.transitionToNotifiedByValue) {
    case .doNothing: break
    case .submit:
        task.ops.schedule(task)  // the Notified's new reference
        task.dropReference()  // the waker's, only now that `schedule` has returned
    case .dealloc: task.ops.dealloc(task)
    }
}

@_cdecl("coil__task_waker_wake_by_ref")
func taskWakerWakeByRef(_ data: UnsafeRawPointer?) {
    let task = RawTask(UnsafeMutableRawPointer(mutating: data!))
    switch task.updateState(TaskState.transitionToNotifiedByRef) {
    case .doNothing, .dealloc: break
    case .submit: task.ops.schedule(task)  // a new reference was taken for the Notified
    }
}

@_cdecl("coil__task_waker_drop")
func taskWakerDrop(_ data: UnsafeRawPointer?) {
    RawTask(UnsafeMutableRawPointer(mutating: data!)).dropReference()
}

/// The task waker's vtable.
@inlinable var taskWakerVTable: UnsafePointer<WakerVTable> {
    coil_task_waker_vtable_address().assumingMemoryBound(to: WakerVTable.self)
}

extension RawTask {
    /// The raw form of this task's waker, lent to the future during a poll without a reference.
    @inlinable var borrowedWaker: RawWaker { RawWaker(data: UnsafeRawPointer(pointer), vtable: taskWakerVTable) }
}
