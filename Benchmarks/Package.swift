// swift-tools-version: 6.1
// SwiftKeeper's benchmarks, a package of their own so that `swift test` at the root never
// builds the benchmark harness. Run from this folder; see README.md ("Benchmarks").
import PackageDescription

let package = Package(
    name: "SwiftKeeperBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "SwiftKeeper", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "StoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "KeeperStore", package: "SwiftKeeper"),
                .product(name: "KeeperModel", package: "SwiftKeeper"),
            ],
            path: "Benchmarks/StoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "KeeperWire", package: "SwiftKeeper"),
                .product(name: "KeeperModel", package: "SwiftKeeper"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        // The log's fsync-throughput and commit-latency benchmark: a plain command, because it
        // runs a matrix (record sizes x appenders) against a directory the user names and
        // prints ratios to the raw write+fdatasync ceiling measured on the same directory.
        .executableTarget(
            name: "log-bench",
            dependencies: [
                .product(name: "KeeperLog", package: "SwiftKeeper"),
                .product(name: "KeeperModel", package: "SwiftKeeper"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/log-bench"),
    ]
)
