import ArgumentParser
import Bus
import Foundation
import Host
import NatsServerKit

/// `qt up`: everything on one machine. What exists today: an embedded nats-server with
/// JetStream and the provisioned topology. The simulator, the host and the plugins come with
/// later issues; this command says so instead of pretending.
struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Quantum Trader on one machine (today: NATS with the provisioned topology).")

    @Option(help: "Data directory for the NATS store (default: a fresh one under .qt/).") var data: String?
    @Option(name: .customLong("nats-port"), help: "NATS client port (default: a free one).") var natsPort: Int = -1
    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).") var duration: Double?

    func run() async throws {
        try await reportingErrors {
            let directory = URL(fileURLWithPath: data ?? ".qt/run-\(Int(Date().timeIntervalSince1970))")
            let server = try NatsServer(storeDirectory: directory.appendingPathComponent("nats"), port: natsPort)
            defer { server.stop() }
            let bus = try BusConnection(ConnectionOptions(servers: [server.url], name: "qt-up"))
            defer { bus.close() }
            let results = try await bus.provision()
            let created = results.filter { $0.action == .created }.count
            printLine("NATS:       \(server.url)   (JetStream store: \(directory.path)/nats)")
            printLine("topology:   \(results.count) streams and buckets provisioned (\(created) created)")
            printLine("try:        NATS_URL=\(server.url) qt streams ls")
            printLine("not built yet: the exchange simulator (issue 4), the trading plugins (issues 5, 6), and the")
            printLine("               live status view and summary (issue 7). No trading happens in this run.")
            printLine("               The plugin host exists (`qt host --config`), with no trading plugins to run yet.")
            printLine(duration.map { "running for \($0) s; Ctrl-C stops earlier" } ?? "running; Ctrl-C stops")
            await HostRunner.waitForTermination(orAfter: duration)
            printLine("stopping: NATS closed cleanly")
        }
    }
}
