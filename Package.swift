// swift-tools-version: 6.1
// SwiftKeeper: a ZooKeeper-compatible coordination service.
// Module layout and dependency direction: see ARCHITECTURE in the project docs (README.md).
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "SwiftKeeper",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "KeeperModel", targets: ["KeeperModel"]),
        .library(name: "KeeperWire", targets: ["KeeperWire"]),
        .library(name: "KeeperLMDB", targets: ["KeeperLMDB"]),
        .library(name: "KeeperStore", targets: ["KeeperStore"]),
        .library(name: "KeeperLog", targets: ["KeeperLog"]),
        .library(name: "KeeperZAB", targets: ["KeeperZAB"]),
        .library(name: "KeeperServer", targets: ["KeeperServer"]),
        .executable(name: "swiftkeeper", targets: ["SwiftKeeper"]),
        .executable(name: "keeperctl", targets: ["keeperctl"]),
        .executable(name: "keeper-bench", targets: ["keeper-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: [
        // System libraries (apt providers for a fresh Debian machine).
        .systemLibrary(
            name: "CLMDB", path: "Modules/CLMDB", pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Modules/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        // The server's allocator on Linux: glibc's malloc cost 7 to 12% more CPU per write (see
        // BENCHMARKS.md); only the `swiftkeeper` executable links it, never the libraries.
        .systemLibrary(
            name: "CJemalloc", path: "Modules/CJemalloc", pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]),

        // CRC-32 by carry-less multiplication, for the log's checksums (zlib's crc32 is the
        // fallback and the reference: the values are the same).
        .target(name: "CCRC32", path: "Modules/CCRC32"),

        // Cores.
        .target(name: "KeeperModel", path: "Modules/KeeperModel", swiftSettings: strict),
        .target(
            name: "KeeperWire",
            dependencies: ["KeeperModel", .product(name: "NIOCore", package: "swift-nio")],
            path: "Modules/KeeperWire", swiftSettings: strict),
        .target(name: "KeeperLMDB", dependencies: ["CLMDB"], path: "Modules/KeeperLMDB", swiftSettings: strict),
        .target(
            name: "KeeperStore", dependencies: ["KeeperModel", "KeeperLMDB", "CZlib"],
            path: "Modules/KeeperStore", swiftSettings: strict),
        .target(
            name: "KeeperLog", dependencies: ["KeeperModel", "CZlib", "CCRC32"],
            path: "Modules/KeeperLog", swiftSettings: strict),
        .target(name: "KeeperZAB", dependencies: ["KeeperModel"], path: "Modules/KeeperZAB", swiftSettings: strict),
        .target(
            name: "KeeperBackup",
            dependencies: [
                "KeeperModel", "KeeperStore", "KeeperLog", "KeeperWire", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Modules/KeeperBackup", swiftSettings: strict),
        .target(
            name: "KeeperServer",
            dependencies: [
                "KeeperModel", "KeeperWire", "KeeperLMDB", "KeeperStore", "KeeperLog", "KeeperZAB", "KeeperBackup", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            path: "Modules/KeeperServer", swiftSettings: strict),

        // Executables.
        .executableTarget(
            name: "SwiftKeeper",
            dependencies: [
                "KeeperServer",
                .target(name: "CJemalloc", condition: .when(platforms: [.linux])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Modules/SwiftKeeper", swiftSettings: strict),
        .executableTarget(
            name: "keeperctl",
            dependencies: [
                "KeeperModel", "KeeperStore", "KeeperLog", "KeeperWire", "KeeperBackup",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/keeperctl", swiftSettings: strict),
        .executableTarget(
            name: "keeper-bench",
            dependencies: [
                "KeeperModel", "KeeperWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/keeper-bench", swiftSettings: strict),

        // Tests: one target per module.
        .testTarget(name: "KeeperModelTests", dependencies: ["KeeperModel"], path: "Tests/KeeperModelTests", swiftSettings: strict),
        .testTarget(
            name: "KeeperWireTests",
            dependencies: [
                "KeeperWire", "KeeperModel", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Tests/KeeperWireTests", resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "KeeperLMDBTests", dependencies: ["KeeperLMDB"], path: "Tests/KeeperLMDBTests", swiftSettings: strict),
        .testTarget(
            name: "KeeperStoreTests", dependencies: ["KeeperStore", "KeeperModel", "StoreCrashHelper"],
            path: "Tests/KeeperStoreTests", swiftSettings: strict),
        // Applies batches until killed: KeeperStoreTests' crash-safety test SIGKILLs it.
        .executableTarget(
            name: "StoreCrashHelper", dependencies: ["KeeperStore", "KeeperModel"], path: "Tests/StoreCrashHelper",
            swiftSettings: strict),
        .testTarget(name: "KeeperLogTests", dependencies: ["KeeperLog", "KeeperModel"], path: "Tests/KeeperLogTests", swiftSettings: strict),
        .testTarget(
            name: "KeeperBackupTests", dependencies: ["KeeperBackup", "KeeperStore", "KeeperLog", "KeeperModel", "KeeperWire"],
            path: "Tests/KeeperBackupTests", swiftSettings: strict),
        .testTarget(name: "KeeperZABTests", dependencies: ["KeeperZAB", "KeeperModel"], path: "Tests/KeeperZABTests", swiftSettings: strict),
        .testTarget(name: "SimulationTests", dependencies: ["KeeperZAB", "KeeperModel"], path: "Tests/Simulation", swiftSettings: strict),
        .testTarget(
            name: "KeeperServerTests", dependencies: ["KeeperServer", "KeeperBackup", "KeeperStore", "KeeperLog", "KeeperModel"],
            path: "Tests/KeeperServerTests", swiftSettings: strict),
    ]
)
