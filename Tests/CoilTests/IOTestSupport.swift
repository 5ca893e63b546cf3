import Coil
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What the I/O tests share: the runtime flavours they run on, and helpers.
enum IOTestSupport {
    nonisolated(unsafe) static let flavors: [(String, () throws -> Runtime)] = [
        ("current-thread", { try Runtime.Builder.currentThread().build() }),
        ("multi-thread(1)", { try Runtime.Builder.multiThread().workerThreads(1).build() }),
        ("multi-thread(2)", { try Runtime.Builder.multiThread().workerThreads(2).build() }),
    ]

    /// Closes `stream` with SO_LINGER 0, so that the peer sees a reset.
    static func reset(_ stream: TCPStream) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(stream.fileDescriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        _ = Glibc.close(stream.fileDescriptor)
    }

    /// The error `body` throws, or nil.
    static func error(_ body: () async throws(IOError) -> Void) async -> IOError? {
        do throws(IOError) {
            try await body()
            return nil
        } catch {
            return error
        }
    }

    /// The errno of the error `body` throws, or nil.
    static func errnoOf(_ body: () throws(IOError) -> Void) -> Int32? {
        do throws(IOError) {
            try body()
            return nil
        } catch {
            return error.errno
        }
    }

    /// Open descriptors of this process.
    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }
}
