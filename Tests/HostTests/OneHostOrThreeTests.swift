import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Messages
import NatsServerKit
import Plugins
import XCTest

/// The same market, once with one host and once with three hosts each running every plugin of the
/// market side: market states and ai-agent intents are pure functions of the klines, so both runs
/// must produce the same values for every symbol and bar they both reached. Per-symbol state split
/// between hosts, or a bar handled out of order while a partition moved, would restart a window
/// and show up as a missing or different state.
final class OneHostOrThreeTests: XCTestCase {
    struct Outcome {
        var states: [String: MarketState] = [:]
        var intents: [String: TradeIntent] = [:]
    }

    let symbols = 12

    func testOneHostAndThreeHostsComputeTheSameStatesAndIntents() async throws {
        let one = try await run(hosts: 1)
        let three = try await run(hosts: 3)
        // The market feed backfills from wherever the simulated clock is when it first polls, which
        // differs between runs by a few bars; states whose windows hold the same closes (the same
        // bars_used at the same bar) must be equal.
        let sharedStates = Set(one.states.keys).intersection(three.states.keys).filter { one.states[$0]!.barsUsed == three.states[$0]!.barsUsed }
        XCTAssertGreaterThanOrEqual(sharedStates.count, symbols * 40, "both runs reached enough bars (\(one.states.count), \(three.states.count))")
        var differing: [String] = []
        for key in sharedStates.sorted() {
            var a = one.states[key]!, b = three.states[key]!
            a.meta = Meta()
            b.meta = Meta()
            if a != b { differing.append(key) }
        }
        XCTAssertEqual(differing, [], "market states that differ between one host and three")
        // A window restarted by a bar out of order would start again from fewer closes.
        for (symbol, states) in Dictionary(grouping: three.states.values, by: \.symbol) {
            let used = states.sorted { $0.asOfMs < $1.asOfMs }.map(\.barsUsed)
            XCTAssertEqual(used, used.sorted(), "\(symbol): three hosts restarted its window")
        }
        let sharedIntents = Set(one.intents.keys).intersection(three.intents.keys)
        XCTAssertFalse(sharedIntents.isEmpty, "both runs produced intents (\(one.intents.count), \(three.intents.count))")
        for key in sharedIntents.sorted() {
            XCTAssertEqual(one.intents[key]!.action, three.intents[key]!.action, key)
            XCTAssertEqual(one.intents[key]!.confidence, three.intents[key]!.confidence, key)
            XCTAssertEqual(one.intents[key]!.intentID, three.intents[key]!.intentID, key)
        }
        print("one host vs three: \(sharedStates.count) market states and \(sharedIntents.count) intents compared, all equal")
    }

    /// A fresh server and simulator (same seed, same simulated start), `hosts` hosts with
    /// market-feed, market-state and ai-agent, until every symbol has 70 states.
    private func run(hosts count: Int) async throws -> Outcome {
        let server = try NatsServer()
        defer { server.stop() }
        let bus = try BusConnection(ConnectionOptions(servers: [server.url], name: "one-or-three"))
        defer { bus.close() }
        let credentials = Credentials.generate()
        let simulator = try await SimulatorServer.start(.replayable(credentials: credentials, symbols: symbols, seed: 42, barMs: 100,
                                                                    startMs: 1_800_000_000_000, weightLimitPerMinute: 10_000_000))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-one-or-three-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = try credentials.writeFiles(in: directory)

        var universe = Universe()
        universe.version = 1
        universe.maxActive = Int32(symbols)
        universe.entries = simulator.exchange.symbols.enumerated().map { index, symbol in
            var entry = UniverseEntry()
            entry.symbol = symbol
            entry.rank = Int32(index + 1)
            entry.active = true
            return entry
        }
        let configs = try (0..<count).map { index in
            try NodeConfig.parse("""
                host_id: node-\(index)
                nats: { servers: [\(server.url)] }
                http_port: 0
                exchange: { base_url: \(simulator.baseURL), key_file: \(keys.key), secret_file: \(keys.secret) }
                plugins:
                  market-feed: { interval_s: 0.2 }
                  market-state: {}
                  ai-agent: {}
                """, file: "node-\(index).yaml", registry: PluginCatalog.registry)
        }
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: configs, registry: PluginCatalog.registry)
        try await bus.keyValue("qt_universe").put("active", message: universe)
        var running: [PluginHost] = []
        for config in configs {
            let host = PluginHost(config: config, registry: PluginCatalog.registry)
            try await host.start()
            running.append(host)
        }
        var outcome = Outcome()
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline {
            try await Task.sleep(nanoseconds: 1_000_000_000)
            if try await storedCount("qt.market.state.*", bus: bus) >= UInt64(symbols * 100) { break }
        }
        for host in running { await host.shutdown() }
        await simulator.stop()
        for state in try await storedMessages(MarketState.self, subject: "qt.market.state.*", bus: bus) {
            outcome.states["\(state.symbol)@\(state.asOfMs)"] = state
        }
        for intent in try await storedMessages(TradeIntent.self, subject: "qt.signal.intent.*", bus: bus) {
            outcome.intents["\(intent.symbol)@\(intent.meta.eventTimeMs)"] = intent
        }
        return outcome
    }
}
