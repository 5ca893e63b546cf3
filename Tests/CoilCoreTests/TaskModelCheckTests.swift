import CoilCore
import XCTest

/// Explores every interleaving of a few actors operating on one task, each step being one of the
/// pure transitions the harness uses (or one non-atomic access the harness makes), and checks the
/// protocol's invariants after every step and in every final state.
///
/// Actors mirror the harness code paths step for step:
/// - runner: takes a queued Notified, to-running, polls (ready / pending / pending after waking
///   itself / pending after handing a waker clone to a waker actor), to-idle, yield, cancel, complete;
/// - waker: once given a clone by a poll, wakes by value, or wakes by reference then drops;
/// - joiner: polls the JoinHandle 0-2 times (storing, keeping or replacing its waker), reads the
///   output when complete, then drops the handle;
/// - aborter: aborts through an AbortHandle, then drops it;
/// - shutdown: the scheduler pops the task from its owned list and shuts it down.
struct TaskModel {
    enum Kind: Hashable { case runner, waker, joiner, aborter, shutdown }

    enum Stage: Hashable { case future, output, cancelled, consumed }

    enum PC: Hashable {
        // runner
        case runnerIdle, runnerHasNotified, runnerPolling, runnerSelfWoke, runnerToIdle
        // the future asked for a wake after the poll (Context.wakeAfterPoll)
        case runnerToIdleNotified
        // completion (runner or shutdown), holding RUNNING
        case cancelling, completeStart, completeDropStage, completeWake, completeUnsetWaker, completeDropWaker
        case completeRelease, completeTerminal(UInt64)
        // completion of a task nobody can join: RUNNING held until one RMW publishes COMPLETE
        case completeDetachedDropStage, completeDetachedRelease, completeDetachedTerminal(UInt64)
        case deallocating, done
        // waker
        case wakerWaiting, wakerStart, wakerDrop
        // joiner
        case joinerStart(polls: Int), joinerUnset(polls: Int), joinerStore(polls: Int), joinerSet(polls: Int)
        case joinerDropSlotThenRead, joinerRead, joinerDropStart, joinerDropOutput(JoinHandleDrop)
        case joinerDropWaker(Bool), joinerRefDec
        // aborter
        case aborterStart, aborterDrop
        // shutdown
        case shutdownStart, shutdownPopped, shutdownDrop

        /// References this program counter holds.
        var heldReferences: UInt64 {
            switch self {
            case .runnerHasNotified, .runnerPolling, .runnerSelfWoke, .runnerToIdle, .runnerToIdleNotified,
                 .cancelling, .completeStart, .completeDropStage, .completeWake, .completeUnsetWaker,
                 .completeDropWaker, .completeRelease, .completeDetachedDropStage, .completeDetachedRelease:
                return 1
            case .completeTerminal(let count), .completeDetachedTerminal(let count): return count
            case .wakerStart, .wakerDrop, .aborterStart, .aborterDrop, .shutdownPopped, .shutdownDrop: return 1
            case .joinerStart, .joinerUnset, .joinerStore, .joinerSet, .joinerDropSlotThenRead, .joinerRead,
                 .joinerDropStart, .joinerDropOutput, .joinerDropWaker, .joinerRefDec:
                return 1
            case .runnerIdle, .deallocating, .done, .wakerWaiting, .shutdownStart: return 0
            }
        }
    }

    struct World: Hashable {
        var state: TaskState
        var pcs: [PC]
        var queue = 1  // the spawn's Notified
        var stage = Stage.future
        var slot = false
        var completerReadingSlot = false
        var runningOwner: Int? = nil
        var ownedInList = true
        var deallocs = 0
        var futureDrops = 0
        var outputReads = 0
        var outputDrops = 0
        var producedOutput = false
        var joinerAlive: Bool
        var joinerPending = false
        var wakeExpected = false
        var joinerWoken = false
        var polls = 0
        var selfWakes = 0

        var ghostReferences: UInt64 {
            pcs.reduce(UInt64(queue) + (ownedInList ? 1 : 0)) { $0 + $1.heldReferences }
        }
        var notifieds: Int { queue + pcs.filter { $0 == .runnerHasNotified }.count }
    }

