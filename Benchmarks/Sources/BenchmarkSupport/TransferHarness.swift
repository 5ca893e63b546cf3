import CBenchBaselines
import Coil
import DequeModule
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A queue of 64-bit words as the transfer harness drives it.
public protocol TransferQueue: AnyObject, Sendable {
    func push(word: UInt64) -> Bool
    func popWord() -> UInt64?
}

extension MPMCQueue: TransferQueue where Element == UInt64 {
    @inline(__always) public func push(word: UInt64) -> Bool { tryPush(word) }
    @inline(__always) public func popWord() -> UInt64? { tryPop() }
}

/// The baseline: a `Deque` behind a `Synchronization.Mutex`, bounded by a capacity check.
public final class MutexDequeQueue: TransferQueue {
    let state: Mutex<Deque<UInt64>>
    let capacity: Int
    public init(capacity: Int) {
        self.capacity = capacity
        state = Mutex(Deque(minimumCapacity: capacity))
    }
    public func push(word: UInt64) -> Bool {
        state.withLock { deque in
            guard deque.count < capacity else { return false }
            deque.append(word)
            return true
        }
    }
    public func popWord() -> UInt64? { state.withLock { $0.popFirst() } }
}

/// What one transfer run measured.
public struct TransferResult: Sendable {
    public var seconds: Double
    public var moved: UInt64
    public var verified: Bool
    /// Cores this process kept busy during the run.
    public var coresUsed: Double
    public var millionsPerSecond: Double { Double(moved) / seconds / 1e6 }
}

let producerShift: UInt64 = 40
let spinLimit = 64

@inline(__always)
func backoff(_ k: inout Int) {
    if k < spinLimit { cbench_cpu_relax(); k += 1 } else { sched_yield() }
}

/// Per-thread slot, padded to its own cache lines.
struct WorkerSlot {
    var isProducer = false
    var id = 0
    var count: UInt64 = 0
    var consumed: UInt64 = 0
    var sum: UInt64 = 0
    var errors: UInt64 = 0
    var pad: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
}

final class TransferRun<Queue: TransferQueue>: @unchecked Sendable {
    let queue: Queue
    let producers: Int
    let ready = Atomic<Int>(0)
    let go = Atomic<Bool>(false)
    let producersDone = Atomic<Int>(0)
    let slots: UnsafeMutableBufferPointer<WorkerSlot>

    init(queue: Queue, producers: Int, threads: Int) {
        self.queue = queue
        self.producers = producers
        slots = .allocate(capacity: threads)
        slots.initialize(repeating: WorkerSlot())
    }
    deinit { slots.deallocate() }

    func work(_ index: Int) {
        ready.add(1, ordering: .relaxed)
        while !go.load(ordering: .acquiring) { sched_yield() }
        let slot = slots[index]
        if slot.isProducer {
            let base = UInt64(slot.id) << producerShift
            var sequence: UInt64 = 1
            while sequence <= slot.count {
                var k = 0
                while !queue.push(word: base | sequence) { backoff(&k) }
                sequence += 1
            }
            producersDone.add(1, ordering: .releasing)
            return
        }
        var last = [UInt64](repeating: 0, count: 64)
        var n: UInt64 = 0, sum: UInt64 = 0, errors: UInt64 = 0
        outer: while true {
            var k = 0
            var value: UInt64
            while true {
                if let popped = queue.popWord() { value = popped; break }
                if producersDone.load(ordering: .acquiring) == producers {
                    if let popped = queue.popWord() { value = popped; break }
                    break outer
                }
                backoff(&k)
            }
            n += 1
            sum &+= value
            let producer = Int(value >> producerShift)
            let sequence = value & ((1 << producerShift) - 1)
            if producer >= 64 || sequence <= last[producer] { errors += 1 } else { last[producer] = sequence }
        }
        slots[index].consumed = n
        slots[index].sum = sum
        slots[index].errors = errors
    }
}

