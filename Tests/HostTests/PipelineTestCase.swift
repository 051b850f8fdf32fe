import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// The whole pipeline as `qt up` runs it: every plugin in `qt host` processes against the
/// simulator with fast bars; helpers to start it, steer it and read what it did.
class PipelineTestCase: HostTestCase {
    struct Market {
        let simulator: SimulatorServer
        let keys: (key: String, secret: String)
        let client: BinanceFutures
    }

    func startSimulator(symbols: Int, startMs: Int64, seed: UInt64 = 11) async throws -> Market {
        let credentials = Credentials.generate()
        let simulator = try await SimulatorServer.start(.replayable(credentials: credentials, symbols: symbols, seed: seed, barMs: 250,
                                                                    startMs: startMs))
        let directory = scratch.appendingPathComponent("keys-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return Market(simulator: simulator, keys: try credentials.writeFiles(in: directory),
                      client: BinanceFutures(config: ExchangeConfig(baseURL: simulator.baseURL), credentials: credentials))
    }

    /// `qt up`'s node config at 250 ms per bar, with stops 30 % away (a stop the exchange triggers
    /// while the hosts are stopped at the end would make ledger and exchange differ for a moment).
    func pipelineConfig(_ host: String, servers: [String], replicas: Int, market: Market) throws -> (yaml: String, config: NodeConfig) {
        let yaml = """
            host_id: \(host)
            nats: { servers: [\(servers.joined(separator: ", "))] }
            replicas: \(replicas)
            http_port: 0
            exchange: { base_url: \(market.simulator.baseURL), key_file: \(market.keys.key), secret_file: \(market.keys.secret) }
            plugins:
              market-feed: { interval_s: 0.5 }
              market-state: {}
              universe: { check_s: 1, refresh_s: 15, rollout_step_s: 60 }
              ai-agent: {}
              intent-bridge: {}
              governor: { stop_dist_pct: 0.3 }
              portfolio-gate: {}
              executor: { resume_s: 5 }
              position-brain: { interval_s: 0.5 }
              harvest-proposer: { snapshot_grace_s: 1200 }
              heat-gate: {}
              apply-layer: {}
              sentinel: { interval_s: 2 }

            """
        return (yaml, try NodeConfig.parse(yaml, file: "\(host).yaml", registry: PluginCatalog.registry))
    }

    func spawnNode(_ host: String, _ yaml: String) throws -> Process {
        try spawn(host, yaml: yaml, executable: "qt", environment: ["QT_JOURNAL": journalPath(host)]) { ["host", "--config", $0] }
    }

    func journalPath(_ host: String) -> String { scratch.appendingPathComponent("\(host).journal").path }

    /// How many intents became plans and orders, and every decision by plugin, verdict and reason:
    /// where a run with fewer orders lost them.
    func funnel(_ bus: BusConnection) async throws -> String {
        let intents = try await storedMessages(TradeIntent.self, subject: "qt.signal.intent.*", bus: bus).count
        let proposed = try await storedMessages(Plan.self, subject: "qt.plan.proposed.*", bus: bus).count
        let sized = try await storedMessages(Plan.self, subject: "qt.plan.sized.*", bus: bus).count
        let approved = try await storedMessages(Plan.self, subject: "qt.plan.approved.*", bus: bus).count
        let results = try await storedMessages(OrderResult.self, subject: "qt.exec.result.*", bus: bus).count
        let decisions = try await storedMessages(Decision.self, subject: "qt.decision.*.*", bus: bus)
        let tally = Dictionary(grouping: decisions) { "\($0.plugin) \($0.verdict) \($0.reason)" }
            .map { "  \($0.value.count)\t\($0.key)" }.sorted()
        return (["funnel: \(intents) intents, \(proposed) proposed, \(sized) sized, \(approved) approved, \(results) results; decisions:"]
                + tally).joined(separator: "\n")
    }

    func setTradingState(_ state: TradingState, _ admin: BusConnection) async throws {
        var control = Control()
        control.tradingState = state
        control.reason = "chaos test"
        control.setBy = "operator@chaos"
        control.setAtMs = Int64(Date().timeIntervalSince1970 * 1000)
        try await retrying("trading state \(state)", seconds: 20) {
            _ = try await admin.keyValue("qt_control").put("trading_state", message: control)
        }
    }

    /// No ledger claim pending and every `qt_orders` record APPLIED or REJECTED.
    func quiet(_ admin: BusConnection) async throws -> Bool {
        let ledger = try await admin.keyValue("qt_ledger")
        for key in try await ledger.keys() {
            if let entry = try await ledger.get(LedgerEntry.self, key)?.value, !entry.pendingClientOrderID.isEmpty { return false }
        }
        let orders = try await admin.keyValue("qt_orders")
        for key in try await orders.keys() {
            if let record = try await orders.get(OrderRecord.self, key)?.value, record.status != .applied, record.status != .rejected {
                return false
            }
        }
        return true
    }

    /// The end of a run: REDUCING until no claim is pending and every order record finished,
    /// HALTED until position-brain's fills are in, every host stopped by SIGTERM (each must exit
    /// 0), then the ledger must equal the exchange for `symbols`. `steering` sets the state.
    func settleStopAndCompareBooks(_ hosts: [String: Process], steering: BusConnection, market: Market, symbols: [String]) async throws {
        try await setTradingState(.reducing, steering)
        try await waitUntil("no claim pending and every order record finished", seconds: 90) { (try? await self.quiet(self.bus)) ?? false }
        try await setTradingState(.halted, steering)
        try await waitUntil("position-brain's fills are in", seconds: 30) { (try? await self.quiet(self.bus)) ?? false }
        for (_, process) in hosts { process.terminate() }
        for (name, process) in hosts {
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "\(name): \(exitReport(of: name))")
        }
        let ledger = try await bus.keyValue("qt_ledger")
        for symbol in symbols {
            let amount = Decimal.parse(try await ledger.get(LedgerEntry.self, symbol)?.value.positionAmt ?? "0") ?? -999
            XCTAssertEqual(amount, market.simulator.exchange.positionAmount(symbol), "\(symbol): ledger = exchange")
        }
    }

    /// A CLOSE intent for `symbol` as an operator's tool publishes one: the whole exit path.
    func publishCloseIntent(_ symbol: String, on bus: BusConnection) async throws {
        var intent = TradeIntent()
        intent.intentID = ContentID.hash("test-close", symbol, UUID().uuidString)
        intent.symbol = symbol
        intent.action = .close
        intent.confidence = 1
        intent.model = "operator"
        intent.meta.eventTimeMs = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await bus.publish(OutgoingMessage(intent, subject: Subjects.intent(symbol), id: intent.intentID, producer: "operator@tests"))
    }

    func retrying(_ what: String, seconds: Double, _ body: () async throws -> Void) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do {
                return try await body()
            } catch {
                if Date() > deadline { throw error }
                try await Task.sleep(nanoseconds: 250_000_000)
            }
        }
    }
}
