import Synchronization

/// Which workers are parked and how many are hunting for work, so that a new task wakes a worker
/// only when nobody is already searching, and at most half the workers search at once.
///
/// `state` packs `unparked << 16 | searching`. Sleepers (parked worker indices) are under a lock
/// that only parking and waking take. The no-lost-wake-up argument:
/// - a producer publishes its task, then reads `state`; it wakes a sleeper when nobody searches;
/// - a searching worker that gives up and parks decrements `searching`; if it was the last
///   searcher it looks at every queue once more (`Shared.notifyIfWorkPending`) after that
///   decrement, so a task published while it searched is either seen by it or by the producer.
/// All accesses to `state` are sequentially consistent, which is what makes the two reads above
/// see at least one of the two writes.
final class Idle: @unchecked Sendable {
    // SAFETY: `sleepers` is behind its lock; `state` is atomic.
    private static let unparkedOne = 1 << 16
    private static let searchingMask = (1 << 16) - 1

    private let state: Atomic<Int>
    private let sleepers: ConditionLock<[Int]>
    let workerCount: Int

    init(workerCount: Int) {
        self.workerCount = workerCount
        state = Atomic(workerCount << 16)
        sleepers = ConditionLock([Int]())
        sleepers.withLock { $0.reserveCapacity(workerCount) }
    }

    private func shouldWake() -> Bool {
        let s = state.load(ordering: .sequentiallyConsistent)
        return s & Self.searchingMask == 0 && s >> 16 < workerCount
    }

    /// A sleeper to wake because new work was published, already counted as unparked and
    /// searching; nil when a searcher exists or nobody sleeps.
    func workerToNotify() -> Int? {
        guard shouldWake() else { return nil }
        return sleepers.withLock { sleepers -> Int? in
            guard shouldWake(), let index = sleepers.popLast() else { return nil }
            state.add(Self.unparkedOne | 1, ordering: .sequentiallyConsistent)
            return index
        }
    }

    /// Becomes a searcher unless half the workers already are.
    func transitionToSearching() -> Bool {
        let s = state.load(ordering: .sequentiallyConsistent)
        if 2 * (s & Self.searchingMask) >= workerCount { return false }
        state.add(1, ordering: .sequentiallyConsistent)
        return true
    }

    /// Stops searching; returns whether this was the last searcher.
    func transitionFromSearching() -> Bool {
        let previous = state.subtract(1, ordering: .sequentiallyConsistent).oldValue
        return previous & Self.searchingMask == 1
    }

    /// Records worker `index` as parked; returns whether it was the last searcher.
    func transitionToParked(_ index: Int, searching: Bool) -> Bool {
        sleepers.withLock { sleepers -> Bool in
            let decrement = searching ? Self.unparkedOne | 1 : Self.unparkedOne
            let previous = state.subtract(decrement, ordering: .sequentiallyConsistent).oldValue
            sleepers.append(index)
            return searching && previous & Self.searchingMask == 1
        }
    }

    /// Worker `index` woke by itself (a timer or completion gave it work): count it unparked.
    /// Returns false if a notifier had already picked it, which counted it as unparked *and
    /// searching*: the worker must then act as a searcher (and leave searching when it finds
    /// work), or the searching count would stay raised and block every later notification.
    func unparkWorker(_ index: Int) -> Bool {
        sleepers.withLock { sleepers -> Bool in
            guard let position = sleepers.firstIndex(of: index) else { return false }
            sleepers.remove(at: position)
            state.add(Self.unparkedOne, ordering: .sequentiallyConsistent)
            return true
        }
    }

    func isParked(_ index: Int) -> Bool { sleepers.withLock { $0.contains(index) } }
}
