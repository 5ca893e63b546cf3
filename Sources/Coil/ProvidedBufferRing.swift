import CCoil

/// A group of equally sized buffers registered with an ``IORing`` for the kernel to pick from
/// (a provided-buffer ring), as multishot receive needs.
///
/// Each completion that used a buffer names it (``IOCompletion/bufferID``); read the bytes with
/// ``withBuffer(_:count:_:)`` and then hand the buffer back with ``recycle(_:)``. Use it on the
/// ring's thread only. It keeps its ring alive.
///
/// ```swift
/// let buffers = try ProvidedBufferRing(ring: ring, groupID: 1, count: 64, bufferSize: 4096)
/// try ring.prepareMultishotReceive(fd: socket, buffers: buffers, userData: 9)
/// // ... for a completion c with c.result > 0:
/// if let id = c.bufferID {
///     buffers.withBuffer(id, count: Int(c.result)) { bytes in consume(bytes) }
///     buffers.recycle(id)
/// }
/// ```
public final class ProvidedBufferRing {
    let buffers: OpaquePointer
    let ring: IORing

    /// The buffer group id operations select with.
    public let groupID: UInt16
    /// How many buffers the group has.
    public let count: Int
    /// The size of each buffer.
    public let bufferSize: Int

    /// Registers `count` buffers (a power of two, at most 32768) of `bufferSize` bytes with `ring`
    /// as group `groupID`, all available to the kernel.
    public init(ring: IORing, groupID: UInt16, count: Int, bufferSize: Int) throws(IORingError) {
        guard count > 0, count <= 32768, count & (count - 1) == 0, bufferSize > 0, bufferSize <= Int(UInt32.max) else {
            throw IORingError(operation: "register_buf_ring", errno: EINVAL)
        }
        var error: Int32 = 0
        guard let buffers = coil_buf_ring_create(ring.ring, groupID, UInt32(count), UInt32(bufferSize), &error) else {
            throw IORingError(operation: "register_buf_ring", negativeErrno: error)
        }
        self.buffers = buffers
        self.ring = ring
        self.groupID = groupID
        self.count = count
        self.bufferSize = bufferSize
    }

    deinit { coil_buf_ring_destroy(buffers) }

    /// Gives `body` the first `count` bytes of buffer `id` (as filled by a completion).
    public func withBuffer<R>(_ id: UInt16, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(Int(id) < self.count && count >= 0 && count <= bufferSize, "buffer \(id) / \(count) bytes out of range")
        return try body(UnsafeRawBufferPointer(start: coil_buf_ring_buffer(buffers, id), count: count))
    }

    /// Hands buffer `id` back to the kernel once its contents have been consumed.
    public func recycle(_ id: UInt16) {
        precondition(Int(id) < count, "buffer id \(id) out of range")
        coil_buf_ring_recycle(buffers, id)
    }
}
