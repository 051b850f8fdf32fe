import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Messages
import Plugins
import XCTest

/// A nats-server, the exchange simulator and hosts running the built-in plugins; helpers to
/// open real positions on the simulator and write the ledger the way the executor would.
class ExitLayerTestCase: HostTestCase {
    var simulator: SimulatorServer!
    var client: BinanceFutures!
    let credentials = Credentials.generate()

    func configure(_ config: inout SimulatorConfig) {}

    override func setUp() async throws {
        try await super.setUp()
        var config = SimulatorConfig(credentials: credentials)
        config.symbols = 50
        config.historyBars = 400
        // The simulator compresses time; its weight budget is compressed alike.
        config.weightLimitPerMinute = 1_000_000
        configure(&config)
        simulator = try await SimulatorServer.start(config)
        client = BinanceFutures(config: ExchangeConfig(baseURL: simulator.baseURL), credentials: credentials)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        client = nil
        await simulator?.stop()
    }

    /// The node config's exchange section, credentials in files (the host reads them at start).
    /// `streaming`: market data and account events over the simulator's WebSocket streams.
    func exchangeSection(streaming: Bool = false) throws -> String {
        let key = scratch.appendingPathComponent("api-key"), secret = scratch.appendingPathComponent("api-secret")
        try credentials.apiKey.write(to: key, atomically: true, encoding: .utf8)
        try credentials.revealSecret().write(to: secret, atomically: true, encoding: .utf8)
        let streams = streaming ? ", stream_url: \"\(simulator.streamURL)/market\", user_stream_url: \"\(simulator.streamURL)/private\"" : ""
        return "{ base_url: \"\(simulator.baseURL)\"\(streams), key_file: \"\(key.path)\", secret_file: \"\(secret.path)\" }"
    }

    func startPipeline(_ plugins: [String: [String: String]], host: String = "exit-a", streaming: Bool = false) async throws -> PluginHost {
        try await startHost(host, plugins: plugins, registry: PluginCatalog.registry, exchange: try exchangeSection(streaming: streaming))
    }

    /// Opens a position with a MARKET order on the simulator and writes the matching ledger
    /// entry (as the executor does after a fill).
    @discardableResult
    func openPosition(_ symbol: String, long: Bool, notional: Decimal = 150, tranchesTaken: Int32 = 0) async throws -> LedgerEntry {
        let allFilters = try await client.symbolFilters()
        let filters = try XCTUnwrap(allFilters[symbol])
        let mark = try XCTUnwrap(simulator.exchange.mark(symbol))
        let quantity = try filters.marketQuantity(notional / mark, price: mark, reduceOnly: false)
        let fill = try await client.newOrder(NewOrder(symbol: symbol, side: long ? .buy : .sell, quantity: quantity,
                                                      clientOrderId: "test-\(symbol)"))
        var entry = LedgerEntry()
        entry.symbol = symbol
        entry.positionAmt = (long ? fill.executedQty : -fill.executedQty).plainString
        entry.entryPrice = fill.avgPrice.plainString
        entry.stopDistPct = 0.02
        entry.openedAtMs = simulator.exchange.simulatedNowMs
        entry.tranchesTaken = tranchesTaken
        try await putLedger(entry)
        return entry
    }

    @discardableResult
    func putLedger(_ entry: LedgerEntry) async throws -> UInt64 {
        try await bus.keyValue("qt_ledger").put(entry.symbol, message: entry)
    }
}
