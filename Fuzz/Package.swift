// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for Coil. A package of its own (depending on ../) because fuzz targets are built
// with -sanitize=fuzzer,address, which the main package's `swift test` must not see.
//
//   swift build -c release --product task-fuzzer -Xswiftc -sanitize=fuzzer,address
//   SWIFT_BACKTRACE=enable=no .build/release/task-fuzzer corpus/task -max_total_time=600
//   swift run -c release task-fuzz-replay corpus/task     # replay without sanitizers
let package = Package(
    name: "CoilFuzz",
    dependencies: [.package(name: "Coil", path: "../")],
    targets: [
        // Declares libFuzzer's LLVMFuzzerRunDriver so a Swift main can hand control to it.
        .target(name: "CFuzzDriver", path: "Sources/CFuzzDriver"),
        // The byte-string interpreter: operations from several actors on real tasks.
        .target(name: "TaskFuzzing", dependencies: [.product(name: "CoilCore", package: "Coil")]),
        .executableTarget(name: "task-fuzzer", dependencies: ["TaskFuzzing", "CFuzzDriver"]),
        .executableTarget(name: "task-fuzz-replay", dependencies: ["TaskFuzzing"]),
    ],
    swiftLanguageModes: [.v6]
)
