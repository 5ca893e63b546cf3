import CoilCore
import XCTest

final class PollTests: XCTestCase {
    func testReadyAndPending() {
        let ready: Poll<Int> = .ready(3)
        let pending: Poll<Int> = .pending
        XCTAssertTrue(ready.isReady)
        XCTAssertFalse(pending.isReady)
        if case .ready(let value) = ready.map({ $0 * 2 }) { XCTAssertEqual(value, 6) } else { XCTFail("map lost the value") }
        if case .ready = pending.map({ $0 * 2 }) { XCTFail("map made a pending poll ready") }
    }
}
