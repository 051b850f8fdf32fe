import Exchange
import ExchangeSimulator
import Foundation
import Host
import Identity
import InMemoryHost
import Messages
import Plugins
import XCTest

/// A gate's rules, one per test, on the in-memory host: facts seeded straight into the buckets,
/// one input published, the decision read back. No NATS; the simulator only for the gates that
/// read the exchange (`startSimulator`).
class RuleTestCase: XCTestCase {
    var host: InMemoryHost!
    var simulator: SimulatorServer?
    /// Event time of the next message; each builder moves it one bar on.
    var eventTimeMs: Int64 = 1_800_000_000_000

    override func setUp() async throws {
        host = InMemoryHost(nowMs: eventTimeMs)
    }

    override func tearDown() async throws {
        await simulator?.stop()
        simulator = nil
        host = nil
    }

    // MARK: the exchange, for the gates that read it

    /// Starts the simulator; the returned clients reach it as a node config's `exchange:` section would.
    func startSimulator(faults: SimulatorFaults = SimulatorFaults()) async throws -> ExchangeClients {
        let credentials = Credentials.generate()
        var config = SimulatorConfig(credentials: credentials)
        config.symbols = 24
        config.historyBars = 10
        config.faults = faults
        let server = try await SimulatorServer.start(config)
        simulator = server
        return ExchangeClients(BinanceFutures(config: ExchangeConfig(baseURL: server.baseURL), credentials: credentials))
    }

    /// Four symbols whose quantity step makes a few hundred USDT a fine-grained quantity (the
    /// first listings, BTC and ETH, step 0.001 at tens of thousands).
    var symbols: [String] { simulator.map { Array($0.exchange.symbols[20..<24]) } ?? ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"] }

    func mark(_ symbol: String) throws -> Decimal { try XCTUnwrap(simulator?.exchange.mark(symbol)) }

    // MARK: facts in the buckets

    func activeUniverse(_ symbols: [String]) async throws {
        var universe = Universe()
        universe.version = 1
        universe.maxActive = Int32(symbols.count)
        universe.entries = symbols.enumerated().map { index, symbol in
            var entry = UniverseEntry()
            entry.symbol = symbol
            entry.rank = Int32(index + 1)
            entry.active = true
            return entry
        }
        _ = try await host.kv("qt_universe").put("active", universe)
    }

    /// A ledger position of `amount` (negative: short) at `entryPrice`; returns its revision.
    @discardableResult
    func position(_ symbol: String, amount: String, entryPrice: String = "100", stopPrice: String = "") async throws -> UInt64 {
        var entry = LedgerEntry()
        entry.symbol = symbol
        entry.positionAmt = amount
        entry.entryPrice = entryPrice
        entry.stopPrice = stopPrice
        return try await host.kv("qt_ledger").put(symbol, entry)
    }

    func tradingState(_ state: TradingState) async throws {
        var control = Control()
        control.tradingState = state
        _ = try await host.kv("qt_control").put("trading_state", control)
    }

    /// A calm, trending market state as of the next bar (entry kill score well under the scale band).
    func marketState(_ symbol: String, regimeFlip: Bool = false, asOfMs: Int64? = nil) async throws {
        var state = MarketState()
        state.symbol = symbol
        state.sigma = 0.002
        state.ts = 0.5
        (state.pTrend, state.pMr, state.pChop) = regimeFlip ? (0.2, 0.4, 0.4) : (0.6, 0.2, 0.2)
        state.asOfMs = asOfMs ?? eventTimeMs + 60_000
        _ = try await host.kv("qt_marketstate").put(symbol, state)
    }

    func account(marginRatio: Double = 0.05, ageMs: Int64 = 0) async throws {
        var account = AccountSnapshot()
        account.marginRatio = marginRatio
        account.asOfMs = host.clock.nowMs() - ageMs
        _ = try await host.kv("qt_snapshot").put("_account", account)
    }

    // MARK: inputs

    func nextEventTime() -> Int64 {
        eventTimeMs += 60_000
        return eventTimeMs
    }

    /// Publishes `message` on `subject` and lets the host handle everything that follows.
    func send<M: BusMessage>(_ message: M, on subject: String, id: String? = nil) async throws {
        try await host.publish(message, subject: subject, id: id)
        await host.run()
    }

    func decisions(_ plugin: String, _ symbol: String) async -> [Decision] { await host.decisions(plugin, symbol: symbol) }

    func reasons(_ plugin: String, _ symbol: String) async -> [ReasonCode] { await decisions(plugin, symbol).map(\.reason) }

    func plans(_ subject: String) async -> [Plan] { await host.messages(Plan.self, on: subject) }

    func summary(_ decisions: [Decision]) -> String { decisions.map { "\($0.verdict) \($0.reason) \($0.detail)" }.joined(separator: "; ") }
}
