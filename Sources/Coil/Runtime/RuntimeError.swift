/// Why a runtime could not be built or an operation on it failed.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// The builder's settings are inconsistent (the message says which).
    case invalidConfiguration(String)
    /// A worker or blocking thread could not be started (pthread_create's error number).
    case threadStart(errno: Int32)
    /// A worker's io_uring could not be set up.
    case ring(IORingError)
    /// The runtime has shut down: no new work is accepted.
    case shutDown

    public var description: String {
        switch self {
        case .invalidConfiguration(let message): return "invalid runtime configuration: \(message)"
        case .threadStart(let errno): return "pthread_create failed: errno \(errno)"
        case .ring(let error): return "worker ring: \(error)"
        case .shutDown: return "the runtime has shut down"
        }
    }
}
