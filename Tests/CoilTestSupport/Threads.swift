// Helpers shared by the test targets: threads started together, and the stress scale knob.

#if canImport(Glibc)
import Glibc
#endif

/// Multiplies the work of stress tests: `COIL_STRESS_SCALE=50 swift test --filter Stress` (or
/// `make stress`) runs them fifty times longer than the quick default that CI runs.
public let stressScale: Int = {
    guard let text = getenv("COIL_STRESS_SCALE"), let scale = Int(String(cString: text)), scale > 0 else { return 1 }
    return scale
}()

/// Threads started together; `join()` waits for all of them.
public struct ThreadGroup {
    public var threads: [pthread_t]
    public func join() { for thread in threads { pthread_join(thread, nil) } }
}

/// Starts `count` threads running `body(index)`; returns at once.
public func startThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> ThreadGroup {
    final class Start: @unchecked Sendable {
        let index: Int
        let body: @Sendable (Int) -> Void
        init(_ index: Int, _ body: @escaping @Sendable (Int) -> Void) { self.index = index; self.body = body }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        var thread = pthread_t()
        let start = Unmanaged.passRetained(Start(index, body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            start.body(start.index)
            return nil
        }, start)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        threads.append(thread)
    }
    return ThreadGroup(threads: threads)
}

/// Runs `count` threads of `body(index)` at once and waits for all of them.
public func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    startThreads(count, body).join()
}

/// Hands a value the test synchronizes itself (by joining threads) to another thread.
public struct SendableBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

