import Coil
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Timers and linked timeouts.
final class RingTimeoutTests: XCTestCase {
    func testTimeoutFiresWithETIME() throws {
        let ring = try IORing(entries: 8)
        let clock = ContinuousClock()
        let start = clock.now
        try ring.prepareTimeout(after: .milliseconds(30), userData: 1)
        let done = try ring.collect(1)
        XCTAssertEqual(done[0].errno, ETIME)
        XCTAssertGreaterThanOrEqual(clock.now - start, .milliseconds(25))
    }

    func testCancelledTimeoutCompletesWithECANCELED() throws {
        let ring = try IORing(entries: 8)
        try ring.prepareTimeout(after: .seconds(30), userData: 1)
        try ring.submit()
        try ring.prepareCancel(userData: 1, userData: 2)
        let done = try ring.collect(2)
        XCTAssertEqual(done.first { $0.userData == 1 }?.errno, ECANCELED)
        XCTAssertEqual(done.first { $0.userData == 2 }?.result, 0)
    }

    func testLinkTimeoutCancelsAPendingReceive() throws {
        let ring = try IORing(entries: 8)
        let (client, server) = try makeLoopbackPair()
        defer { close(client); close(server) }
        var buffer = [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { bytes in
            try ring.reserve(2)
            try ring.prepareReceive(fd: server, into: bytes, userData: 1)
            try ring.prepareLinkTimeout(after: .milliseconds(20), userData: 2)
            let done = try ring.collect(2)
            XCTAssertEqual(done.first { $0.userData == 1 }?.errno, ECANCELED, "the receive was cancelled")
            XCTAssertEqual(done.first { $0.userData == 2 }?.errno, ETIME, "because its timeout fired")
        }
    }

    func testLinkTimeoutThatDoesNotFire() throws {
        let ring = try IORing(entries: 8)
        let (client, server) = try makeLoopbackPair()
        defer { close(client); close(server) }
        sendAll(client, [1, 2, 3])
        var buffer = [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { bytes in
            try ring.reserve(2)
            try ring.prepareReceive(fd: server, into: bytes, userData: 1)
            try ring.prepareLinkTimeout(after: .seconds(10), userData: 2)
            let done = try ring.collect(2)
            XCTAssertEqual(done.first { $0.userData == 1 }?.result, 3)
            XCTAssertEqual(done.first { $0.userData == 2 }?.errno, ECANCELED, "the unused timeout is cancelled")
        }
    }

    func testLinkTimeoutWithoutAnOperationIsRefused() throws {
        let ring = try IORing(entries: 8)
        XCTAssertThrowsError(try ring.prepareLinkTimeout(after: .seconds(1), userData: 1)) {
            XCTAssertEqual(($0 as? IORingError)?.errno, EINVAL)
            XCTAssertEqual(($0 as? IORingError)?.operation, "link timeout")
        }
    }
}
