// swift-tools-version: 6.1
import PackageDescription

// Coil's benchmarks: a package of their own so that Coil's library products never depend on
// package-benchmark. `swift run -c release coil-demo` prints the short table (`make demo`);
// `swift package benchmark` runs the package-benchmark suites (`make bench`).
let package = Package(
    name: "CoilBenchmarks",
    dependencies: [
        .package(name: "Coil", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // Baselines written in C: the same queue transfer harness, and a raw liburing NOP loop.
        .target(
            name: "CBenchBaselines",
            dependencies: [.product(name: "CCoil", package: "Coil")],
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("uring"), .linkedLibrary("pthread")]
        ),
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "Coil", package: "Coil"),
                .product(name: "DequeModule", package: "swift-collections"),
                "CBenchBaselines",
            ]
        ),
        .executableTarget(name: "coil-demo", dependencies: ["BenchmarkSupport"]),
        // The Tokio anchor's scheduler shapes on Coil (scripts/compare-tokio.sh runs both).
        .executableTarget(name: "coil-sched-bench", dependencies: ["BenchmarkSupport"]),
        .executableTarget(
            name: "CoilBenchmarks",
            dependencies: [.product(name: "Benchmark", package: "benchmark"), "BenchmarkSupport"],
            path: "Benchmarks/CoilBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
