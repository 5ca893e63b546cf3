import CCoil

/// A bounded, lock-free queue that any number of threads may push to and pop from.
///
/// It is Coil's C queue (`coil_mpmc`, Vyukov's algorithm) seen from Swift: pushes and pops never
/// block, never allocate, and inline down to the C fast path. A full queue says so (`tryPush`
/// returns `false`) and keeps nothing; an empty one returns `nil`. Values pushed by one thread are
/// popped in the order that thread pushed them.
///
/// Elements travel as 64-bit words, so `Element` must be `BitwiseCopyable` and at most 8 bytes
/// (integers, pointers, `Unmanaged<T>`, small trivial structs). Values still in the queue when it
/// is deinitialized are discarded without further action: drain a queue of `Unmanaged` references
/// before dropping it.
///
/// ```swift
/// let queue = try MPMCQueue<Int>(capacity: 1024)
/// if !queue.tryPush(42) { /* full: retry later, or shed load */ }
/// while let value = queue.tryPop() { print(value) }
/// ```
public final class MPMCQueue<Element: BitwiseCopyable> {
    @usableFromInline
    let queue: OpaquePointer

    /// Creates a queue holding at least `capacity` elements (rounded up to a power of two, at least
    /// 2). Throws `QueueCreationError.invalidCapacity` for 0, negatives, or more than 2^32.
    public init(capacity: Int) throws(QueueCreationError) {
        QueueWord.checkFits(Element.self)
        guard capacity > 0, capacity <= coil_mpmc_max_capacity() else {
            throw .invalidCapacity(capacity)
        }
        guard let queue = coil_mpmc_create(capacity) else { throw .outOfMemory }
        self.queue = queue
    }

    deinit { coil_mpmc_destroy(queue) }

    /// How many elements the queue holds when full.
    public var capacity: Int { coil_mpmc_capacity(queue) }

    /// How many elements are in the queue; exact only while no other thread uses it.
    public var countApproximately: Int { coil_mpmc_count_approx(queue) }

    /// Appends `element` unless the queue is full; returns whether it was appended.
    @inlinable
    public func tryPush(_ element: Element) -> Bool {
        coil_mpmc_try_push(queue, QueueWord.encode(element))
    }

    /// Removes and returns the oldest element, or `nil` when the queue is empty.
    @inlinable
    public func tryPop() -> Element? {
        var word: UInt64 = 0
        guard coil_mpmc_try_pop(queue, &word) else { return nil }
        return QueueWord.decode(word, as: Element.self)
    }
}

/// The queue is built for sharing between threads; the elements must be safe to send.
extension MPMCQueue: @unchecked Sendable where Element: Sendable {}
