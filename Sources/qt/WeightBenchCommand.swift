import ArgumentParser
import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import NatsServerKit
import Plugins

/// Request weight per minute that hosts running every plugin (`qt up`'s node config, every symbol
/// active) spend against a simulator that enforces Binance's 2,400 per minute per IP, streaming
/// or polling; and every request the limit refused (`-1003`, HTTP 429).
struct WeightBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weight",
        abstract: "REST request weight per minute of hosts with every plugin, every symbol active: streams or REST polls.")

    @Option(help: "Symbols listed by the simulator, all active in the universe.") var symbols = 566
    @Option(help: "Hosts, each its own exchange client (as separate processes would be), behind one IP.") var hosts = 2
    @Option(help: "Seconds to run.") var duration = 120.0
    @Option(help: "Seconds at the start not counted in the steady state (first backfill of every symbol).") var warmup = 60.0
    @Option(name: .customLong("bar-ms"), help: "Wall milliseconds per simulated 1m bar (qt up's default).") var barMs = 250
    @Flag(help: "Poll REST for bars, positions and trades instead of streaming (today's fallback).") var poll = false
    @Option(name: .customLong("ip-limit"), help: "Request weight per minute the simulator allows the IP (Binance: 2400; a large one shows what the hosts would spend unthrottled).")
    var ipLimit = 2_400

    func run() async throws {
        try await reportingErrors {
            guard duration > warmup else { throw ValidationError("--duration must be longer than --warmup") }
            let credentials = Credentials.generate()
            var config = SimulatorConfig(credentials: credentials)
            config.symbols = symbols
            config.barMs = barMs
            config.historyBars = 400
            config.weightLimitPerMinute = ipLimit
            let simulator = try await SimulatorServer.start(config)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-bench-weight-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let keys = try credentials.writeFiles(in: directory)
            let server = try NatsServer(storeDirectory: directory.appendingPathComponent("nats"))
            defer { server.stop() }
            let bus = try BusConnection(ConnectionOptions(servers: [server.url], name: "qt-bench-weight"))
            defer { bus.close() }

            var configs: [NodeConfig] = []
            for index in 0..<hosts {
                var node = UpNodeConfig(hostID: "weight-\(index)", natsURL: server.url, exchangeURL: simulator.baseURL,
                                        streamURL: poll ? nil : simulator.streamURL, keyFile: keys.key, secretFile: keys.secret, barMs: barMs)
                node.active = symbols
                node.weightShare = 0.8 / Double(hosts)
                configs.append(try NodeConfig.parse(node.yaml, file: "weight-\(index).yaml", registry: BuiltInPlugins.registry))
            }
            _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: configs, registry: BuiltInPlugins.registry)
            var running: [PluginHost] = []
            for config in configs {
                // A registry of its own: each host gets its own exchange client, as in separate processes.
                let host = PluginHost(config: config, registry: BuiltInPlugins.registry)
                try await host.start()
                running.append(host)
            }
            printLine("weight benchmark: \(hosts) host(s), every plugin, \(symbols) symbols active, a bar every \(barMs) ms, "
                      + (poll ? "REST polls" : "streams") + "; the simulator enforces \(config.weightLimitPerMinute) per minute")

            let started = Date()
            var atWarmup = 0
            var samples: [(seconds: Double, weight: Int)] = []
            while Date().timeIntervalSince(started) < duration {
                try await Task.sleep(for: .seconds(10))
                let seconds = Date().timeIntervalSince(started), spent = simulator.exchange.weightSpent
                samples.append((seconds, spent))
                if seconds >= warmup, atWarmup == 0 { atWarmup = spent }
                let previous = samples.count > 1 ? samples[samples.count - 2] : (0, 0)
                printLine(String(format: "  %4.0f s: %6d weight so far, %5.0f per minute over the last 10 s", seconds, spent,
                                 Double(spent - previous.1) / (seconds - previous.0) * 60))
            }
            for host in running { await host.shutdown() }
            let total = simulator.exchange.weightSpent, elapsed = Date().timeIntervalSince(started)
            let steadyStart = samples.first { $0.seconds >= warmup } ?? (elapsed, total)
            let steady = Double(total - steadyStart.weight) / max(1e-9, elapsed - steadyStart.seconds) * 60
            printLine("")
            printLine("| mode | hosts | symbols | weight per minute, whole run | steady state (after \(Int(warmup)) s) | share of 2,400 | IP limit | refused for weight (-1003) |")
            printLine("|---|---|---|---|---|---|---|---|")
            printLine(String(format: "| %@ | %d | %d | %.0f | %.0f | %.1f %% | %d | %d |", poll ? "REST polls" : "streams", hosts, symbols,
                             Double(total) / elapsed * 60, steady, steady / 2_400 * 100, ipLimit, simulator.exchange.weightLimitRefusals))
            printLine("weight by endpoint: " + simulator.exchange.weightByEndpoint.prefix(8)
                .map { "\($0.endpoint) \($0.weight) (\($0.requests) requests)" }.joined(separator: ", "))
            await simulator.stop()
        }
    }
}
