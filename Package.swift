// swift-tools-version: 6.1
import PackageDescription

// Library products only. Benchmarks (Benchmarks/) and fuzzers (Fuzz/) are packages of their own
// that depend on this one, so a server that depends on Coil never resolves their dependencies.
let package = Package(
    name: "Coil",
    products: [
        .library(name: "Coil", targets: ["Coil"]),
        .library(name: "CoilCore", targets: ["CoilCore"]),
        // The C core on its own, for C harnesses that link the queues and the ring driver.
        .library(name: "CCoil", targets: ["CCoil"]),
    ],
    targets: [
        // The C core: io_uring driver and lock-free queues. Links the system liburing (liburing-dev).
        .target(
            name: "CCoil",
            path: "CSources/CCoil",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("uring")]
        ),
        // CoilCore's C support: the built-in waker vtables in static storage and per-thread task
        // ID blocks (coil_core_vtables.h and coil_task_id.h say why C).
        .target(name: "CCoilCore", path: "CSources/CCoilCore"),
        // Poll/Future/Waker and the task: knows nothing of threads, rings or sockets.
        .target(name: "CoilCore", dependencies: ["CCoilCore"]),
        .target(name: "Coil", dependencies: ["CCoil", "CoilCore"]),
        // Example servers and tools on the public API only.
        .executableTarget(name: "coil-echo", dependencies: ["Coil"], path: "Sources/Examples/coil-echo"),
        .executableTarget(name: "coil-echo-load", dependencies: ["Coil"], path: "Sources/Examples/coil-echo-load"),
        // Thread helpers shared by the test targets (not a product).
        .target(name: "CoilTestSupport", path: "Tests/CoilTestSupport"),
        .testTarget(name: "CoilCoreTests", dependencies: ["CoilCore", "CoilTestSupport"]),
        .testTarget(name: "CoilTests", dependencies: ["Coil", "CCoil", "CoilTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
