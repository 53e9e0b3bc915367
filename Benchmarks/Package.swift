// swift-tools-version: 6.1
// Micro benchmarks (package-benchmark) and the drivers `make bench` runs. A package of its own,
// so the root package's `swift build` and `swift test` (CI) never build package-benchmark.
//
//   swift package benchmark                         all micro benchmarks (or `make bench-micro`)
//   swift build -c release --product bench-batch-write
import PackageDescription

import struct Foundation.URL

let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

/// The root package's identity: SwiftPM names a path dependency after its directory (a clone
/// or worktree may be called anything).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent.lowercased()

func chatService(_ product: String) -> Target.Dependency {
    .product(name: product, package: rootIdentity)
}

let package = Package(
    name: "chat-service-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bench-batch-write", targets: ["BenchBatchWrite"]),
    ],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Writes batches through the real ParticipantsCache.storeBatch to a Redis; prints entries/s.
        .executableTarget(
            name: "BenchBatchWrite",
            dependencies: [chatService("ChatRuntime"), chatService("Actors"), chatService("StubUpstream")],
            path: "Sources/BenchBatchWrite",
            swiftSettings: settings
        ),
    ]
)

// One package-benchmark executable per area, under Benchmarks/<Name>/ as the plugin expects.
for (name, products) in [
    ("Codec", ["Actors", "StubUpstream"]),
    ("RESP", ["ChatRuntime", "Actors", "StubUpstream"]),
    ("Supervisor", ["Actors"]),
    ("L1Cache", ["Actors", "StubUpstream"]),
] {
    package.targets.append(
        .executableTarget(
            name: name,
            dependencies: [.product(name: "Benchmark", package: "benchmark")]
                + products.map(chatService),
            path: "Benchmarks/\(name)",
            swiftSettings: settings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ))
}
