import Coil
import XCTest

/// The runtime programs of README.md ("The runtime"), line for line, with the printed values
/// checked: if the README's API drifts, this fails.
final class ReadmeRuntimeExamplesTests: XCTestCase {
    func testRuntimeTour() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }

        let handle = runtime.spawn(sleep(for: .milliseconds(10)).map { 6 * 7 })
        let answer = runtime.blockOn(handle)                       // .success(42) after 10 ms

        let channel = Oneshot.channel(of: String.self)             // one allocation, two ~Copyable halves
        let tx = channel.sender
        _ = runtime.spawnBlocking { tx.send("from the blocking pool") }
        let message = runtime.blockOn(channel.receiver)            // .success("from the blocking pool")

        let slow = runtime.blockOn(timeout(.milliseconds(5), pending(Int.self)))   // .failure(TimeoutError())
        XCTAssertEqual(try answer.get(), 42)
        XCTAssertEqual(try message.get(), "from the blocking pool")
        XCTAssertThrowsError(try slow.get()) { XCTAssertTrue($0 is TimeoutError, "\($0)") }
    }

    func testAsyncTour() throws {
        let runtime = try Runtime.Builder.multiThread().workerThreads(2).build()
        defer { runtime.shutdown() }
        let (count, joined) = runtime.blockOn { () async -> (Int, String?) in
            let mutex = AsyncMutex(0)
            return await Task(executorPreference: runtime) {
                await sleep(for: .milliseconds(1)).value()
                await mutex.withLock { $0 += 1 }
                let joined = await runtime.spawn(ready("a Coil task")).value()   // .success("a Coil task")
                return (await mutex.withLock { $0 }, try? joined.get())
            }.value
        }
        XCTAssertEqual(count, 1)
        XCTAssertEqual(joined, "a Coil task")
    }
}
