import CCoil
import Coil
import CoilTestSupport
import XCTest

/// Ring setup: which flags the kernel took, the fallbacks, errors, and the layout shared with C.
final class RingSetupTests: XCTestCase {
    func testDefaultRingTakesTheBestFlagsThisKernelHas() throws {
        let ring = try IORing(entries: 64)
        // Linux 6.1+ has SINGLE_ISSUER and DEFER_TASKRUN; older kernels fall back to COOP_TASKRUN or none.
        let flags = ring.setupFlags
        XCTAssertTrue(flags.contains(.cqSize))
        XCTAssertTrue(flags.contains([.singleIssuer, .deferTaskrun]) || flags.contains(.coopTaskrun) || flags == [.cqSize, .submitAll] || flags == .cqSize,
                      "unexpected setup \(flags)")
        if flags.contains(.singleIssuer) { XCTAssertTrue(ring.hasRegisteredFileDescriptor) }
        XCTAssertEqual(ring.submissionEntries, 64)
        XCTAssertEqual(ring.completionEntries, 128)
        XCTAssertGreaterThanOrEqual(ring.fileDescriptor, 0)
    }

    func testSharedRingAvoidsSingleIssuer() throws {
        let ring = try IORing(entries: 8, options: .shared)
        XCTAssertFalse(ring.setupFlags.contains(.singleIssuer))
        XCTAssertFalse(ring.setupFlags.contains(.deferTaskrun))
        XCTAssertFalse(ring.hasRegisteredFileDescriptor)
    }

    func testPlainRingTakesNoOptionalFlag() throws {
        let ring = try IORing(entries: 8, options: .plain)
        XCTAssertEqual(ring.setupFlags, .cqSize)
        try ring.prepareNop(userData: 1)
        XCTAssertEqual(try ring.collect(1).map(\.userData), [1])
    }

    func testSharedRingWorksFromAnotherThreadInTurn() throws {
        let ring = try IORing(entries: 8, options: .shared)
        let box = SendableBox(ring)
        runThreads(1) { _ in
            try! box.value.prepareNop(userData: 5)
            try! box.value.submit()
        }
        XCTAssertEqual(try ring.collect(1).map(\.userData), [5])
    }

    func testBadSizesAreErrorsNamingTheOperation() {
        XCTAssertThrowsError(try IORing(entries: 0)) { error in
            let ringError = error as? IORingError
            XCTAssertEqual(ringError?.operation, "io_uring_setup")
            XCTAssertEqual(ringError?.errno, EINVAL)
        }
        // Fewer completion slots than submission slots: the kernel says EINVAL.
        XCTAssertThrowsError(try IORing(entries: 64, completionEntries: 8)) { error in
            XCTAssertEqual((error as? IORingError)?.errno, EINVAL)
        }
        var error: Int32 = 0
        XCTAssertNil(coil_ring_create(64, 8, 0, &error))
        XCTAssertEqual(error, -EINVAL)
    }

    func testErrorDescriptionNamesOperationAndErrno() {
        let error = IORingError(operation: "recv", errno: ECONNRESET)
        XCTAssertTrue(error.description.hasPrefix("recv failed: ECONNRESET ("), error.description)
        let setup = IORingError(operation: "io_uring_setup", errno: EPERM)
        XCTAssertTrue(setup.description.contains("io_uring_disabled"), setup.description)
    }

    func testCompletionLayoutMatchesC() {
        XCTAssertEqual(MemoryLayout<IOCompletion>.size, MemoryLayout<coil_cqe_t>.size)
        XCTAssertEqual(MemoryLayout<IOCompletion>.stride, MemoryLayout<coil_cqe_t>.stride)
        XCTAssertEqual(MemoryLayout<IOCompletion>.alignment, MemoryLayout<coil_cqe_t>.alignment)
        XCTAssertEqual(MemoryLayout<IOCompletion>.offset(of: \.userData), MemoryLayout<coil_cqe_t>.offset(of: \.user_data))
        XCTAssertEqual(MemoryLayout<IOCompletion>.offset(of: \.result), MemoryLayout<coil_cqe_t>.offset(of: \.res))
        XCTAssertEqual(MemoryLayout<IOCompletion>.offset(of: \.flags), MemoryLayout<coil_cqe_t>.offset(of: \.flags))
    }

    func testDestroyingRingsLeaksNoDescriptor() throws {
        let before = openDescriptorCount()
        for _ in 0..<50 {
            let ring = try IORing(entries: 8)
            try ring.enableWaker()
            try ring.prepareNop(userData: 1)
            _ = try ring.collect(1)
        }
        XCTAssertEqual(openDescriptorCount(), before)
    }
}
