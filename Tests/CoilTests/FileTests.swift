import Coil
import CoilTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Files through the runtime's rings: offsets, short reads at the end, whole-file helpers,
/// metadata, sync, and the errors of opening and using them.
final class FileTests: XCTestCase {
    nonisolated(unsafe) static let flavors = IOTestSupport.flavors

    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "coil-file-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// 1 MiB + 123 bytes, written and read through a 64 KiB buffer: larger than the buffer.
    func testFileLargerThanTheBufferRoundTripsThroughOffsets() throws {
        let size = (1 << 20) + 123
        let pattern = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        for (name, make) in Self.flavors {
            let path = directory + "/big-\(name)"
            let runtime = try make()
            let back: [UInt8] = try runtime.blockOn { () async throws(IOError) -> [UInt8] in
                let file = try await File.open(path, options: OpenOptions(read: true, write: true, create: true))
                let chunk = IOBuffer(capacity: 65536)
                var offset = 0
                while offset < size {
                    chunk.clear()
                    chunk.append(pattern[offset..<min(size, offset + chunk.capacity)])
                    try await file.writeAll(chunk, at: UInt64(offset))
                    offset += chunk.count
                }
                try await file.sync()
                let sizeOnDisk = try await file.metadata().size
                XCTAssertEqual(sizeOnDisk, UInt64(size), name)
                var back: [UInt8] = []
                back.reserveCapacity(size)
                offset = 0
                while true {
                    chunk.clear()
                    let n = try await file.read(into: chunk, at: UInt64(offset))
                    if n == 0 { break }
                    back += chunk.bytes
                    offset += n
                }
                try await file.close()
                return back
            }
            XCTAssertEqual(back.count, size, name)
            XCTAssertTrue(back == pattern, "\(name): the bytes read back differ")
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }

    func testReadsNearTheEndAreShortAndAtTheEndReturnZero() throws {
        let path = directory + "/hundred"
        _ = FileManager.default.createFile(atPath: path, contents: Data((0..<100).map { UInt8($0) }))
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        try runtime.blockOn { () async throws(IOError) in
            let file = try await File.open(path)
            let buffer = IOBuffer(capacity: 64)
            let nearEnd = try await file.read(into: buffer, at: 90)
            XCTAssertEqual(nearEnd, 10)
            XCTAssertEqual(buffer.bytes, Array(90..<100))
            buffer.clear()
            let atEnd = try await file.read(into: buffer, at: 100)
            XCTAssertEqual(atEnd, 0)
            let pastEnd = try await file.read(into: buffer, at: 5000)
            XCTAssertEqual(pastEnd, 0)
            XCTAssertEqual(buffer.count, 0)
            // The file position: nil offsets read on from where the last one stopped.
            let fromPosition = try await file.read(into: buffer)
            XCTAssertEqual(fromPosition, 64)
            let restOfFile = try await file.read(into: IOBuffer(capacity: 64))
            XCTAssertEqual(restOfFile, 36)
            let afterEnd = try await file.read(into: IOBuffer(capacity: 64))
            XCTAssertEqual(afterEnd, 0)
        }
        XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)))
    }

    func testWholeFileHelpersAppendAndMetadata() throws {
        let directory = self.directory
        for (name, make) in Self.flavors {
            let path = directory + "/whole-\(name)"
            let runtime = try make()
            try runtime.blockOn { () async throws(IOError) in
                try await File.write(IOBuffer(string: "first line\n"), toPath: path, permissions: 0o600)
                let log = try await File.open(path, options: .append)
                try await log.writeAll(IOBuffer(string: "second line\n"))
                try await log.syncData(timeout: .seconds(5))
                try await log.close()
                let contents = try await File.contents(atPath: path)
                XCTAssertEqual(contents.string, "first line\nsecond line\n", name)
                // An empty file reads as an empty buffer.
                try await File.write(IOBuffer(capacity: 1), toPath: path + ".empty")
                let emptyCount = try await File.contents(atPath: path + ".empty").count
                XCTAssertEqual(emptyCount, 0, name)

                let file = try await File.open(path)
                let metadata = try await file.metadata()
                XCTAssertEqual(metadata.size, 23, name)
                XCTAssertEqual(metadata.kind, .regular, name)
                XCTAssertEqual(metadata.permissions, 0o600, name)
                XCTAssertEqual(metadata.linkCount, 1, name)
                XCTAssertEqual(metadata.userID, getuid(), name)
                XCTAssertGreaterThan(metadata.modified.seconds, 1_700_000_000, name)
                // readToEnd from an offset.
                let tail = try await file.readToEnd(from: 11).string
                XCTAssertEqual(tail, "second line\n", name)
                try await file.close()
                let directoryMetadata = try await File.open(directory).metadata()
                XCTAssertEqual(directoryMetadata.kind, .directory, name)
            }
            XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
        }
    }

    /// /proc files report a size of 0 and have contents: readToEnd grows its buffer past the
    /// size it was told.
    func testReadToEndReadsPastTheReportedSize() throws {
        let runtime = try Runtime.Builder.currentThread().build()
        let (reported, text) = try runtime.blockOn { () async throws(IOError) -> (UInt64, String) in
            let file = try await File.open("/proc/self/status")
            let size = try await file.metadata().size
            return (size, try await file.readToEnd().string)
        }
        XCTAssertEqual(reported, 0)
        XCTAssertTrue(text.hasPrefix("Name:"), text)
        XCTAssertTrue(text.contains("\nPid:\t\(getpid())\n"), text)
        XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)))
    }

    func testOpeningAndUsingFilesReportsTheErrno() throws {
        let directory = self.directory
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        let path = directory + "/exists"
        _ = FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
        try runtime.blockOn { () async throws(IOError) in
            let missing = await IOTestSupport.error { () async throws(IOError) in _ = try await File.open(directory + "/missing") }
            // A NUL inside the path is refused, not cut short (that would open `exists`).
            let embeddedNul = await IOTestSupport.error { () async throws(IOError) in _ = try await File.open(path + "\0.other") }
            XCTAssertEqual(embeddedNul?.errno, EINVAL)
            XCTAssertEqual(missing?.errno, ENOENT)
            XCTAssertEqual(missing?.operation, "open")
            let exists = await IOTestSupport.error { () async throws(IOError) in
                _ = try await File.open(path, options: OpenOptions(write: true, createNew: true))
            }
            XCTAssertEqual(exists?.errno, EEXIST)
            let directoryForWriting = await IOTestSupport.error { () async throws(IOError) in
                _ = try await File.open(directory, options: OpenOptions(write: true))
            }
            XCTAssertEqual(directoryForWriting?.errno, EISDIR)
            // Writing to a read-only file, reading a write-only one.
            let readOnly = try await File.open(path)
            let write = await IOTestSupport.error { () async throws(IOError) in _ = try await readOnly.write(IOBuffer(string: "y"), at: 0) }
            XCTAssertEqual(write?.errno, EBADF)
            XCTAssertEqual(write?.operation, "write")
            let writeOnly = try await File.open(path, options: OpenOptions(write: true))
            let read = await IOTestSupport.error { () async throws(IOError) in _ = try await writeOnly.read(into: IOBuffer(capacity: 8), at: 0) }
            XCTAssertEqual(read?.errno, EBADF)
            // After close: EBADF from every operation.
            try await readOnly.close()
            let sync = await IOTestSupport.error { () async throws(IOError) in try await readOnly.sync() }
            XCTAssertEqual(sync?.errno, EBADF)
            XCTAssertEqual(sync?.operation, "fsync")
            let stat = await IOTestSupport.error { () async throws(IOError) in _ = try await readOnly.metadata() }
            XCTAssertEqual(stat?.errno, EBADF)
        }
        XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)))
    }

    /// A read that cannot complete (an empty FIFO) times out through its linked timeout; nothing
    /// is consumed, and the next read gets the bytes.
    func testReadFromAnEmptyFifoTimesOutAndLeavesNothingBehind() throws {
        for (name, make) in Self.flavors {
            let path = directory + "/fifo-\(name)"
            XCTAssertEqual(mkfifo(path, 0o600), 0)
            let baseline = IOTestSupport.Baseline()
            try { () throws in
                let runtime = try make()
                let text = try runtime.blockOn { () async throws(IOError) -> String in
                    // Read and write: opening does not wait for a peer.
                    let fifo = try await File.open(path, options: OpenOptions(read: true, write: true))
                    for _ in 0..<20 {
                        let error = await IOTestSupport.error { () async throws(IOError) in
                            _ = try await fifo.read(into: IOBuffer(capacity: 64), timeout: .milliseconds(2))
                        }
                        XCTAssertEqual(error?.errno, ETIMEDOUT, name)
                    }
                    try await fifo.writeAll(IOBuffer(string: "through the fifo"))
                    let buffer = IOBuffer(capacity: 64)
                    _ = try await fifo.read(into: buffer, timeout: .seconds(5))
                    try await fifo.close()
                    return buffer.string
                }
                XCTAssertEqual(text, "through the fifo", name)
                XCTAssertTrue(runtime.shutdown(timeout: .seconds(5)), name)
            }()
            baseline.assertNothingLeaked(name)
        }
    }
}
