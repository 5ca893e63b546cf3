import CCoil
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// For tests: which I/O operations a runtime fails or shortens on purpose
/// (`Runtime.Builder.injectIOFaults`), to prove that every error path gives back what it holds.
///
/// ```swift
/// @_spi(Testing) import Coil
///
/// let runtime = try Runtime.Builder.multiThread()
///     .injectIOFaults(IOFaultPlan([
///         .init(operations: ["recv"], fault: .error(ECONNRESET), every: 50),
///         .init(operations: ["send", "recv"], fault: .shortTransfer, every: 3),
///     ]))
///     .build()
/// ```
///
/// - `.error(errno)`: the chosen operation goes to the kernel as a NOP that fails with `-errno`
///   (`IORING_NOP_INJECT_RESULT`; before Linux 6.10 the completion is rewritten instead): the waiter
///   sees the error through the ordinary completion path, and nothing the operation would have
///   done happens (no byte consumed, no connection accepted). The receive linked after a failed
///   ``TCPStream/writeThenRead(_:into:)`` send is cancelled by the kernel, as after a real
///   failure; that send never gets `EAGAIN`. A
///   multishot request so failed ends (its completion carries no "more" flag), so `ENOBUFS` on
///   a receive stream (`"recv_multishot"`) takes the out-of-buffers path. `EAGAIN` is retried by the driver (up to 3
///   times) like a real one (a resubmission gets no fault).
/// - `.shortTransfer`: a read, receive, write or send is given half its length (at least one
///   byte), so the kernel moves fewer bytes than asked, as near the end of a file or with a full
///   socket buffer. (Not the send of ``TCPStream/writeThenRead(_:into:)``, which the kernel
///   completes whole or fails.)
///
/// Operations are named as in ``IOError/operation``: `"recv"`, `"send"`, `"writev"`, `"accept"`,
/// `"connect"`, `"read"`, `"write"`, `"open"`, `"close"`, `"shutdown"`, `"sendmsg"`, `"recvmsg"`,
/// `"fsync"`, `"statx"`, and `"recv_multishot"` for a receive stream's request. An injected
/// error on `"close"` still closes the descriptor (as close(2) does when it reports one). Each worker counts the operations a rule matches and applies the fault
/// to every `every`-th one.
@_spi(Testing)
public struct IOFaultPlan: Sendable {
    public enum Fault: Sendable, Hashable {
        case error(Int32)
        case shortTransfer
    }

    public struct Rule: Sendable {
        public var operations: Set<String>
        public var fault: Fault
        public var every: Int

        public init(operations: Set<String>, fault: Fault, every: Int) {
            precondition(every >= 1, "IOFaultPlan.Rule every must be at least 1")
            self.operations = operations
            self.fault = fault
            self.every = every
        }
    }

    public var rules: [Rule]

    public init(_ rules: [Rule]) { self.rules = rules }

    /// Faults injected so far, in every runtime of the process.
    public static var injected: Int { IOFaultInjector.injected.load(ordering: .relaxed) }
}

/// One driver's application of a plan (owning thread only).
final class IOFaultInjector {
    private let rules: [IOFaultPlan.Rule]
    private var counts: [Int]
    static let injected = Atomic<Int>(0)

    init(_ plan: IOFaultPlan) {
        rules = plan.rules
        counts = Array(repeating: 0, count: plan.rules.count)
    }

    /// Marks `op` for an error, or shortens its transfer, if a rule picks it.
    /// A resubmission after `EAGAIN` is left alone, so that an injected `EAGAIN` is always
    /// recovered from.
    /// `linkHead`: `op` has a request linked after it. It gets no `EAGAIN` (the kernel does not
    /// return one there: a linked request that would block waits for readiness), because a
    /// resubmitted head would complete after the request the kernel cancelled behind it.
    func apply(to op: IOOperation, linkHead: Bool = false) {
        guard op.retries == 0 else { return }
        let name = op.request.name
        for (index, rule) in rules.enumerated() where rule.operations.contains(name) {
            if linkHead, rule.fault == .error(EAGAIN) { continue }
            counts[index] += 1
            guard counts[index] % rule.every == 0 else { continue }
            switch rule.fault {
            case .error(let errno):
                op.injectedErrno = errno
            case .shortTransfer:
                switch op.request {
                case .receive, .send, .read, .write:
                    guard op.region.count > 1 else { continue }
                    op.region = UnsafeMutableRawBufferPointer(rebasing: op.region[..<(op.region.count / 2)])
                default:
                    continue
                }
            }
            Self.injected.add(1, ordering: .relaxed)
            return
        }
    }
}