    struct Violation: Error, CustomStringConvertible {
        let description: String
    }

    let kinds: [Kind]

    // MARK: Steps

    func check(_ condition: Bool, _ message: @autoclosure () -> String, _ world: World) throws {
        if !condition { throw Violation(description: "\(message()) in \(world.state) pcs \(world.pcs)") }
    }

    func decrement(_ world: inout World, me: Int, then next: PC) throws {
        try check(world.state.refCount >= 1, "reference count underflow", world)
        let (state, last) = TaskState.decrementRef(world.state)
        world.state = state
        world.pcs[me] = last ? .deallocating : next
    }

    /// Every successor of `world` where actor `me` takes its next step (several when it chooses).
    func successors(of world: World, actor me: Int) throws -> [World] {
        var w = world
        let pc = world.pcs[me]
        if pc != .runnerIdle && pc != .done && pc != .wakerWaiting && pc != .shutdownStart {
            try check(w.deallocs == 0, "\(kinds[me]) touched a deallocated task at \(pc)", w)
        }
        let idleNext: PC = kinds[me] == .runner ? .runnerIdle : .done
        switch pc {
        case .done, .wakerWaiting:
            return []

        // Runner
        case .runnerIdle:
            guard w.queue > 0 else { return [] }
            w.queue -= 1
            w.pcs[me] = .runnerHasNotified
        case .runnerHasNotified:
            let (state, outcome) = TaskState.transitionToRunning(w.state)
            w.state = state
            switch outcome {
            case .success:
                try check(w.runningOwner == nil, "two pollers", w)
                w.runningOwner = me
                w.pcs[me] = .runnerPolling
            case .cancelled:
                try check(w.runningOwner == nil, "two pollers", w)
                w.runningOwner = me
                w.pcs[me] = .cancelling
            case .failed: w.pcs[me] = .runnerIdle
            case .dealloc: w.pcs[me] = .deallocating
            }
        case .runnerPolling:
            try check(w.runningOwner == me && w.stage == .future && !w.state.isComplete, "poll without RUNNING or after completion", w)
            w.polls += 1
            var choices: [World] = []
            var ready = w
            ready.stage = .output
            ready.futureDrops += 1
            ready.producedOutput = true
            ready.pcs[me] = .completeStart
            choices.append(ready)
            var pending = w
            pending.pcs[me] = .runnerToIdle
            choices.append(pending)
            if w.selfWakes < 2 {
                var selfWake = w
                selfWake.selfWakes += 1
                selfWake.pcs[me] = .runnerSelfWoke
                choices.append(selfWake)
                var deferred = w
                deferred.selfWakes += 1
                deferred.pcs[me] = .runnerToIdleNotified
                choices.append(deferred)
            }
            if let waiting = w.pcs.firstIndex(of: .wakerWaiting) {
                var handOff = w  // the future stores a clone of its waker where a waker actor finds it
                handOff.state = TaskState.incrementRef(w.state).0
                handOff.pcs[waiting] = .wakerStart
                handOff.pcs[me] = .runnerToIdle
                choices.append(handOff)
            }
            return choices
        case .runnerSelfWoke:
            let (state, outcome) = TaskState.transitionToNotifiedByRef(w.state)
            try check(outcome == .doNothing, "a wake of a running task submitted it", w)
            w.state = state
            w.pcs[me] = .runnerToIdle
        case .runnerToIdle, .runnerToIdleNotified:
            let (state, outcome) = w.pcs[me] == .runnerToIdle
                ? TaskState.transitionToIdle(w.state) : TaskState.transitionToIdleNotified(w.state)
            try check(w.pcs[me] == .runnerToIdle || outcome == .okNotified || outcome == .cancelled,
                      "a deferred wake did not notify", w)
            w.state = state
            switch outcome {
            case .ok: w.runningOwner = nil; w.pcs[me] = .runnerIdle
            case .okNotified: w.runningOwner = nil; w.queue += 1; w.pcs[me] = .runnerIdle  // our reference is the Notified's
            case .okDealloc: w.runningOwner = nil; w.pcs[me] = .deallocating
            case .cancelled: w.pcs[me] = .cancelling
            }

        // Completion
        case .cancelling:
            try check(w.runningOwner == me, "cancel without RUNNING", w)
            try check(w.stage == .future, "cancelled a task whose future was gone: \(w.stage)", w)
            w.futureDrops += 1
            w.stage = .cancelled
            w.pcs[me] = .completeStart
        case .completeStart:
            try check(w.runningOwner == me, "complete without RUNNING", w)
            if !w.state.isJoinInterested {
                // The load that finds no JoinHandle (JOIN_INTEREST is never set again).
                w.pcs[me] = .completeDetachedDropStage
                return [w]
            }
            let (state, snapshot) = TaskState.transitionToComplete(w.state)
            w.state = state
            w.runningOwner = nil
            if snapshot.isJoinInterested && w.joinerPending { w.wakeExpected = true }
            if !snapshot.isJoinInterested {
                w.pcs[me] = .completeDropStage
            } else if snapshot.isJoinWakerSet {
                w.completerReadingSlot = true
                w.pcs[me] = .completeWake
            } else {
                w.pcs[me] = .completeRelease
            }
        case .completeDropStage:
            try check(!w.joinerAlive, "completer dropped the output while the JoinHandle lives", w)
            if w.stage == .output { w.outputDrops += 1 }
            w.stage = .consumed
            w.pcs[me] = .completeRelease
        case .completeWake:
            try check(w.slot, "JOIN_WAKER set with no waker stored", w)
            w.joinerWoken = true
            w.pcs[me] = .completeUnsetWaker
        case .completeUnsetWaker:
            let (state, interested) = TaskState.unsetWakerAfterComplete(w.state)
            w.state = state
            w.completerReadingSlot = false
            w.pcs[me] = interested ? .completeRelease : .completeDropWaker
        case .completeDropWaker:
            try check(!w.joinerAlive, "completer dropped the join waker while the JoinHandle lives", w)
            w.slot = false
            w.pcs[me] = .completeRelease
        case .completeRelease:
            let released = w.ownedInList
            w.ownedInList = false
            w.pcs[me] = .completeTerminal(released ? 2 : 1)
        case .completeTerminal(let count):
            try check(w.state.refCount >= count, "reference count underflow at terminal", w)
            let (state, last) = TaskState.transitionToTerminal(w.state, count: count)
            w.state = state
            w.pcs[me] = last ? .deallocating : idleNext
        case .completeDetachedDropStage:
            try check(w.runningOwner == me, "detached completion without RUNNING", w)
            try check(!w.joinerAlive, "completer dropped the output while the JoinHandle lives", w)
            if w.stage == .output { w.outputDrops += 1 }
            w.stage = .consumed
            w.pcs[me] = .completeDetachedRelease
        case .completeDetachedRelease:
            let released = w.ownedInList
            w.ownedInList = false
            w.pcs[me] = .completeDetachedTerminal(released ? 2 : 1)
        case .completeDetachedTerminal(let count):
            try check(w.state.refCount >= count, "reference count underflow at detached terminal", w)
            let (state, last) = TaskState.transitionToCompleteDetached(w.state, count: count)
            w.state = state
            w.runningOwner = nil
            w.pcs[me] = last ? .deallocating : idleNext
        case .deallocating:
            try check(w.state.refCount == 0, "dealloc with references left", w)
            try check(w.ghostReferences == 0, "dealloc while a holder remains", w)
            try check(w.state.isComplete, "dealloc before completion (rule 6)", w)
            w.deallocs += 1
            if w.stage == .output { w.outputDrops += 1 }
            w.stage = .consumed
            w.slot = false
            w.pcs[me] = idleNext

        // Waker
        case .wakerStart:
            var byValue = w
            let (state, outcome) = TaskState.transitionToNotifiedByValue(w.state)
            byValue.state = state
            switch outcome {
            case .submit: byValue.queue += 1; byValue.pcs[me] = .wakerDrop  // then its own reference
            case .doNothing: byValue.pcs[me] = .done
            case .dealloc: byValue.pcs[me] = .deallocating
            }
            var byRef = w
            let (refState, refOutcome) = TaskState.transitionToNotifiedByRef(w.state)
            byRef.state = refState
            if refOutcome == .submit { byRef.queue += 1 }
            byRef.pcs[me] = .wakerDrop
            return [byValue, byRef]
        case .wakerDrop:
            try decrement(&w, me: me, then: .done)

        // Joiner
        case .joinerStart(let polls):
            var choices: [World] = []
            var drop = w
            drop.pcs[me] = .joinerDropStart
            choices.append(drop)
            if polls < 2 {
                var poll = w
                poll.joinerPending = false
                if w.state.isComplete {
                    poll.pcs[me] = .joinerRead
                    choices.append(poll)
                } else if !w.state.isJoinWakerSet {
                    poll.pcs[me] = .joinerStore(polls: polls)
                    choices.append(poll)
                } else {
                    var same = poll  // same waker: nothing to do, still pending
                    same.joinerPending = true
                    same.pcs[me] = .joinerStart(polls: polls + 1)
                    choices.append(same)
                    poll.pcs[me] = .joinerUnset(polls: polls)
                    choices.append(poll)
                }
            }
            return choices
        case .joinerUnset(let polls):
            let (state, ok) = TaskState.unsetJoinWaker(w.state)
            w.state = state
            w.pcs[me] = ok ? .joinerStore(polls: polls) : .joinerRead
        case .joinerStore(let polls):
            try check(!w.completerReadingSlot && !w.state.isJoinWakerSet, "joiner wrote the waker while shared", w)
            w.slot = true
            w.pcs[me] = .joinerSet(polls: polls)
        case .joinerSet(let polls):
            let (state, ok) = TaskState.setJoinWaker(w.state)
            w.state = state
            if ok {
                w.joinerPending = true
                w.pcs[me] = .joinerStart(polls: polls + 1)
            } else {
                w.pcs[me] = .joinerDropSlotThenRead
            }
        case .joinerDropSlotThenRead:
            try check(!w.completerReadingSlot, "joiner dropped the waker while the completer reads it", w)
            w.slot = false
            w.pcs[me] = .joinerRead
        case .joinerRead:
            try check(w.state.isComplete && w.state.isJoinInterested, "output read before completion", w)
            try check(w.stage == .output || w.stage == .cancelled, "output read twice or missing: \(w.stage)", w)
            if w.stage == .output { w.outputReads += 1 }
            w.stage = .consumed
            w.pcs[me] = .joinerStart(polls: 2)
        case .joinerDropStart:
            if w.state == TaskState.initial {  // dropJoinHandleFast
                w.state = TaskState(bits: (TaskState.initial.bits - TaskState.refOne) & ~TaskState.joinInterest)
                w.joinerAlive = false
                w.pcs[me] = .done
            } else {
                let (state, cleanup) = TaskState.transitionToJoinHandleDropped(w.state)
                w.state = state
                w.joinerAlive = false
                w.pcs[me] = .joinerDropOutput(cleanup)
            }
        case .joinerDropOutput(let cleanup):
            if cleanup.dropOutput {
                if w.stage == .output { w.outputDrops += 1 }
                w.stage = .consumed
            }
            w.pcs[me] = .joinerDropWaker(cleanup.dropWaker)
        case .joinerDropWaker(let dropWaker):
            if dropWaker {
                try check(!w.completerReadingSlot, "handle dropped the waker while the completer reads it", w)
                w.slot = false
            }
            w.pcs[me] = .joinerRefDec
        case .joinerRefDec:
            try decrement(&w, me: me, then: .done)

        // Aborter
        case .aborterStart:
            let (state, submit) = TaskState.transitionToNotifiedAndCancel(w.state)
            w.state = state
            if submit { w.queue += 1 }
            w.pcs[me] = .aborterDrop
        case .aborterDrop:
            try decrement(&w, me: me, then: .done)

        // Shutdown
        case .shutdownStart:
            if w.ownedInList {
                w.ownedInList = false
                w.pcs[me] = .shutdownPopped
            } else {
                w.pcs[me] = .done  // already released by its completion
            }
        case .shutdownPopped:
            let (state, owns) = TaskState.transitionToShutdown(w.state)
            w.state = state
            if owns {
                try check(w.runningOwner == nil, "shutdown took RUNNING from a poller", w)
                w.runningOwner = me
                w.pcs[me] = .cancelling
            } else {
                w.pcs[me] = .shutdownDrop
            }
        case .shutdownDrop:
            try decrement(&w, me: me, then: .done)
        }
        return [w]
    }

