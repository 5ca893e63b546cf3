import CCoil

/// One completion reaped from an ``IORing``: the `userData` its operation was prepared with, the
/// kernel's result (bytes, a descriptor, or `-errno`), and the completion flags.
///
/// Its layout is C's `coil_cqe_t` (checked on both sides), so the driver copies completions
/// straight into a buffer of these.
@frozen
public struct IOCompletion: Equatable, Sendable {
    public var userData: UInt64
    public var result: Int32
    public var flags: UInt32

    @inlinable
    public init(userData: UInt64, result: Int32, flags: UInt32) {
        self.userData = userData
        self.result = result
        self.flags = flags
    }

    /// The positive errno when the operation failed, else `nil`.
    @inlinable public var errno: Int32? { result < 0 ? -result : nil }

    /// A multishot operation stays armed and will complete again (`IORING_CQE_F_MORE`).
    @inlinable public var hasMore: Bool { coil_cqe_has_more(flags) }

    /// A receive left more bytes in the socket (`IORING_CQE_F_SOCK_NONEMPTY`).
    @inlinable public var socketHasMore: Bool { coil_cqe_socket_nonempty(flags) }

    /// The provided buffer the kernel picked for this completion, if any.
    @inlinable public var bufferID: UInt16? { coil_cqe_has_buffer(flags) ? coil_cqe_buffer_id(flags) : nil }
}
