/// How the queues carry an element: its bytes in one 64-bit word.
///
/// The C queues move `UInt64` words, so they can carry any `BitwiseCopyable` value of at most
/// 8 bytes: integers, `Bool`, raw pointers, `OpaquePointer`, `Unmanaged<T>` (for class instances:
/// push `Unmanaged.passRetained(object)`, take it back with `takeRetainedValue()` after a pop),
/// and small trivial structs. Larger or reference-counted values cannot ride in a word.
@usableFromInline
enum QueueWord {
    @inlinable @inline(__always)
    static func checkFits<Element: BitwiseCopyable>(_: Element.Type) {
        precondition(
            MemoryLayout<Element>.size <= MemoryLayout<UInt64>.size,
            "queue elements must fit in 8 bytes; \(Element.self) takes \(MemoryLayout<Element>.size)")
    }

    @inlinable @inline(__always)
    static func encode<Element: BitwiseCopyable>(_ element: Element) -> UInt64 {
        var word: UInt64 = 0
        withUnsafeMutableBytes(of: &word) { $0.storeBytes(of: element, as: Element.self) }
        return word
    }

    @inlinable @inline(__always)
    static func decode<Element: BitwiseCopyable>(_ word: UInt64, as _: Element.Type) -> Element {
        withUnsafeBytes(of: word) { $0.load(as: Element.self) }
    }
}

/// Why a queue could not be created.
public enum QueueCreationError: Error, Equatable, CustomStringConvertible {
    /// The capacity is zero, negative, or larger than the queue supports.
    case invalidCapacity(Int)
    /// The memory for the queue could not be allocated.
    case outOfMemory

    public var description: String {
        switch self {
        case .invalidCapacity(let capacity): return "invalid queue capacity \(capacity)"
        case .outOfMemory: return "out of memory creating a queue"
        }
    }
}
