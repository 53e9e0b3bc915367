// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    // As hummingbird does: a file sees only the modules it imports, and an import is internal
    // unless it says `public import`, so a module's public API names what it exposes.
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "chat-service",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chat-service", targets: ["CLI"]),
        .library(name: "ChatRuntime", targets: ["ChatRuntime"]),
        .library(name: "Actors", targets: ["Actors"]),
        .library(name: "ChatService", targets: ["ChatService"]),
        .library(name: "StubUpstream", targets: ["StubUpstream"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // 4.x: what jwt-kit 5 needs.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // User tokens (issue 14): HS256, and RS256, ES256 and EdDSA keys from a JWKS.
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        // The chat store (issue 8): PostgreSQL for deployments, SQLite (system libsqlite3) embedded.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        // C libraries, found through pkg-config (Debian: libevent-dev, libhiredis-dev). CLibEvent
        // also links libevent's OpenSSL bufferevents and OpenSSL (libssl-dev), for HTTPS upstream.
        .systemLibrary(
            name: "CLibEvent",
            pkgConfig: "libevent_pthreads",
            providers: [.apt(["libevent-dev", "libssl-dev"])]
        ),
        // The request parser of the HTTP server: the joyent/nodejs http-parser, as webdis uses it
        // (Debian: libhttp-parser-dev; no pkg-config file, the header is in /usr/include).
        .systemLibrary(
            name: "CHTTPParser",
            providers: [.apt(["libhttp-parser-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // LZ4's block format, for the compressed copies the L1 keeps (Debian: liblz4-dev).
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),

        // ThreadSanitizer annotations for the synchronisation it cannot see (AnnotatedMutex).
        .target(name: "CThreadSanitizer", path: "Sources/CThreadSanitizer"),

        // I/O substrate: event loop, Redis and HTTP plumbing. No domain words.
        // Named ChatRuntime: the toolchain ships a module called Runtime (backtraces).
        .target(
            name: "ChatRuntime",
            dependencies: [
                "CLibEvent",
                "CHTTPParser",
                "CThreadSanitizer",
                "CHiredis",
                "CLZ4",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Runtime",
            swiftSettings: strictSettings
        ),

        // The domain actors.
        .target(
            name: "Actors",
            dependencies: [
                "ChatRuntime",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            // Frontends and stores that bring NIO, gRPC or GRDB sit in the Actors folder (they are
            // domain actors) but build as targets of their own, so Actors itself depends on none.
            exclude: ["GRPC", "Stores"],
            swiftSettings: strictSettings,
            // docs/openapi.yaml, compiled in for `GET /openapi.yaml`.
            plugins: ["EmbedOpenAPIDocument"]
        ),

        // The build plugin that embeds docs/openapi.yaml, and the tool it runs.
        .executableTarget(
            name: "EmbedText",
            path: "Sources/Tools/EmbedText"
        ),
        .plugin(
            name: "EmbedOpenAPIDocument",
            capability: .buildTool(),
            dependencies: ["EmbedText"]
        ),

        // The gRPC API (docs/GRPC.md): code generated from proto/ by scripts/generate-grpc.sh
        // (committed) and the services over the domain actors. A target of its own so that NIO
        // and gRPC stay out of Actors, which runs on the libevent loop alone.
        .target(
            name: "GRPCFrontend",
            dependencies: [
                "Actors",
                "ChatRuntime",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Actors/GRPC",
            swiftSettings: strictSettings
        ),

        // The chat store implementations, each in a target of its own so that NIO/postgres-nio
        // and GRDB stay out of Actors (which defines the `ChatStore` protocol they implement).
        .target(
            name: "SQLiteChatStore",
            dependencies: [
                "Actors",
                "ChatRuntime",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Actors/Stores/SQLiteChatStore",
            swiftSettings: strictSettings
        ),
        .target(
            name: "PostgresChatStore",
            dependencies: [
                "Actors",
                "ChatRuntime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Actors/Stores/PostgresChatStore",
            swiftSettings: strictSettings
        ),

        // The stub upstream: a fault-injecting stand-in for the upstream participants API and its
        // synthetic dataset, run as `chat-service stub-upstream` and used in-process by the tests
        // and the benchmarks. Beside ChatService under Sources/Main because, like it, it is a
        // program the executable runs over Actors and Runtime; not part of production's wiring.
        .target(
            name: "StubUpstream",
            dependencies: [
                "ChatRuntime",
                "Actors",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Main/StubUpstream",
            swiftSettings: strictSettings
        ),

        // Configuration and wiring; testable, so the executable stays thin.
        .target(
            name: "ChatService",
            dependencies: [
                "ChatRuntime",
                "Actors",
                "GRPCFrontend",
                "SQLiteChatStore",
                "PostgresChatStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Main/ChatService",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "CLI",
            dependencies: [
                "ChatService",
                "StubUpstream",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Main/CLI",
            swiftSettings: strictSettings
        ),

        // Shared test helpers: real redis-server processes, the whole service in-process
        // (InProcessService, with the stub upstream) and as a subprocess (ServiceProcess), the
        // waits, the read-load generator.
        .target(
            name: "TestSupport",
            dependencies: [
                "ChatRuntime", "Actors", "ChatService", "GRPCFrontend", "StubUpstream",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
        // The fault proxy for the chaos tests, on libevent. A target of its own: a target that
        // imports CLibEvent directly cannot see libc's socket constants from files importing only
        // Glibc in a clean build, which would break TestSupport's plain-socket helpers.
        .target(
            name: "FaultInjection",
            dependencies: ["ChatRuntime", "CLibEvent"],
            path: "Tests/FaultInjection",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "UnitTests",
            dependencies: [
                "ChatRuntime", "Actors", "ChatService", "StubUpstream", "TestSupport", "PostgresChatStore",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ChatRuntime", "Actors", "ChatService", "StubUpstream", "TestSupport", "SQLiteChatStore",
                "PostgresChatStore",
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                // Mints RS256, ES256 and EdDSA tokens, as an identity provider would.
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The gRPC API through grpc-swift's own client over loopback, against the whole service
        // with a real redis-server and the stub upstream.
        .testTarget(
            name: "GRPCTests",
            dependencies: [
                "ChatRuntime", "Actors", "ChatService", "StubUpstream", "GRPCFrontend", "TestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        // Fault scenarios against the real binary, and the bad-input flood. Skipped unless CHAOS
        // is set (`make chaos`, `make chaos-fast`), so `make test` stays fast.
        .testTarget(
            name: "ChaosTests",
            dependencies: [
                "ChatRuntime", "Actors", "ChatService", "StubUpstream", "TestSupport", "FaultInjection",
            ],
            swiftSettings: strictSettings
        ),
    ]
)
