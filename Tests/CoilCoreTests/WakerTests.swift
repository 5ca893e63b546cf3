import CCoilCore
@testable import CoilCore
import XCTest

final class WakerTests: XCTestCase {
    func testCloneWakeAndDropReachTheVTableExactlyOnceEach() {
        let counter = CountingWaker()
        do {
            let waker = counter.makeWaker()
            let copy = waker.clone()
            XCTAssertTrue(copy.willWake(waker))
            copy.wakeByRef()
            copy.wake()  // consumes copy: one wake, one reference released
            XCTAssertEqual(counter.counts.wakes, 2)
            XCTAssertEqual(counter.counts.drops, 1)
        }  // `waker` dropped here
        XCTAssertEqual(counter.counts.clones, 1)
        XCTAssertEqual(counter.counts.drops, 2)
        XCTAssertEqual(counter.counts.wakes, 2)
    }

    func testWillWakeDistinguishesTargets() {
        let first = CountingWaker(), second = CountingWaker()
        let a = first.makeWaker(), b = second.makeWaker()
        XCTAssertFalse(a.willWake(b))
        XCTAssertTrue(a.willWake(a))
        XCTAssertFalse(Waker.noop.willWake(a))
        XCTAssertTrue(Waker.noop.willWake(Waker.noop))
    }

    /// The built-in vtables live in C static storage (CCoilCore) and are read as Swift
    /// WakerVTables: the two layouts must agree, and each must reach its own functions.
    func testStaticVTablesHaveSwiftsLayoutAndTheirOwnFunctions() {
        XCTAssertEqual(MemoryLayout<WakerVTable>.size, coil_waker_vtable_size())
        XCTAssertEqual(MemoryLayout<WakerVTable>.stride, coil_waker_vtable_size())
        XCTAssertEqual(taskWakerVTable, taskWakerVTable, "one fixed address")
        XCTAssertNotEqual(taskWakerVTable, noopWakerVTable)
        XCTAssertNotEqual(taskWakerVTable, wakerTargetVTable)
        // A WakerTarget's waker goes through its vtable: clone retains, wake releases.
        final class Target: WakerTarget, @unchecked Sendable { var wakes = 0; override func wake() { wakes += 1 } }
        let target = Target()
        let waker = target.makeWaker()
        XCTAssertEqual(waker.rawWaker.vtable, wakerTargetVTable)
        let clone = waker.clone()
        clone.wakeByRef()
        clone.wake()
        XCTAssertEqual(target.wakes, 2)
        weak var released = target
        _ = consume waker
        _ = consume target
        XCTAssertNil(released, "every retain the vtable took was released")
        XCTAssertEqual(Waker.noop.rawWaker.vtable, noopWakerVTable)
    }

    func testNoopWakerDoesNothing() {
        let waker = Waker.noop
        waker.wakeByRef()
        let copy = waker.clone()
        copy.wake()
        XCTAssertEqual(waker.rawWaker.data, nil)
    }

    func testBorrowedContextDoesNotTouchTheReference() {
        let counter = CountingWaker()
        let waker = counter.makeWaker()
        Context.withWaker(waker) { context in
            context.waker.wakeByRef()
            XCTAssertTrue(context.waker.willWake(waker))
        }
        XCTAssertEqual(counter.counts.drops, 0, "a borrowed context must not drop the waker")
        XCTAssertEqual(counter.counts.wakes, 1)
        _ = consume waker
        XCTAssertEqual(counter.counts.drops, 1)
    }

    func testOwningContextDropsItsWakerOnce() {
        let counter = CountingWaker()
        do {
            let context = Context(waker: counter.makeWaker())
            context.waker.wakeByRef()
        }
        XCTAssertEqual(counter.counts.drops, 1)
        XCTAssertEqual(counter.counts.wakes, 1)
    }

    func testIntoRawThenBackKeepsOneReference() {
        let counter = CountingWaker()
        let raw = counter.makeWaker().intoRaw()
        XCTAssertEqual(counter.counts.drops, 0)
        _ = Waker(unsafeRaw: raw)
        XCTAssertEqual(counter.counts.drops, 1)
    }

    /// Swift 6.3 miscompiled `waker?.clone()` after `take()` while Waker had a spare bit pattern
    /// (it called through a null vtable); Waker's layout now avoids that. This must not crash.
    func testOptionalChainingAfterTake() {
        let counter = CountingWaker()
        var stored: Waker? = counter.makeWaker()
        let taken = stored.take()
        XCTAssertTrue(taken != nil)
        let clone = stored?.clone()
        XCTAssertTrue(clone == nil)
        XCTAssertEqual(counter.counts.clones, 0)
    }

    func testWakerTargetRetainsOncePerWakerAndWakesThroughTheSubclass() {
        final class Target: WakerTarget, @unchecked Sendable {
            var wakes = 0
            override func wake() { wakes += 1 }
        }
        weak var observed: Target?
        do {
            let target = Target()
            observed = target
            let waker = target.makeWaker()
            let copy = waker.clone()
            waker.wakeByRef()
            copy.wake()          // consumes the clone's reference
            XCTAssertEqual(target.wakes, 2)
            _ = consume waker    // drops the last waker reference
        }
        XCTAssertNil(observed, "every reference a waker took was released")
    }
}
