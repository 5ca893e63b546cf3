#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An io_uring operation failed: which operation, and the errno the kernel gave.
///
/// ```swift
/// do { _ = try IORing() } catch { print(error) }   // "io_uring_setup failed: EPERM (Operation not permitted) ..."
/// ```
public struct IORingError: Error, Equatable, CustomStringConvertible {
    /// The operation that failed, e.g. `"io_uring_setup"`, `"recv"`, `"submit"`.
    public var operation: String
    /// The positive errno value (`ECONNRESET`, `ECANCELED`, `ETIME`...).
    public var errno: Int32

    public init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// Builds the error from a liburing-style `-errno` return value.
    @usableFromInline
    init(operation: String, negativeErrno: Int32) {
        self.init(operation: operation, errno: -negativeErrno)
    }

    /// The symbolic name of `errno` when it is a common one, else its number.
    public var errnoName: String { Self.names[errno] ?? "errno \(errno)" }

    public var description: String {
        var text = "\(operation) failed: \(errnoName) (\(String(cString: strerror(errno))))"
        if operation == "io_uring_setup" {
            switch errno {
            case EPERM: text += "; io_uring is forbidden here (seccomp policy, or sysctl kernel.io_uring_disabled)"
            case ENOSYS: text += "; this kernel has no io_uring (Coil needs Linux 6.1 or later)"
            default: break
            }
        }
        return text
    }

    private static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF", EAGAIN: "EAGAIN",
        ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST",
        EINVAL: "EINVAL", EMFILE: "EMFILE", ENOSPC: "ENOSPC", EPIPE: "EPIPE", ENOSYS: "ENOSYS",
        ETIME: "ETIME", EBADR: "EBADR", ENOBUFS: "ENOBUFS", ECONNRESET: "ECONNRESET",
        ECONNREFUSED: "ECONNREFUSED", ECONNABORTED: "ECONNABORTED", ENOTCONN: "ENOTCONN",
        ETIMEDOUT: "ETIMEDOUT", EADDRINUSE: "EADDRINUSE", EALREADY: "EALREADY", ECANCELED: "ECANCELED",
        EOPNOTSUPP: "EOPNOTSUPP",
    ]
}
