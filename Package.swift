// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "QuantumTrader",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "qt", targets: ["qt"]),
        .library(name: "ExchangeSimulator", targets: ["ExchangeSimulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // System libraries from Debian (see README: libnats-dev, libcurl4-openssl-dev, libssl-dev).
        .systemLibrary(name: "CNats", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // Deterministic ids (H of DESIGN.md §3.3); plugins need it too, so it is not inside Bus.
        .target(name: "Identity", dependencies: ["COpenSSL"]),
        // Generated protobuf types plus the subject/stream/bucket registry (pure data).
        .target(
            name: "Messages",
            dependencies: ["Numbers", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // Dedicated threads for blocking C calls (libnats, libcurl), bridged to async code.
        .target(name: "BlockingIO"),
        // The only module that imports libnats.
        .target(name: "Bus", dependencies: ["CNats", "Messages", "Identity", "BlockingIO"]),
        // Binance USDⓈ-M futures: the REST client (libcurl + OpenSSL HMAC), its models and symbol filters.
        .target(name: "Numbers"),
        // HTTP through libcurl's easy interface on dedicated threads (the exchange's REST, webhooks).
        .target(name: "CurlHTTP", dependencies: ["CCurl", "BlockingIO"]),
        // REST through libcurl on dedicated threads; the WebSocket streams on SwiftNIO (Hummingbird's client).
        .target(name: "Exchange", dependencies: ["CCurl", "CurlHTTP", "COpenSSL", "BlockingIO", "Numbers",
                                                 .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                                                 .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                 .product(name: "NIOCore", package: "swift-nio"),
                                                 .product(name: "Logging", package: "swift-log")]),
        // The Binance-compatible simulator (Hummingbird) that paper trading and tests run against:
        // the client's dialect from the other side, with a seeded market.
        .target(
            name: "ExchangeSimulator",
            dependencies: [
                "Exchange", "Kernels", "HTTPServing", "BlockingIO", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Starting a Hummingbird server and waiting until it listens: the host's status endpoint,
        // the simulator and the operator console.
        .target(name: "HTTPServing", dependencies: [.product(name: "Hummingbird", package: "hummingbird"),
                                                    .product(name: "HummingbirdCore", package: "hummingbird"),
                                                    .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                                                    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        // The plugin host: plugin API, node config, binding, leases, fleet registry, metrics.
        // The C plugin ABI (include/qt_plugin.h links here): what a shared-library plugin exports
        // and the host callbacks it gets.
        .target(name: "CQtPlugin"),
        .target(name: "Host", dependencies: ["Bus", "Messages", "Identity", "HTTPServing", "CQtPlugin", "BlockingIO", .product(name: "Yams", package: "Yams"),
                                             .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                                             .product(name: "Hummingbird", package: "hummingbird"),
                                             .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                                             .product(name: "HTTPTypes", package: "swift-http-types"),
                                             .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                             .product(name: "CoreMetrics", package: "swift-metrics"),
                                             .product(name: "Prometheus", package: "swift-prometheus")]),
        // The pure kernels of DESIGN.md §6 (market state, harvest, heat, governor gate, signals,
        // universe ranking): no I/O, no clock, no Host or Exchange, so their tests build alone.
        .target(name: "Kernels", dependencies: ["Messages"]),
        // The trading plugins, one folder each: the I/O around the kernels.
        .target(name: "Plugins", dependencies: ["Host", "Messages", "Identity", "Exchange", "CurlHTTP", "Kernels", "Numbers",
                                                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                                                .product(name: "Logging", package: "swift-log")]),
        // Plugins used by the host's integration tests (a relay pipeline, a singleton ticker).
        .target(name: "TestPlugins", dependencies: ["Host", "Messages", "Identity"], path: "Tests/Support/TestPlugins"),
        // The in-memory host: a plugin's rules tested without NATS, on a manual clock.
        .target(name: "InMemoryHost", dependencies: ["Bus", "Host", "Messages"], path: "Tests/Support/InMemoryHost"),
        // A local webhook / Slack / Telegram endpoint for the alert relay's tests.
        .target(name: "FakeSinks", dependencies: [.product(name: "Hummingbird", package: "hummingbird"),
                                                  .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                                  .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio")],
                path: "Tests/Support/FakeSinks"),
        // A host with the test plugins registered, run as a child process by the host tests.
        .executableTarget(name: "qt-test-host", dependencies: ["Host", "TestPlugins", "Plugins"], path: "Tests/Support/TestHost"),
        // Starts and stops a real nats-server: tests, benchmarks and (later) `qt up`.
        .target(name: "NatsServerKit", dependencies: []),
        .executableTarget(
            name: "qt",
            dependencies: [
                "Bus", "Messages", "Identity", "NatsServerKit", "Host", "Exchange", "ExchangeSimulator", "Plugins", "Kernels", "Numbers", "HTTPServing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                // The operator console (qt console) is a Hummingbird server.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "MessagesTests", dependencies: ["Messages", "Identity", "Numbers", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "BusTests", dependencies: ["Bus", "Messages", "Identity", "NatsServerKit"]),
        .testTarget(name: "CLITests", dependencies: ["qt", "Bus", "Messages", "NatsServerKit", "Exchange", "ExchangeSimulator", "Host", "Plugins",
                                                 .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                                                 .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ExchangeTests", dependencies: ["Exchange", "ExchangeSimulator", "Kernels"]),
        .testTarget(name: "KernelTests", dependencies: ["Kernels", "Messages"]),
        // Each gate rule on the in-memory host (with the simulator where a rule reads the exchange).
        .testTarget(name: "PluginRuleTests", dependencies: ["InMemoryHost", "FakeSinks", "Plugins", "Kernels", "Host", "Messages", "Identity", "Exchange", "ExchangeSimulator"]),
        .testTarget(name: "HostTests", dependencies: ["Host", "Bus", "Messages", "Identity", "NatsServerKit", "TestPlugins", "FakeSinks", "Plugins", "Kernels", "Exchange", "ExchangeSimulator", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
    ]
)