/// Moves `items` words through `queue` with `producers` + `consumers` threads, following the
/// anchor harness's rules (../shared/anchors/queues/src/harness.h): threads interleaved P0, C0,
/// P1, C1...; on full/empty 64 pauses, then sched_yield; every item verified to arrive exactly
/// once and in per-producer order.
func runTransfer<Queue: TransferQueue>(_ queue: Queue, producers: Int, consumers: Int, items: UInt64) -> TransferResult {
    let total = producers + consumers
    let run = TransferRun(queue: queue, producers: producers, threads: total)
    let perProducer = items / UInt64(producers)
    var p = 0, c = 0
    for index in 0..<total {
        let wantProducer = (index % 2 == 0 && p < producers) || c >= consumers
        run.slots[index].isProducer = wantProducer
        run.slots[index].id = wantProducer ? p : c
        run.slots[index].count = wantProducer ? perProducer : 0
        if wantProducer { p += 1 } else { c += 1 }
    }
    let threads = (0..<total).map { index in spawnThread { run.work(index) } }
    while run.ready.load(ordering: .relaxed) < total { sched_yield() }
    let cpu0 = cbench_cpu_seconds()
    let clock = ContinuousClock()
    let start = clock.now
    run.go.store(true, ordering: .releasing)
    for thread in threads { pthread_join(thread, nil) }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    let cores = (cbench_cpu_seconds() - cpu0) / seconds

    var expect: UInt64 = 0, sum: UInt64 = 0, consumed: UInt64 = 0, errors: UInt64 = 0
    for slot in run.slots {
        if slot.isProducer {
            let m = slot.count
            expect &+= (UInt64(slot.id) << producerShift) &* m &+ m * (m + 1) / 2
        } else {
            sum &+= slot.sum; consumed += slot.consumed; errors += slot.errors
        }
    }
    let verified = sum == expect && errors == 0 && consumed == perProducer * UInt64(producers)
    return TransferResult(seconds: seconds, moved: consumed, verified: verified, coresUsed: cores)
}

/// One push then one pop on an empty queue, repeated on one thread: nanoseconds per pair.
func runPushPop<Queue: TransferQueue>(_ queue: Queue, pairs: UInt64) -> Double {
    var sum: UInt64 = 0
    for i in 1...UInt64(100_000) { _ = queue.push(word: i); sum &+= queue.popWord() ?? 0 }
    sum = 0
    let clock = ContinuousClock()
    let start = clock.now
    for i in 1...pairs {
        guard queue.push(word: i), let value = queue.popWord() else { return -1 }
        sum &+= value
    }
    let elapsed = clock.now - start
    guard sum == pairs * (pairs + 1) / 2 else { return -1 }
    return (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) * 1e-9) / Double(pairs)
}

/// The queue implementations the harness compares.
public enum QueueImplementation: String, CaseIterable, Sendable {
    /// Coil's bounded queue, driven from Swift through `MPMCQueue<UInt64>`.
    case coilSwift = "coil_mpmc_swift"
    /// Coil's bounded queue, driven from the same harness written in C.
    case coilC = "coil_mpmc_c"
    /// `Mutex<Deque<UInt64>>`.
    case mutexDeque = "mutex_deque_swift"

    /// Runs one transfer; returns nil if the implementation cannot be built.
    public func transfer(producers: Int, consumers: Int, items: UInt64, capacity: Int) -> TransferResult? {
        switch self {
        case .coilSwift:
            guard let queue = try? MPMCQueue<UInt64>(capacity: capacity) else { return nil }
            return runTransfer(queue, producers: producers, consumers: consumers, items: items)
        case .mutexDeque:
            return runTransfer(MutexDequeQueue(capacity: capacity), producers: producers, consumers: consumers, items: items)
        case .coilC:
            let cpu0 = cbench_cpu_seconds()
            let r = cbench_coil_mpmc_transfer(Int32(producers), Int32(consumers), items, capacity)
            guard r.seconds > 0 else { return nil }
            return TransferResult(seconds: r.seconds, moved: r.moved, verified: r.verified == 1,
                                  coresUsed: (cbench_cpu_seconds() - cpu0) / r.seconds)
        }
    }

    /// Single-thread push+pop pair cost in nanoseconds (negative on a verification failure).
    public func pushPopNanoseconds(pairs: UInt64, capacity: Int) -> Double {
        switch self {
        case .coilC:
            return cbench_coil_mpmc_push_pop_ns(pairs, capacity)
        case .coilSwift:
            guard let queue = try? MPMCQueue<UInt64>(capacity: capacity) else { return -1 }
            return runPushPop(queue, pairs: pairs)
        case .mutexDeque:
            return runPushPop(MutexDequeQueue(capacity: capacity), pairs: pairs)
        }
    }
}

/// Starts a joinable thread running `body`.
func spawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Start: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Start(body)).toOpaque()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, context)
    precondition(rc == 0, "pthread_create: \(rc)")
    return thread
}
