import Coil
import Synchronization
import CoilTestSupport
import XCTest

/// Many threads on tiny queues: every item is received exactly once and each producer's items
/// arrive in the order it pushed them.
final class MPMCQueueStressTests: XCTestCase {
    static let producerShift: UInt64 = 40

    /// Receives on `consumers` threads until `total` items are in, checking per-producer order,
    /// then checks every (producer, sequence) was seen exactly once.
    static func verifyExactlyOnce(producers: Int, consumers: Int, perProducer: Int,
                                  push: @escaping @Sendable (UInt64) -> Void,
                                  pop: @escaping @Sendable () -> UInt64?) {
        let perProducer = perProducer * stressScale
        let total = producers * perProducer
        let shared = StressLog(consumers: consumers)
        runThreads(producers + consumers) { index in
            if index < producers {
                let base = UInt64(index) << producerShift
                for sequence in 1...perProducer { push(base | UInt64(sequence)) }
                return
            }
            var log: [UInt64] = []
            var last = [UInt64](repeating: 0, count: producers)
            var orderErrors = 0
            while shared.received.load(ordering: .acquiring) < total {
                guard let value = pop() else { sched_yield(); continue }
                let producer = Int(value >> producerShift)
                let sequence = value & ((1 << producerShift) - 1)
                if producer >= producers || sequence <= last[producer] { orderErrors += 1 } else { last[producer] = sequence }
                log.append(value)
                shared.received.add(1, ordering: .releasing)
            }
            // Each consumer writes only its own slot; runThreads' join publishes it.
            shared.logs[index - producers] = log
            shared.orderErrors.add(orderErrors, ordering: .relaxed)
        }
        XCTAssertEqual(shared.received.load(ordering: .acquiring), total)
        XCTAssertEqual(shared.orderErrors.load(ordering: .relaxed), 0, "per-producer FIFO order")
        var seen = [UInt8](repeating: 0, count: total)
        for consumer in 0..<consumers {
            for value in shared.logs[consumer] {
                let producer = Int(value >> producerShift)
                let sequence = Int(value & ((1 << producerShift) - 1))
                let slot = producer * perProducer + sequence - 1
                if slot >= 0 && slot < total { seen[slot] &+= 1 }
            }
        }
        let wrong = seen.indices.filter { seen[$0] != 1 }
        XCTAssertEqual(wrong.count, 0, "items not received exactly once, e.g. \(wrong.prefix(5))")
    }

    func stress(capacity: Int, producers: Int, consumers: Int, perProducer: Int) throws {
        let queue = try MPMCQueue<UInt64>(capacity: capacity)
        Self.verifyExactlyOnce(
            producers: producers, consumers: consumers, perProducer: perProducer,
            push: { value in while !queue.tryPush(value) { sched_yield() } },
            pop: { queue.tryPop() })
        XCTAssertNil(queue.tryPop(), "nothing left over")
    }

    func testCapacity2With4Producers4Consumers() throws {
        try stress(capacity: 2, producers: 4, consumers: 4, perProducer: 20_000)
    }

    func testCapacity4With3Producers5Consumers() throws {
        try stress(capacity: 4, producers: 3, consumers: 5, perProducer: 20_000)
    }

    func testCapacity4With6Producers2Consumers() throws {
        try stress(capacity: 4, producers: 6, consumers: 2, perProducer: 10_000)
    }

    func testCapacity1024With2Producers2Consumers() throws {
        try stress(capacity: 1024, producers: 2, consumers: 2, perProducer: 100_000)
    }
}

/// What the consumer threads of a stress run share: a received counter and one log per consumer.
final class StressLog: @unchecked Sendable {
    let received = Atomic<Int>(0)
    let orderErrors = Atomic<Int>(0)
    let logs: UnsafeMutableBufferPointer<[UInt64]>
    init(consumers: Int) {
        logs = .allocate(capacity: consumers)
        logs.initialize(repeating: [])
    }
    deinit {
        _ = logs.deinitialize()
        logs.deallocate()
    }
}
