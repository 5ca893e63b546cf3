import Coil
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Cancelling in-flight operations.
final class RingCancelTests: XCTestCase {
    func testCancelOfAPendingReceive() throws {
        let ring = try IORing(entries: 8)
        let (client, server) = try makeLoopbackPair()
        defer { close(client); close(server) }
        var buffer = [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { bytes in
            try ring.prepareReceive(fd: server, into: bytes, userData: 1)
            try ring.submit()
            try ring.prepareCancel(userData: 1, userData: 2)
            let done = try ring.collect(2)
            XCTAssertEqual(done.first { $0.userData == 1 }?.errno, ECANCELED)
            XCTAssertEqual(done.first { $0.userData == 2 }?.result, 0)
        }
        // The socket still works after the cancel.
        sendAll(client, [9])
        try buffer.withUnsafeMutableBytes { bytes in
            try ring.prepareReceive(fd: server, into: bytes, userData: 3)
            XCTAssertEqual(try ring.collect(1)[0].result, 1)
        }
    }

    func testCancelOfSomethingUnknownSaysENOENT() throws {
        let ring = try IORing(entries: 8)
        try ring.prepareCancel(userData: 12345, userData: 1)
        XCTAssertEqual(try ring.collect(1)[0].errno, ENOENT)
    }

    func testCancelEveryOperationOnADescriptor() throws {
        let ring = try IORing(entries: 8)
        let (client, server) = try makeLoopbackPair()
        defer { close(client); close(server) }
        var first = [UInt8](repeating: 0, count: 8), second = [UInt8](repeating: 0, count: 8)
        try first.withUnsafeMutableBytes { a in
            try second.withUnsafeMutableBytes { b in
                try ring.prepareReceive(fd: server, into: a, userData: 1)
                try ring.prepareReceive(fd: server, into: b, userData: 2)
                try ring.submit()
                try ring.prepareCancel(fd: server, userData: 3)
                let done = try ring.collect(3)
                XCTAssertEqual(done.filter { $0.errno == ECANCELED }.map(\.userData).sorted(), [1, 2])
                XCTAssertEqual(done.first { $0.userData == 3 }?.result, 2, "two requests were cancelled")
            }
        }
    }

    func testCloseThroughTheRing() throws {
        let ring = try IORing(entries: 8)
        let (client, server) = try makeLoopbackPair()
        defer { close(client) }
        try ring.prepareClose(fd: server, userData: 1)
        XCTAssertEqual(try ring.collect(1)[0].result, 0)
        XCTAssertEqual(fcntl(server, F_GETFD), -1, "the descriptor is closed")
    }
}
