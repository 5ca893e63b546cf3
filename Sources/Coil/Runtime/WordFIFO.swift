/// A growable first-in first-out queue of machine words, for one thread: the run queue of a
/// runtime with a single worker, where nothing steals (so it needs no atomics and never spills
/// to the inject queue; Tokio's current-thread scheduler keeps a plain `VecDeque` the same way).
///
/// A power-of-two ring; a push into a full ring doubles it, keeping the order.
struct WordFIFO: ~Copyable {
    private var buffer: UnsafeMutablePointer<UInt64>
    private var mask: Int
    /// Positions (not wrapped): `head` is the oldest word, `tail` the next free slot.
    private var head = 0
    private var tail = 0

    /// Room for `capacity` words (rounded up to a power of two) before the first growth.
    init(capacity: Int) {
        var size = 8
        while size < capacity { size <<= 1 }
        buffer = .allocate(capacity: size)
        mask = size - 1
    }

    deinit { buffer.deallocate() }

    var count: Int { tail &- head }
    var isEmpty: Bool { tail == head }

    @inline(__always)
    mutating func push(_ word: UInt64) {
        if tail &- head > mask { grow() }
        buffer[tail & mask] = word
        tail &+= 1
    }

    @inline(__always)
    mutating func pop() -> UInt64? {
        guard head != tail else { return nil }
        let word = buffer[head & mask]
        head &+= 1
        return word
    }

    private mutating func grow() {
        let count = self.count
        let larger = UnsafeMutablePointer<UInt64>.allocate(capacity: (mask + 1) * 2)
        for offset in 0..<count { larger[offset] = buffer[(head &+ offset) & mask] }
        buffer.deallocate()
        buffer = larger
        mask = (mask + 1) * 2 - 1
        head = 0
        tail = count
    }
}
