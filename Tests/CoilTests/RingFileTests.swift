import Coil
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// File read and write at offsets through the ring.
final class RingFileTests: XCTestCase {
    func testWriteThenReadAtOffsets() throws {
        var template = Array("/tmp/coil-ring-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd); unlink(template) }

        let ring = try IORing(entries: 8)
        let first = [UInt8](repeating: 0xAB, count: 4096)
        let second = Array("hello, io_uring".utf8)
        try first.withUnsafeBytes { bytes in
            try second.withUnsafeBytes { more in
                try ring.prepareWrite(fd: fd, from: bytes, offset: 0, userData: 1)
                try ring.prepareWrite(fd: fd, from: more, offset: 4096, userData: 2)
                let done = try ring.collect(2)
                for completion in done {
                    XCTAssertEqual(Int(completion.result), completion.userData == 1 ? 4096 : second.count)
                }
            }
        }
        var readBack = [UInt8](repeating: 0, count: 64)
        try readBack.withUnsafeMutableBytes { bytes in
            try ring.prepareRead(fd: fd, into: bytes, offset: 4090, userData: 3)
            let done = try ring.collect(1)
            XCTAssertEqual(Int(done[0].result), 6 + second.count, "a short read at end of file")
        }
        XCTAssertEqual(Array(readBack[0..<6]), [UInt8](repeating: 0xAB, count: 6))
        XCTAssertEqual(Array(readBack[6..<(6 + second.count)]), second)
    }

    func testReadOfBadDescriptorIsAnErrorCompletion() throws {
        let ring = try IORing(entries: 8)
        var buffer = [UInt8](repeating: 0, count: 8)
        try buffer.withUnsafeMutableBytes { bytes in
            try ring.prepareRead(fd: 9999, into: bytes, offset: 0, userData: 1)
            let done = try ring.collect(1)
            XCTAssertEqual(done[0].errno, EBADF)
        }
    }
}
