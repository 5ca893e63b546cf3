import Coil
import Foundation
import XCTest

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

    /// Whether the running kernel is at least `major.minor` (from uname's release, "6.18.44-...").
    static func kernelAtLeast(_ major: Int, _ minor: Int) -> Bool {
        var names = utsname()
        guard uname(&names) == 0 else { return false }
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return false }
        return (parts[0], parts[1]) >= (major, minor)
    }

    /// Skips the calling test on kernels before 6.10, which complete a NOP with 0 whatever
    /// result it carries (IORING_NOP_INJECT_RESULT came in 6.10). On newer kernels the test
    /// runs, so a NOP that ignores its result there fails it instead of skipping it.
    static func requireNopInjectResult() throws {
        if !kernelAtLeast(6, 10) { throw XCTSkip("IORING_NOP_INJECT_RESULT needs Linux 6.10 or later") }
    }

    /// Open descriptors of this process.
    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }
}

extension IOTestSupport {
    /// What I/O must give back: open descriptors, live buffers and live operation records, taken
    /// before a test's runtime exists and checked after it is gone.
    struct Baseline {
        let descriptors = IOTestSupport.openDescriptors()
        let buffers = IODiagnostics.liveBuffers
        let records = IODiagnostics.liveOperationRecords

        /// Fails the test if a buffer, a record or a descriptor was not given back (records and
        /// descriptors may take a moment: a worker or the blocking pool releases them).
        func assertNothingLeaked(_ name: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(IODiagnostics.liveBuffers, buffers, "\(name): a buffer outlived its operations", file: file, line: line)
            XCTAssertTrue(eventually { IODiagnostics.liveOperationRecords == records },
                          "\(name): \(IODiagnostics.liveOperationRecords - records) records leaked", file: file, line: line)
            XCTAssertTrue(eventually { IOTestSupport.openDescriptors() == descriptors },
                          "\(name): \(IOTestSupport.openDescriptors() - descriptors) descriptors leaked", file: file, line: line)
        }
    }
}