    // MARK: Invariants

    func checkInvariants(_ w: World) throws {
        try check(w.deallocs <= 1, "deallocated twice", w)
        try check(w.futureDrops <= 1, "future dropped twice", w)
        try check(w.outputReads + w.outputDrops <= 1, "output read or dropped twice", w)
        try check(w.notifieds <= 1, "two Notifieds at once (rule 4)", w)
        if w.deallocs == 0 {
            try check(w.state.refCount == w.ghostReferences,
                      "reference count \(w.state.refCount) but \(w.ghostReferences) holders", w)
            try check(w.state.isRunning == (w.runningOwner != nil), "RUNNING without an owner", w)
            if w.state.isIdle {
                try check(w.state.isNotified == (w.notifieds == 1), "NOTIFIED disagrees with the queue", w)
            }
        } else {
            try check(w.ghostReferences == 0 && w.queue == 0, "a holder outlived the task", w)
        }
    }

    func checkFinal(_ w: World) throws {
        try check((w.ghostReferences == 0) == (w.deallocs == 1), "leaked or freed early", w)
        if w.deallocs == 1 {
            try check(w.futureDrops == 1, "future never dropped", w)
            if w.producedOutput { try check(w.outputReads + w.outputDrops == 1, "output leaked", w) }
        }
        if w.wakeExpected { try check(w.joinerWoken, "a registered join waker was never woken", w) }
    }

