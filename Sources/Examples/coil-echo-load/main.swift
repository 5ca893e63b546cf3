// coil-echo-load: a closed-loop echo load client on Coil.
//
//   coil-echo-load [--host 127.0.0.1] [--port 7000] [--connections 64] [--size 64]
//                  [--duration 5] [--warmup 0.5] [--workers 1]
//
// Each connection sends one message of --size bytes, waits until all of it came back (every byte
// checked), and sends the next. Prints round trips per second and the round-trip latency
// percentiles of the measured window. Exits non-zero if a byte came back wrong or a connection
// failed.
import Coil
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

func printError(_ message: String) {
    let line = Array("coil-echo-load: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    printError(message)
    exit(2)
}

struct Config: Sendable {
    var host = "127.0.0.1", port: UInt16 = 7000, connections = 64, size = 64
    var duration = 5.0, warmup = 0.5, workers = 1

    static func parse() -> Config {
        var config = Config()
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        func number<T: LosslessStringConvertible>(_ text: String, _ flag: String) -> T {
            guard let value = T(text) else { fail("\(flag): not a number: \(text)") }
            return value
        }
        while let flag = arguments.next() {
            guard let value = arguments.next() else { fail("\(flag) needs a value") }
            switch flag {
            case "--host": config.host = value
            case "--port": config.port = number(value, flag)
            case "--connections": config.connections = number(value, flag)
            case "--size": config.size = number(value, flag)
            case "--duration": config.duration = number(value, flag)
            case "--warmup": config.warmup = number(value, flag)
            case "--workers": config.workers = number(value, flag)
            default: fail("unknown argument \(flag)")
            }
        }
        guard config.connections > 0, config.size > 0, config.duration > 0 else { fail("connections, size and duration must be positive") }
        return config
    }
}
let config = Config.parse()

/// Round-trip latency histogram: 1 µs buckets below 2 ms, 64 µs buckets above (to ~130 ms).
struct Histogram {
    var buckets = [Int](repeating: 0, count: 4096)
    var count = 0

    mutating func record(microseconds: Int) {
        let index = microseconds < 2048 ? microseconds : min(4095, 2048 + (microseconds - 2048) / 64)
        buckets[index] += 1
        count += 1
    }

    mutating func merge(_ other: Histogram) {
        for i in 0..<buckets.count { buckets[i] += other.buckets[i] }
        count += other.count
    }

    func percentile(_ p: Double) -> Int {
        let target = Int((Double(count) * p).rounded(.up))
        var seen = 0
        for (index, n) in buckets.enumerated() {
            seen += n
            if seen >= target { return index < 2048 ? index : 2048 + (index - 2048) * 64 }
        }
        return 0
    }
}

let runtime: Runtime
do { runtime = try Runtime.Builder.multiThread().workerThreads(config.workers).threadName("echo-load").build() } catch { fail("\(error)") }
let address: SocketAddress
do { address = try SocketAddress(host: config.host, port: config.port) } catch { fail("\(error)") }

let nanosecondsPerSecond = 1_000_000_000.0
let startTime = ContinuousClock.now
let measureFrom = startTime + .nanoseconds(Int64(config.warmup * nanosecondsPerSecond))
let measureUntil = measureFrom + .nanoseconds(Int64(config.duration * nanosecondsPerSecond))

struct ConnectionResult: Sendable {
    var histogram: [Int]
    var roundTrips: Int
    var error: String?
}

func drive(_ runtime: Runtime, _ address: SocketAddress, _ config: Config,
           from measureFrom: ContinuousClock.Instant, until measureUntil: ContinuousClock.Instant) async -> [ConnectionResult] {
    let size = config.size
    return await withTaskGroup(of: ConnectionResult.self) { group in
        for index in 0..<config.connections {
            group.addTask(executorPreference: runtime) {
                var histogram = Histogram()
                do throws(IOError) {
                    let stream = try await TCPStream.connect(to: address, timeout: .seconds(5))
                    try stream.setNoDelay(true)
                    let message = IOBuffer((0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index) })
                    let reply = IOBuffer(capacity: size)
                    while true {
                        let sentAt = ContinuousClock.now
                        if sentAt >= measureUntil { break }
                        try await stream.writeAll(message)
                        reply.clear()
                        while reply.count < size {
                            if try await stream.read(into: reply, timeout: .seconds(10)) == 0 {
                                return ConnectionResult(histogram: [], roundTrips: 0, error: "server closed the connection")
                            }
                        }
                        let matches = reply.withUnsafeBytes { got in message.withUnsafeBytes { memcmp(got.baseAddress!, $0.baseAddress!, size) == 0 } }
                        if !matches { return ConnectionResult(histogram: [], roundTrips: 0, error: "echoed bytes differ") }
                        if sentAt >= measureFrom {
                            let elapsed = ContinuousClock.now - sentAt
                            histogram.record(microseconds: Int(elapsed.components.attoseconds / 1_000_000_000_000) + Int(elapsed.components.seconds) * 1_000_000)
                        }
                    }
                    try await stream.close()
                } catch {
                    return ConnectionResult(histogram: [], roundTrips: 0, error: "\(error)")
                }
                return ConnectionResult(histogram: histogram.buckets, roundTrips: histogram.count, error: nil)
            }
        }
        var results: [ConnectionResult] = []
        for await result in group { results.append(result) }
        return results
    }
}
let outcome = runtime.blockOn { [runtime, address, config, measureFrom, measureUntil] () async -> [ConnectionResult] in
    await drive(runtime, address, config, from: measureFrom, until: measureUntil)
}
runtime.shutdown()

var total = Histogram()
var failures = 0
for result in outcome {
    if let error = result.error {
        failures += 1
        if failures <= 3 { printError("connection failed: \(error)") }
        continue
    }
    total.merge(Histogram(buckets: result.histogram, count: result.roundTrips))
}
let rate = Double(total.count) / config.duration
print("RESULT connections=\(config.connections) size=\(config.size) round_trips=\(total.count) rps=\(Int(rate)) p50_us=\(total.percentile(0.50)) p99_us=\(total.percentile(0.99)) failed_connections=\(failures)")
exit(failures == 0 ? 0 : 1)
