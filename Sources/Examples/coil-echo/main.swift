// coil-echo: a TCP echo server on Coil's public API.
//
//   coil-echo [--host 127.0.0.1] [--port 7000] [--workers N] [--buffer 16384] [--reuse-port]
//             [--style futures|multishot|linked|async] [--metrics]
//
// Each connection is served by a Coil task running a hand-written future (`--style futures`,
// the default: EchoConnection.swift), or by a Swift task on the runtime's executor awaiting the
// async API (`--style async`: `serve` below). Both use the public API only. `--style multishot`
// reads through a receive stream (one multishot receive per connection); `--style linked` sends
// each reply linked with the next read (writeThenRead): one wake per round trip.
//
// Serves until SIGINT or SIGTERM, then shuts down gracefully: stops accepting, lets connections
// in flight finish (up to 5 seconds), closes everything and prints what it served (and, with
// `--metrics`, the runtime's counters: polls, steals, parks per worker).
import Coil
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var host = "127.0.0.1"
    var port: UInt16 = 7000
    var workers = 0
    var bufferSize = 16384
    var reusePort = false
    var style = Style.futures
    var metrics = false

    enum Style: String { case futures, multishot, linked, async }

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var iterator = arguments.dropFirst().makeIterator()
        func value(_ flag: String) -> String {
            guard let value = iterator.next() else { fail("\(flag) needs a value") }
            return value
        }
        while let argument = iterator.next() {
            switch argument {
            case "--host": options.host = value(argument)
            case "--port": options.port = UInt16(value(argument)) ?? { fail("--port: not a port number") }()
            case "--workers": options.workers = Int(value(argument)) ?? { fail("--workers: not a number") }()
            case "--buffer": options.bufferSize = Int(value(argument)) ?? { fail("--buffer: not a number") }()
            case "--reuse-port": options.reusePort = true
            case "--metrics": options.metrics = true
            case "--style": options.style = Style(rawValue: value(argument)) ?? { fail("--style: futures, multishot, linked or async") }()
            case "-h", "--help":
                print("usage: coil-echo [--host H] [--port P] [--workers N (0: one per core)] [--buffer BYTES] [--reuse-port] [--style futures|multishot|linked|async] [--metrics]")
                exit(0)
            default: fail("unknown argument \(argument)")
            }
        }
        return options
    }
}

func printError(_ message: String) {
    let line = Array("coil-echo: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    printError(message)
    exit(2)
}

/// Connections being served, and round trips echoed.
final class Stats: Sendable {
    let active = Atomic<Int>(0)
    let served = Atomic<Int>(0)
    let bytes = Atomic<Int>(0)
    let errors = Atomic<Int>(0)

    /// An error ended a connection: counted; printed unless it is the peer's doing.
    func ended(by error: IOError) {
        // ECONNRESET and friends: the peer's business; this connection ends, the server goes on.
        if error.errno != ECONNRESET && error.errno != EPIPE && error.errno != ECANCELED {
            printError("connection: \(error)")
        }
        errors.add(1, ordering: .relaxed)
    }
}

/// Echoes until the peer closes or an error ends the connection.
func serve(_ stream: TCPStream, bufferSize: Int, stats: Stats) async {
    let buffer = IOBuffer(capacity: bufferSize)
    var echoed = 0
    do throws(IOError) {
        try stream.setNoDelay(true)
        while true {
            let n = try await stream.read(into: buffer)
            if n == 0 { break }
            try await stream.writeAll(buffer)
            echoed += n
            buffer.clear()
        }
        try await stream.close()
    } catch {
        stats.ended(by: error)
    }
    stats.bytes.add(echoed, ordering: .relaxed)
    stats.served.add(1, ordering: .relaxed)
    stats.active.subtract(1, ordering: .relaxed)
}

let options = Options.parse(CommandLine.arguments)

// SIGINT/SIGTERM are blocked before any thread exists (threads inherit the mask) and taken by
// sigwait on a blocking-pool thread.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGINT)
sigaddset(&signals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &signals, nil)
let waitedSignals = signals

let builder = options.workers == 0 ? Runtime.Builder.multiThread() : Runtime.Builder.multiThread().workerThreads(options.workers)
let runtime: Runtime
do {
    runtime = try builder.threadName("coil-echo").build()
} catch {
    fail("\(error)")
}
let stats = Stats()

let listener: TCPListener
do {
    listener = try TCPListener.bind(host: options.host, port: options.port, reusePort: options.reusePort)
} catch {
    fail("\(error)")
}
print("coil-echo listening on \(listener.localAddress) with \(runtime.metrics.workerCount) workers (\(options.style) style)")
fflush(nil)

// Inside a `do` block the channel's halves are locals, which can be moved (a top-level `let` is a
// global, and a noncopyable global cannot be consumed).
do {
    let signalChannel = Oneshot.channel(of: Int32.self)
    let signalSender = signalChannel.sender
    _ = runtime.spawnBlocking {
        var set = waitedSignals
        var signal: Int32 = 0
        sigwait(&set, &signal)
        _ = signalSender.send(signal)
    }

    let acceptLoop = Task(executorPreference: runtime) {
        while true {
            do throws(IOError) {
                let stream = try await listener.accept()
                stats.active.add(1, ordering: .relaxed)
                switch options.style {
                case .futures:
                    runtime.spawn(EchoConnection(stream: stream, bufferSize: options.bufferSize, mode: .plain, stats: stats))
                case .multishot:
                    runtime.spawn(EchoConnection(stream: stream, bufferSize: options.bufferSize, mode: .multishot, stats: stats))
                case .linked:
                    runtime.spawn(EchoConnection(stream: stream, bufferSize: options.bufferSize, mode: .linked, stats: stats))
                case .async:
                    Task(executorPreference: runtime) { await serve(stream, bufferSize: options.bufferSize, stats: stats) }
                }
            } catch {
                if error.errno == EBADF { return }  // the listener closed: shutting down
                printError("accept: \(error)")
                if error.errno == EMFILE || error.errno == ENFILE { await sleep(for: .milliseconds(10)).value() }
            }
        }
    }
    let signal = (try? runtime.blockOn(signalChannel.receiver).get()) ?? SIGTERM
    print("coil-echo: signal \(signal): no longer accepting; \(stats.active.load(ordering: .relaxed)) connections in flight")
    listener.close()
    runtime.blockOn {
        await acceptLoop.value
        // Finish in-flight connections (up to 5 s).
        let deadline = ContinuousClock.now + .seconds(5)
        while stats.active.load(ordering: .relaxed) > 0 && ContinuousClock.now < deadline {
            await sleep(for: .milliseconds(10)).value()
        }
    }
}
if options.metrics { print("coil-echo: \(runtime.metrics)") }
let clean = runtime.shutdown(timeout: .seconds(5))
print("coil-echo: served \(stats.served.load(ordering: .relaxed)) connections, \(stats.bytes.load(ordering: .relaxed)) bytes, \(stats.errors.load(ordering: .relaxed)) ended by errors; shutdown \(clean ? "clean" : "timed out")")