    /// Depth-first over every interleaving; returns the number of distinct states.
    static func explore(_ kinds: [Kind]) throws -> Int {
        let checker = TaskModel(kinds: kinds)
        var state = TaskState.initial
        let hasJoiner = kinds.contains(.joiner)
        if !hasJoiner {  // detached at spawn
            state = TaskState.transitionToJoinHandleDropped(state).0
            state = TaskState.decrementRef(state).0
        }
        for kind in kinds where kind == .aborter { state = TaskState.incrementRef(state).0 }
        let pcs: [PC] = kinds.map {
            switch $0 {
            case .runner: .runnerIdle
            case .waker: .wakerWaiting
            case .joiner: .joinerStart(polls: 0)
            case .aborter: .aborterStart
            case .shutdown: .shutdownStart
            }
        }
        let start = World(state: state, pcs: pcs, joinerAlive: hasJoiner)
        var visited: Set<World> = [start]
        var stack = [start]
        while let world = stack.popLast() {
            try checker.checkInvariants(world)
            var moved = false
            for actor in kinds.indices {
                for next in try checker.successors(of: world, actor: actor) {
                    moved = true
                    if visited.insert(next).inserted { stack.append(next) }
                }
            }
            if !moved { try checker.checkFinal(world) }
        }
        return visited.count
    }

}

