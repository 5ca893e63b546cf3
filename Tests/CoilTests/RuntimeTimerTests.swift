import Coil
import CoilTestSupport
import XCTest

/// Sleep, timeout and interval on both flavours, the wheel's bookkeeping, and fairness.
final class RuntimeTimerTests: XCTestCase {
    func testSleepNeverCompletesEarly() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            let clock = ContinuousClock()
            let start = clock.now
            // From blockOn (on the multi-thread flavour: a timer armed from outside the workers).
            runtime.blockOn(sleep(for: .milliseconds(30)))
            XCTAssertGreaterThanOrEqual(clock.now - start, .milliseconds(30), name)
            // From a task.
            let inside = clock.now
            let handle = runtime.spawn(sleep(for: .milliseconds(25)).map { clock.now })
            let finished = try runtime.blockOn(handle).get()
            XCTAssertGreaterThanOrEqual(finished - inside, .milliseconds(25), name)
            XCTAssertEqual(runtime.metrics.totalTimers, 0, name)
            runtime.shutdown()
        }
    }

    func testThousandSleepsOfMixedLengthsAllFire() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            let fired = Counter()
            let results = runtime.blockOn(JoinAll(count: 1000) { index in
                runtime.spawn(sleep(for: .milliseconds(index % 97)).map { fired.increment() })
            })
            XCTAssertEqual(results.count, 1000, name)
            XCTAssertEqual(fired.value, 1000, name)
            XCTAssertEqual(runtime.metrics.totalTimers, 0, name)
            runtime.shutdown()
        }
    }

    func testDroppedSleepLeavesTheWheel() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            // A task that arms a one-hour sleep, then is aborted.
            let handle = runtime.spawn(sleep(for: .seconds(3600)))
            runtime.blockOn(sleep(for: .milliseconds(20)))
            XCTAssertEqual(runtime.metrics.totalTimers, 1, name)
            handle.abort()
            let result = runtime.blockOn(handle)
            XCTAssertTrue(result.isCancelled, name)
            XCTAssertTrue(eventually { runtime.metrics.totalTimers == 0 }, "the aborted sleep was unlinked (\(name))")
            runtime.shutdown()
        }
    }

    func testTimeoutFailsWhenTheInnerFutureIsTooSlow() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            let slow = runtime.blockOn(runtime.spawn(timeout(.milliseconds(20), pending(Int.self))))
            XCTAssertEqual(try slow.get(), .failure(TimeoutError()), name)
            let quick = runtime.blockOn(timeout(.seconds(10), ready(5)))
            XCTAssertEqual(quick, .success(5), name)
            XCTAssertEqual(runtime.metrics.totalTimers, 0, "the quick timeout never armed or was disarmed (\(name))")
            runtime.shutdown()
        }
    }

    func testTimerEntriesOutliveShutdownCleanly() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            let results = Counter()
            for _ in 0..<100 { _ = runtime.spawn(sleep(for: .seconds(60)).map { results.increment() }) }
            runtime.blockOn(sleep(for: .milliseconds(20)))
            XCTAssertEqual(runtime.metrics.aliveTasks, 100, name)
            XCTAssertTrue(runtime.shutdown(), name)
            XCTAssertEqual(runtime.metrics.aliveTasks, 0, name)
            XCTAssertEqual(runtime.metrics.totalTimers, 0, name)
            XCTAssertEqual(results.value, 0, name)
        }
    }

    func testIntervalBurstCatchesUpAndSkipDoesNot() throws {
        let runtime = try Runtime.Builder.currentThread().build()
        defer { runtime.shutdown() }
        let clock = ContinuousClock()
        let burst = interval(every: .milliseconds(10), missedTicks: .burst)
        _ = runtime.blockOn(burst.tick())  // the first tick is immediate
        // Miss about five ticks by blocking the thread.
        usleep(55_000)
        var start = clock.now
        for _ in 0..<4 { _ = runtime.blockOn(burst.tick()) }
        XCTAssertLessThan(clock.now - start, .milliseconds(10), "missed ticks fire back to back")

        // Skip: one late tick at once, then back on the 10 ms grid (about 60, 70, 80 ms).
        let skip = interval(every: .milliseconds(10), missedTicks: .skip)
        _ = runtime.blockOn(skip.tick())
        usleep(55_000)
        start = clock.now
        for _ in 0..<4 { _ = runtime.blockOn(skip.tick()) }
        XCTAssertGreaterThanOrEqual(clock.now - start, .milliseconds(20), "skip does not burst")

        // reset: the next tick is a full period from now, even if one was due.
        usleep(15_000)
        skip.reset()
        start = clock.now
        _ = runtime.blockOn(skip.tick())
        XCTAssertGreaterThanOrEqual(clock.now - start, .milliseconds(10), "reset restarts the schedule")

        let delay = interval(every: .milliseconds(10), missedTicks: .delay)
        _ = runtime.blockOn(delay.tick())
        start = clock.now
        _ = runtime.blockOn(delay.tick())
        _ = runtime.blockOn(delay.tick())
        XCTAssertGreaterThanOrEqual(clock.now - start, .milliseconds(20))
    }

    /// A task that always wakes itself never returns pending on its own; the budget and the
    /// LIFO cap must still let other tasks and timers run.
    func testSelfWakingTaskDoesNotStarveOthersOrTimers() throws {
        for (name, make) in RuntimeBasicsTests.flavors {
            let runtime = try make()
            let stop = Counter()
            let spins = Counter()
            for _ in 0..<runtime.metrics.workerCount {
                _ = runtime.spawn(pollFn { context -> Poll<Void> in
                    if stop.value > 0 { return .ready(()) }
                    spins.increment()
                    context.waker.wakeByRef()
                    return .pending
                })
            }
            let others = runtime.blockOn(JoinAll(count: 100) { index in
                runtime.spawn(sleep(for: .milliseconds(index % 10)).map { index })
            })
            XCTAssertEqual(others.count, 100, name)
            XCTAssertGreaterThan(spins.value, 0, name)
            stop.increment()
            runtime.shutdown()
        }
    }

    /// A future that never returns pending on its own but polls Coil futures is preempted by the
    /// budget: a sibling task on the same current-thread worker still runs.
    func testBudgetPreemptsAFutureThatIsAlwaysReady() throws {
        let runtime = try Runtime.Builder.currentThread().build()
        defer { runtime.shutdown() }
        let sibling = Counter()
        let preemptions = Counter()
        let greedy = runtime.spawn(pollFn { context -> Poll<Int> in
            // Polls already-elapsed sleeps in a loop until the sibling ran.
            var polls = 0
            while sibling.value == 0 {
                var done = sleep(for: .zero)
                guard case .ready = done.poll(&context) else {
                    preemptions.increment()
                    return .pending
                }
                polls += 1
            }
            return .ready(polls)
        })
        _ = runtime.spawn(pollFn { _ -> Poll<Void> in
            sibling.increment()
            return .ready(())
        })
        let result = runtime.blockOn(greedy)
        XCTAssertNoThrow(try result.get())
        XCTAssertGreaterThanOrEqual(preemptions.value, 1)
    }
}

/// Polls `condition` for up to `limit`; whether it became true.
func eventually(within limit: Duration = .seconds(5), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + limit
    while clock.now < end {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}
