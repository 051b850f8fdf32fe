import Foundation
import Logging
import ServiceLifecycle

/// `qt host --config node.yaml`: load and check the config, start the host, run until
/// SIGTERM/SIGINT, drain. Shared by `qt` and the test host binary. Signals and shutdown order are
/// swift-service-lifecycle's: the host is a `Service` in a `ServiceGroup`.
public enum HostRunner {
    public static func run(configPath: String, registry: PluginRegistry) async throws {
        let config = try NodeConfig.load(path: configPath, registry: registry)
        try await serve(HostService(host: PluginHost(config: config, registry: registry), config: config))
    }

    /// Suspends until SIGTERM or SIGINT, or until `seconds` passed when given.
    public static func waitForTermination(orAfter seconds: Double? = nil) async {
        try? await serve(TerminationWait(seconds: seconds))
    }

    private static func serve(_ service: some Service) async throws {
        var logger = Logger(label: "qt.lifecycle")
        logger.logLevel = .warning
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// One host from start to drained: a start failure ends the group with its error.
private struct HostService: Service {
    let host: PluginHost
    let config: NodeConfig

    func run() async throws {
        try await host.start()
        let running = "running \(config.plugins.map(\.name).joined(separator: ", ")); http :\(host.httpPort ?? 0)"
        report(running)
        let systemd = SystemdNotifier()
        systemd?.ready(status: running)
        let watchdog = systemd?.watchdogIntervalMs.map { intervalMs in
            Task.detached {
                while !Task.isCancelled {
                    systemd?.watchdog()
                    try? await Task.sleep(nanoseconds: UInt64(intervalMs) * 1_000_000)
                }
            }
        }
        // Cancelled instead of shut down gracefully (a second signal): drain all the same.
        try? await gracefulShutdown()
        report("draining")
        systemd?.stopping()
        await host.shutdown()
        watchdog?.cancel()
        report("stopped")
    }

    private func report(_ line: String) {
        HostLog.logger(host: config.hostID).info("\(line)")
    }
}

/// Nothing but the wait: for commands that run hosts of their own (`qt up`, `qt sim`).
private struct TerminationWait: Service {
    let seconds: Double?

    func run() async throws {
        guard let seconds else { return try await gracefulShutdown() }
        try await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: UInt64(seconds * 1e9)) }
    }
}
