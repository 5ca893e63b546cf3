import Synchronization

/// A hierarchical timing wheel with millisecond resolution: six levels of 64 slots, level `n`'s
/// slots each spanning 64^n milliseconds, so it covers 64^6 ms (about 2.2 years; later deadlines
/// are clamped to its range and re-armed when they come round).
///
/// An entry sits in the level of the most significant 6-bit digit in which its deadline differs
/// from `elapsed`, in the slot that digit names. Advancing takes the earliest occupied slot that
/// is due: entries whose deadline has come fire; the others drop to a lower level. Insert and
/// remove are O(1); finding the next deadline is six bit scans.
///
/// One wheel per worker; only the owning thread touches it.
final class TimerWheel {
    static let levels = 6
    static let slotBits = 6
    static let slotsPerLevel = 1 << slotBits
    static let maxRange: UInt64 = 1 << (UInt64(slotBits) * UInt64(levels))

    /// Every deadline up to and including this tick has been processed.
    private(set) var elapsed: UInt64
    private var occupied = [UInt64](repeating: 0, count: TimerWheel.levels)
    private let heads: UnsafeMutablePointer<Unmanaged<TimerEntry>?>
    /// Entries linked in the wheel (written by the owner only; readable anywhere for metrics).
    private let linked = Atomic<Int>(0)
    var count: Int { linked.load(ordering: .relaxed) }
    private func adjustCount(_ delta: Int) { linked.store(linked.load(ordering: .relaxed) + delta, ordering: .relaxed) }
    /// What entries record as their wheel (`TimerEntry.wheelID`): the owning worker's address.
    var id: Int

    /// A wheel whose clock starts at `now` (a millisecond tick).
    init(now: UInt64, id: Int) {
        elapsed = now
        self.id = id
        heads = .allocate(capacity: Self.levels * Self.slotsPerLevel)
        heads.initialize(repeating: nil, count: Self.levels * Self.slotsPerLevel)
    }

    deinit {
        releaseAll()
        heads.deallocate()
    }

    /// Unlinks every entry without firing it (shutdown: the tasks waiting on them are cancelled).
    func releaseAll() {
        for index in 0..<(Self.levels * Self.slotsPerLevel) {
            var cursor = heads[index]
            heads[index] = nil
            while let entry = cursor {
                let value = entry.takeUnretainedValue()
                cursor = value.next
                value.prev = nil
                value.next = nil
                value.wheelID.store(0, ordering: .relaxed)
                entry.release()
            }
        }
        for level in 0..<Self.levels { occupied[level] = 0 }
        linked.store(0, ordering: .relaxed)
    }

    static func level(elapsed: UInt64, deadline: UInt64) -> Int {
        let masked = (elapsed ^ deadline) | UInt64(slotsPerLevel - 1)
        let significant = 63 - masked.leadingZeroBitCount
        return min(significant / slotBits, levels - 1)
    }

    static func slot(deadline: UInt64, level: Int) -> Int {
        Int((deadline >> UInt64(level * slotBits)) & UInt64(slotsPerLevel - 1))
    }

    /// Links `entry` (taking a reference). Returns false, linking nothing, if its deadline has
    /// already been processed: the caller fires it.
    @discardableResult
    func insert(_ entry: TimerEntry) -> Bool {
        guard entry.deadline > elapsed else { return false }
        link(entry, at: min(entry.deadline, elapsed + Self.maxRange - 1), retained: Unmanaged.passRetained(entry))
        return true
    }

    private func link(_ entry: TimerEntry, at when: UInt64, retained: Unmanaged<TimerEntry>) {
        let level = Self.level(elapsed: elapsed, deadline: when)
        let slot = Self.slot(deadline: when, level: level)
        let index = level * Self.slotsPerLevel + slot
        entry.level = level
        entry.slot = slot
        entry.prev = nil
        entry.next = heads[index]
        if let head = heads[index] { head.takeUnretainedValue().prev = retained }
        heads[index] = retained
        occupied[level] |= 1 << UInt64(slot)
        entry.wheelID.store(id, ordering: .relaxed)
        adjustCount(1)
    }

    /// Unlinks `entry` (which must be in this wheel) and drops the wheel's reference.
    func remove(_ entry: TimerEntry) {
        let index = entry.level * Self.slotsPerLevel + entry.slot
        if let prev = entry.prev {
            prev.takeUnretainedValue().next = entry.next
        } else {
            heads[index] = entry.next
            if entry.next == nil { occupied[entry.level] &= ~(1 << UInt64(entry.slot)) }
        }
        if let next = entry.next { next.takeUnretainedValue().prev = entry.prev }
        entry.prev = nil
        entry.next = nil
        entry.wheelID.store(0, ordering: .relaxed)
        adjustCount(-1)
        Unmanaged.passUnretained(entry).release()
    }

    /// The earliest tick at which `advance` will have something to do, if any entry is linked.
    /// (For a slot of a higher level this is the slot's start: its entries cascade down then.)
    func nextExpiration() -> (level: Int, slot: Int, deadline: UInt64)? {
        for level in 0..<Self.levels where occupied[level] != 0 {
            let slotRange = UInt64(1) << UInt64(level * Self.slotBits)
            let levelRange = slotRange << UInt64(Self.slotBits)
            let nowSlot = Int((elapsed / slotRange) % UInt64(Self.slotsPerLevel))
            let rotated = (occupied[level] >> UInt64(nowSlot)) | (occupied[level] << UInt64((64 - nowSlot) % 64))
            let slot = (rotated.trailingZeroBitCount + nowSlot) % Self.slotsPerLevel
            let levelStart = elapsed & ~(levelRange - 1)
            var deadline = levelStart + UInt64(slot) * slotRange
            if deadline <= elapsed { deadline += levelRange }  // only the top level wraps round
            return (level, slot, deadline)
        }
        return nil
    }

    /// The next tick the owner should wake at, if any.
    var nextDeadline: UInt64? { nextExpiration()?.deadline }

    /// Processes every deadline up to `now`: fires due entries (waking their tasks) and moves the
    /// rest to lower levels. Returns how many fired.
    @discardableResult
    func advance(to now: UInt64) -> Int {
        var fired = 0
        while let expiration = nextExpiration(), expiration.deadline <= now {
            let index = expiration.level * Self.slotsPerLevel + expiration.slot
            var cursor = heads[index]
            heads[index] = nil
            occupied[expiration.level] &= ~(1 << UInt64(expiration.slot))
            elapsed = expiration.deadline
            while let retained = cursor {
                let entry = retained.takeUnretainedValue()
                cursor = entry.next
                entry.prev = nil
                entry.next = nil
                adjustCount(-1)
                if entry.deadline <= elapsed || entry.isCancelled {
                    entry.wheelID.store(0, ordering: .relaxed)
                    entry.fire()
                    if !entry.isCancelled { fired += 1 }
                    retained.release()
                } else {
                    link(entry, at: min(entry.deadline, elapsed + Self.maxRange - 1), retained: retained)
                }
            }
        }
        if now > elapsed { elapsed = now }
        return fired
    }
}
