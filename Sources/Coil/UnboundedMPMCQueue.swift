import CCoil

/// An unbounded, lock-free queue that any number of threads may push to and pop from.
///
/// It is Coil's C queue `coil_umpmc`: a linked list of 63-slot blocks, the design the runtime
/// uses for its global inject queue. Pushing never fails for lack of room; a block is allocated
/// only when the queue outgrows the blocks it has (one emptied block is kept for reuse, so a
/// queue whose length stays steady allocates nothing). Values pushed by one thread are popped in
/// the order that thread pushed them.
///
/// `Element` must be `BitwiseCopyable` and at most 8 bytes, as for ``MPMCQueue``; values left in
/// the queue at deinit are discarded.
///
/// ```swift
/// let inject = try UnboundedMPMCQueue<UInt64>()
/// inject.push(7)
/// let next = inject.tryPop()   // 7
/// ```
public final class UnboundedMPMCQueue<Element: BitwiseCopyable> {
    @usableFromInline
    let queue: OpaquePointer

    /// Creates an empty queue.
    public init() throws(QueueCreationError) {
        QueueWord.checkFits(Element.self)
        guard let queue = coil_umpmc_create() else { throw .outOfMemory }
        self.queue = queue
    }

    deinit { coil_umpmc_destroy(queue) }

    /// Appends `element`. Traps only if a new block cannot be allocated (out of memory), as
    /// Swift's own collections do.
    @inlinable
    public func push(_ element: Element) {
        let pushed = coil_umpmc_push(queue, QueueWord.encode(element))
        precondition(pushed, "out of memory growing an UnboundedMPMCQueue")
    }

    /// Removes and returns the oldest element, or `nil` when the queue is empty.
    @inlinable
    public func tryPop() -> Element? {
        var word: UInt64 = 0
        guard coil_umpmc_try_pop(queue, &word) else { return nil }
        return QueueWord.decode(word, as: Element.self)
    }

    /// How many elements are in the queue; exact only while no other thread uses it.
    public var countApproximately: Int { coil_umpmc_count_approx(queue) }

    /// How many blocks the queue has allocated since it was created (the first one included).
    public var blocksAllocated: Int { Int(coil_umpmc_blocks_allocated(queue)) }
}

extension UnboundedMPMCQueue: @unchecked Sendable where Element: Sendable {}