final class TaskModelCheckTests: XCTestCase {
    typealias Kind = TaskModel.Kind

    func testEveryInterleavingOfTwoToThreeActorsBesideTheRunner() throws {
        let others: [Kind] = [.waker, .joiner, .aborter, .shutdown, .waker]
        var configurations: Set<[Kind]> = []
        for mask in 1..<(1 << others.count) where (1...3).contains(mask.nonzeroBitCount) {
            configurations.insert([.runner] + others.indices.filter { mask & (1 << $0) != 0 }.map { others[$0] })
        }
        var total = 0
        for kinds in configurations.sorted(by: { "\($0)" < "\($1)" }) {
            do {
                total += try TaskModel.explore(kinds)
            } catch {
                XCTFail("\(kinds): \(error)")
            }
        }
        XCTAssertGreaterThan(configurations.count, 20)
        XCTAssertGreaterThan(total, 1000, "the exploration is suspiciously small")
        print("model checker: \(configurations.count) configurations, \(total) distinct states")
    }

    func testTheCheckerCatchesABrokenTransition() throws {
        // Sanity check of the checker itself: a world where the reference count disagrees with the
        // holders must be reported.
        var world = TaskModel.World(state: TaskState.initial, pcs: [.runnerIdle], joinerAlive: true)
        world.queue = 2
        XCTAssertThrowsError(try TaskModel(kinds: [.runner]).checkInvariants(world))
    }
}
