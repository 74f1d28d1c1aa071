// swift-tools-version: 6.1
// The KeeperWire fuzz target, a package of its own so that the root build never needs
// -sanitize=fuzzer. Build and run from this folder (see README.md):
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address
//   .build/debug/WireFuzz Corpus -max_total_time=600
import PackageDescription

let package = Package(
    name: "SwiftKeeperFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "SwiftKeeper", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "CFuzzerDriver", path: "Sources/CFuzzerDriver"),
        .executableTarget(
            name: "WireFuzz",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "KeeperWire", package: "SwiftKeeper"),
                .product(name: "KeeperModel", package: "SwiftKeeper"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/WireFuzz",
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
