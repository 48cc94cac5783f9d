// swift-tools-version:6.1
import PackageDescription

// Upcoming features Hummingbird 2 itself builds with: explicit `any`, and imports that say what they expose.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let hummingbird: Target.Dependency = .product(name: "Hummingbird", package: "hummingbird")
let hummingbirdCore: Target.Dependency = .product(name: "HummingbirdCore", package: "hummingbird")
let hummingbirdTesting: Target.Dependency = .product(name: "HummingbirdTesting", package: "hummingbird")
let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let nioEmbedded: Target.Dependency = .product(name: "NIOEmbedded", package: "swift-nio")
let nioConcurrencyHelpers: Target.Dependency = .product(name: "NIOConcurrencyHelpers", package: "swift-nio")
let nioHTTP1: Target.Dependency = .product(name: "NIOHTTP1", package: "swift-nio")
let nioWebSocket: Target.Dependency = .product(name: "NIOWebSocket", package: "swift-nio")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals: Target.Dependency = .product(name: "UnixSignals", package: "swift-service-lifecycle")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")
let nioSSL: Target.Dependency = .product(name: "NIOSSL", package: "swift-nio-ssl")
let webSocket: Target.Dependency = .product(name: "WSCore", package: "swift-websocket")
let webSocketCompression: Target.Dependency = .product(name: "WSCompression", package: "swift-websocket")
let webSocketClient: Target.Dependency = .product(name: "WSClient", package: "swift-websocket")
let nioHTTPTypes: Target.Dependency = .product(name: "NIOHTTPTypes", package: "swift-nio-extras")
let nioHTTPTypesHTTP1: Target.Dependency = .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let compressNIO: Target.Dependency = .product(name: "CompressNIO", package: "compress-nio")
let httpTypes: Target.Dependency = .product(name: "HTTPTypes", package: "swift-http-types")
let asyncHTTPClient: Target.Dependency = .product(name: "AsyncHTTPClient", package: "async-http-client")
let postgresNIO: Target.Dependency = .product(name: "PostgresNIO", package: "postgres-nio")

let package = Package(
    name: "eventhub",
    platforms: [.macOS(.v15)],  // macOS only for development; Linux is the product
    products: [
        .executable(name: "hubd", targets: ["hubd"]),
        .executable(name: "hubctl", targets: ["hubctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(name: "HubCore", dependencies: [nioCore, logging], swiftSettings: strict),
        .target(name: "HubProtocol", dependencies: ["HubCore", nioCore], swiftSettings: strict),
        .target(name: "HubAuth", dependencies: ["HubCore", crypto], swiftSettings: strict),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "HubSQLite", dependencies: ["HubCore", "CSQLite", nioCore, nioPosix, logging], swiftSettings: strict),
        // The scale-out backend: several hubd nodes on one PostgreSQL database (DESIGN §5).
        .target(name: "HubPostgres", dependencies: ["HubCore", postgresNIO, .product(name: "_ConnectionPoolModule", package: "postgres-nio"), nioCore, nioPosix, nioSSL, logging, serviceLifecycle], swiftSettings: strict),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "HubSystemd", dependencies: ["CSystemd", serviceLifecycle], swiftSettings: strict),
        .target(name: "HubHTTP", dependencies: ["HubCore", "HubProtocol", "HubAuth", asyncHTTPClient, hummingbird, compressNIO, httpTypes, webSocket, webSocketCompression, nioWebSocket, nioHTTPTypes, serviceLifecycle, logging, prometheus], swiftSettings: strict),
        .target(name: "HubServer", dependencies: ["HubHTTP", "HubSQLite", "HubPostgres", "HubAuth", "HubSystemd", hummingbird, hummingbirdCore, webSocket, nioHTTP1, nioHTTPTypesHTTP1, nioWebSocket, serviceLifecycle, unixSignals, nioCore, nioPosix, nioConcurrencyHelpers, nioSSL, logging, yams], swiftSettings: strict),
        .executableTarget(name: "hubd", dependencies: ["HubServer", "HubCore", argumentParser], swiftSettings: strict),

        // The CLI as a library (testable in-process) and a thin main. It talks HTTP to a hub and opens store files
        // offline (verify, restore); it never links the server's HTTP stack.
        .target(name: "HubCtl", dependencies: ["HubCore", "HubProtocol", "HubSQLite", argumentParser, asyncHTTPClient, webSocketClient, yams, nioCore, nioPosix, nioHTTP1, httpTypes, logging], swiftSettings: strict),
        .executableTarget(name: "hubctl", dependencies: ["HubCtl"], swiftSettings: strict),

        .executableTarget(name: "StoreBench", dependencies: ["HubSQLite", nioCore], path: "Benchmarks/StoreBench"),

        .target(name: "HubTestSupport", dependencies: ["HubServer", "HubHTTP", "HubCore", "HubProtocol", nioPosix, nioHTTP1, logging], path: "Tests/HubTestSupport", swiftSettings: strict),
        .testTarget(name: "HubProtocolTests", dependencies: ["HubProtocol"]),
        .testTarget(name: "HubAuthTests", dependencies: ["HubAuth"]),
        .testTarget(name: "HubStoreContractTests", dependencies: ["HubTestSupport", "HubSQLite", "HubPostgres", "CSQLite", logging]),
        .testTarget(name: "HubCtlTests", dependencies: ["HubTestSupport", "HubCtl", "HubServer", "HubSQLite", "CSQLite", "HubProtocol", "HubCore", webSocketClient, logging]),
        .testTarget(name: "HubIntegrationTests", dependencies: ["HubTestSupport", "HubServer", "HubHTTP", "HubAuth", "HubCore", "HubPostgres", "HubProtocol", nioCore, nioEmbedded, nioHTTP1, nioWebSocket, webSocketClient, webSocketCompression]),
    ]
)
