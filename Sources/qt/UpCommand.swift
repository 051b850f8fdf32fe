import ArgumentParser
import Bus
import Exchange
import Foundation
import Host
import NatsServerKit

/// `qt up`: everything on one machine. What exists today: an embedded nats-server with
/// JetStream and the provisioned topology, and the exchange simulator. The trading plugins and
/// the status view come with later issues; this command says so instead of pretending.
struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Quantum Trader on one machine (today: NATS with the provisioned topology and the exchange simulator).")

    @Option(help: "Data directory for the NATS store (default: a fresh one under .qt/).") var data: String?
    @Option(name: .customLong("nats-port"), help: "NATS client port (default: a free one).") var natsPort: Int = -1
    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).") var duration: Double?
    @Option(name: .customLong("sim-port"), help: "Simulator port on 127.0.0.1 (default: a free one).") var simPort = 0
    @OptionGroup var market: SimulatorOptions

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
            let simulator = try await market.startServer(port: simPort)
            printLine("try:        NATS_URL=\(server.url) qt streams ls")
            printLine("            curl '\(simulator.baseURL)/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=3'")
            printLine("not in qt up yet: the plugin host and its status view (issue 7). The whole pipeline runs under")
            printLine("               `qt host --config` against this NATS and simulator (README: node config).")
            printLine(duration.map { "running for \($0) s; Ctrl-C stops earlier" } ?? "running; Ctrl-C stops")
            await HostRunner.waitForTermination(orAfter: duration)
            await simulator.stop()
            printLine("stopping: simulator and NATS closed cleanly")
        }
    }
}
