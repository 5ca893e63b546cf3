import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A fixed-capacity byte buffer that I/O operations own while the kernel uses it.
///
/// An operation takes the buffer and keeps it alive until its completion arrives, even if the
/// future or task waiting for it is dropped, so the kernel never writes into freed memory. Reads
/// append after ``count`` (into ``freeCapacity``); writes send the first ``count`` bytes.
///
/// ```swift
/// let buffer = IOBuffer(capacity: 4096)
/// let n = try await stream.read(into: buffer)      // buffer.count == n
/// try await stream.writeAll(buffer)                // echo it back
/// buffer.clear()
/// ```
///
/// Don't touch a buffer while an operation that was given it is in flight.
public final class IOBuffer: @unchecked Sendable {
    // SAFETY: a buffer is used by one task at a time; an operation's completion happens-before the
    // waiter's next access (the wake or resume orders them).
    public let capacity: Int
    /// Bytes of data at the start of the buffer.
    public var count: Int {
        get { storedCount }
        set {
            precondition(newValue >= 0 && newValue <= capacity, "IOBuffer count \(newValue) out of 0...\(capacity)")
            storedCount = newValue
        }
    }
    /// One task uses a buffer at a time: no dynamic exclusivity checks. (A computed `count` over
    /// this, because other modules, inlining an observed stored property's accessors across the
    /// module boundary, checked every read of it.)
    @exclusivity(unchecked) private var storedCount: Int
    let base: UnsafeMutableRawPointer

    /// An empty buffer of `capacity` bytes.
    public init(capacity: Int) {
        precondition(capacity > 0, "IOBuffer capacity must be positive")
        self.capacity = capacity
        storedCount = 0
        base = .allocate(byteCount: capacity, alignment: 64)
        Self.live.add(1, ordering: .relaxed)
    }

    static let live = Atomic<Int>(0)

    /// A buffer holding `bytes` (its capacity is their count, at least 1).
    public convenience init(_ bytes: some Collection<UInt8>) {
        self.init(capacity: max(1, bytes.count))
        append(bytes)
    }

    /// A buffer holding `string`'s UTF-8 bytes.
    public convenience init(string: String) {
        self.init(Array(string.utf8))
    }

    deinit {
        base.deallocate()
        Self.live.subtract(1, ordering: .relaxed)
    }

    /// Room left after ``count``.
    public var freeCapacity: Int { capacity - count }

    public var isEmpty: Bool { count == 0 }

    /// Forgets the data (the capacity stays).
    public func clear() { count = 0 }

    /// Appends bytes; they must fit.
    public func append(_ bytes: some Collection<UInt8>) {
        precondition(bytes.count <= freeCapacity, "IOBuffer overflow: \(bytes.count) bytes into \(freeCapacity) free")
        var index = count
        for byte in bytes {
            base.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
            index += 1
        }
        count = index
    }

    /// Removes the first `n` bytes, moving the rest to the front.
    public func removeFirst(_ n: Int) {
        precondition(n >= 0 && n <= count, "removeFirst(\(n)) of \(count) bytes")
        if n < count { memmove(base, base + n, count - n) }
        count -= n
    }

    /// The data as a read-only view.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// The whole capacity, writable; set ``count`` to what is valid afterwards.
    public func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: base, count: capacity))
    }

    /// A copy of the data.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The data decoded as UTF-8.
    public var string: String { String(decoding: UnsafeRawBufferPointer(start: base, count: count), as: UTF8.self) }

    /// The free region after `count` (what a read fills).
    var freeRegion: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + count, count: capacity - count)
    }

    /// Bytes `offset..<count` (what a write sends).
    func dataRegion(from offset: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + offset, count: count - offset)
    }
}

/// A pool of equally sized ``IOBuffer``s, so that a server reuses buffers instead of allocating
/// one per connection or message. Thread-safe.
///
/// ```swift
/// let pool = BufferPool(bufferSize: 16384, maxPooled: 1024)
/// let buffer = pool.take()
/// defer { pool.give(buffer) }
/// ```
public final class BufferPool: @unchecked Sendable {
    // SAFETY: `free` is behind its lock.
    public let bufferSize: Int
    public let maxPooled: Int
    private let free = ConditionLock([IOBuffer]())

    public init(bufferSize: Int, maxPooled: Int = 1024) {
        precondition(bufferSize > 0 && maxPooled >= 0, "BufferPool(bufferSize: \(bufferSize), maxPooled: \(maxPooled))")
        self.bufferSize = bufferSize
        self.maxPooled = maxPooled
    }

    /// An empty buffer: a pooled one if any, else a new one.
    public func take() -> IOBuffer {
        if let buffer = free.withLock({ $0.popLast() }) { return buffer }
        return IOBuffer(capacity: bufferSize)
    }

    /// Returns a buffer (cleared) for reuse; dropped if the pool is full or the size differs.
    public func give(_ buffer: IOBuffer) {
        guard buffer.capacity == bufferSize else { return }
        buffer.clear()
        free.withLock { free in
            if free.count < maxPooled { free.append(buffer) }
        }
    }

    /// Buffers waiting in the pool.
    public var pooledCount: Int { free.withLock { $0.count } }
}

/// Counts for leak checks: operation records and buffers that exist right now (pooled ones
/// included). After a runtime shut down and every buffer was dropped, both return to where they
/// were before it started.
public enum IODiagnostics {
    public static var liveOperationRecords: Int { IOOperation.live.load(ordering: .relaxed) }
    public static var liveBuffers: Int { IOBuffer.live.load(ordering: .relaxed) }
    /// Reads of a ``ReceiveStream`` that found the worker's provided buffers exhausted (the
    /// kernel ended the multishot receive with `ENOBUFS`) and received directly instead.
    public static var receiveBufferFallbacks: Int { receiveBufferExhaustions.load(ordering: .relaxed) }
    static let receiveBufferExhaustions = Atomic<Int>(0)
}
