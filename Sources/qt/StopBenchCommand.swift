import ArgumentParser
import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Messages
import NatsServerKit
import Plugins

/// A protective stop the exchange triggers → the ledger flat: wall time from the simulator
/// filling the stop to the executor committing the fill, once with position-brain on the user
/// data stream and once polling REST every `--poll-interval` seconds (today's fallback), in the
/// same run, on the same machine.
struct StopBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stops",
        abstract: "Triggered stop → ledger latency with the user data stream and with the REST poll.")

    @Option(help: "Positions opened with a stop, then all stopped out, per mode.") var count = 20
    @Option(name: .customLong("poll-interval"), help: "position-brain's interval_s in the poll mode (its default is 5).")
    var pollInterval = 5.0

    func run() async throws {
        try await reportingErrors {
            var results: [(String, LatencySample)] = []
            for streaming in [true, false] {
                let sample = try await measure(streaming: streaming)
                let label = streaming ? "user data stream" : String(format: "REST poll every %.1f s", pollInterval)
                printLine("\(label): " + sample.description)
                results.append((label, sample))
            }
            printLine("")
            printLine("| stop triggered by the exchange → ledger flat | p50 | p99 | max |")
            printLine("|---|---|---|---|")
            for (label, sample) in results {
                printLine(String(format: "| %@ (n=%d) | %.1f ms | %.1f ms | %.1f ms |", label, sample.values.count, sample.p50, sample.p99,
                                 sample.values.max() ?? .nan))
            }
        }
    }

    private func measure(streaming: Bool) async throws -> LatencySample {
        let credentials = Credentials.generate()
        var config = SimulatorConfig(credentials: credentials)
        config.symbols = max(count, 20)
        config.historyBars = 100
        config.weightLimitPerMinute = 10_000_000
        let simulator = try await SimulatorServer.start(config)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-bench-stops-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = try credentials.writeFiles(in: directory)
        let server = try NatsServer()
        defer { server.stop() }
        let bus = try BusConnection(ConnectionOptions(servers: [server.url], name: "qt-bench-stops"))
        defer { bus.close() }
        let userStream = streaming ? ", user_stream_url: \(simulator.streamURL)/private" : ""
        let yaml = """
            host_id: bench-stops
            nats: { servers: [\(server.url)] }
            http_port: 0
            exchange: { base_url: \(simulator.baseURL)\(userStream), key_file: \(keys.key), secret_file: \(keys.secret) }
            plugins:
              executor: {}
              position-brain: { interval_s: \(streaming ? 5 : pollInterval), reconcile_interval_s: 180 }
            """
        let nodeConfig = try NodeConfig.parse(yaml, file: "bench-stops.yaml", registry: BuiltInPlugins.registry)
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: [nodeConfig], registry: BuiltInPlugins.registry)

        let client = BinanceFutures(config: ExchangeConfig(baseURL: simulator.baseURL), credentials: credentials)
        let filters = try await client.symbolFilters()
        let symbols = Array(simulator.exchange.symbols.prefix(count))
        let ledger = try await bus.keyValue("qt_ledger")
        var stops: [String: String] = [:]
        for symbol in symbols {
            guard let filter = filters[symbol], let mark = simulator.exchange.mark(symbol) else { continue }
            let quantity = try filter.marketQuantity(Decimal(200) / mark, price: mark, reduceOnly: false)
            let fill = try await client.newOrder(NewOrder(symbol: symbol, side: .buy, quantity: quantity, clientOrderId: "bench-open-\(symbol)"))
            let stopID = "bench-stop-\(symbol)"
            _ = try await client.newStopOrder(NewStopOrder(symbol: symbol, side: .sell, triggerPrice: filter.roundPrice(mark * Decimal(0.995), .down),
                                                           clientAlgoId: stopID))
            var entry = LedgerEntry()
            entry.symbol = symbol
            entry.positionAmt = fill.executedQty.plainString
            entry.entryPrice = fill.avgPrice.plainString
            entry.stopDistPct = 0.003
            entry.stopAlgoID = stopID
            // As the executor records it: the position's fills so far, where position-brain's trade poll starts.
            entry.appliedFillIds = try await client.userTrades(symbol: symbol).filter { $0.orderId == fill.orderId }.map { String($0.id) }
            entry.openedAtMs = simulator.exchange.simulatedNowMs
            _ = try await ledger.put(symbol, message: entry)
            stops[symbol] = stopID
        }
        let host = PluginHost(config: nodeConfig, registry: BuiltInPlugins.registry)
        try await host.start()
        // The stream must be listening before the stops are pushed (a stop that fires on its own
        // before is still measured from its trigger: the ledger's fill ids start the trade poll).
        let connected = Date().addingTimeInterval(10)
        while streaming, simulator.streamConnections == 0, Date() < connected { try await Task.sleep(for: .milliseconds(10)) }
        let pushedAt = Int64(Date().timeIntervalSince1970 * 1000)
        for symbol in symbols { simulator.exchange.force(symbol: symbol, regime: .trend, bars: 400, trendUp: false) }
        var early = 0

        var sample = LatencySample()
        var waiting = Set(stops.keys)
        let deadline = Date().addingTimeInterval(120)
        while !waiting.isEmpty, Date() < deadline {
            for symbol in waiting.sorted() {
                guard let stopID = stops[symbol], let triggeredAt = simulator.exchange.stopTriggeredAtWallMs(stopID) else { continue }
                guard let entry = try await ledger.get(LedgerEntry.self, symbol)?.0, Decimal.parse(entry.positionAmt) == 0 else { continue }
                // A stop that fired on its own before the stream was listening is not a measurement of it.
                if triggeredAt >= pushedAt { sample.add(Double(Int64(Date().timeIntervalSince1970 * 1000) - triggeredAt)) } else { early += 1 }
                waiting.remove(symbol)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        await host.shutdown()
        await simulator.stop()
        if early > 0 { printLine("  \(early) stop(s) fired before the benchmark pushed the market (not counted; they reached the ledger too)") }
        if !waiting.isEmpty { printLine("  \(waiting.count) stop(s) did not reach the ledger within 120 s: \(waiting.sorted().joined(separator: ", "))") }
        return sample
    }
}
