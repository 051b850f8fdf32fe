import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Messages
import NatsServerKit
import Plugins
import XCTest

/// DESIGN.md §10, "Proof": a 3-node NATS cluster with R3, three `qt host` processes each running
/// every plugin, and the simulator with fast bars. While it trades: a host is SIGKILLed and
/// restarted, the leaders of QT_PLAN and KV_qt_ledger are SIGKILLed, a host is paused for twice the
/// lease TTL, every nats-server is restarted in turn through lame-duck mode, and a fourth host joins.
/// Then entries stop and in-flight work finishes, and the books must agree: ledger = exchange for
/// every symbol, no pending claim, every order record finished, every exchange fill accounted for,
/// every approved plan answered, no market-state window restarted; and the disturbed run placed at
/// least half the orders of an undisturbed one-host run with the same seed and length.
final class ChaosTests: PipelineTestCase {
    /// The disturbances take about 70 s; the rest of the window shows that trading came back.
    let length: TimeInterval = 140
    let symbols = 30
    let simulatedStartMs: Int64 = 1_800_000_000_000

    func testTradingSurvivesHostAndServerFailuresAndTheBooksAgree() async throws {
        let baseline = try await undisturbedRun()

        let cluster = try NatsCluster(nodes: 3, directory: scratch.appendingPathComponent("cluster"))
        defer { cluster.stopAll() }
        let admin = try BusConnection(ConnectionOptions(servers: cluster.urls, name: "chaos-admin"))
        defer { admin.close() }
        try await retrying("the cluster's JetStream", seconds: 30) { _ = try await admin.streams() }
        let market = try await startSimulator(symbols: symbols, startMs: simulatedStartMs)
        defer { Task { await market.simulator.stop() } }
        let names = ["host-1", "host-2", "host-3", "host-4"]
        let configs = try names.map { try pipelineConfig($0, servers: cluster.urls, replicas: 3, market: market) }
        _ = try await DeploymentProvisioning.provision(admin, replicas: 3, configs: configs.map(\.config), registry: PluginCatalog.registry,
                                                       provisionedBy: "chaos")
        var hosts: [String: Process] = [:]
        for (name, config) in zip(names.prefix(3), configs) { hosts[name] = try spawnNode(name, config.yaml) }
        let ordersAtStart = market.simulator.exchange.acceptedOrders
        try await waitUntil("the first order", seconds: 45) { market.simulator.exchange.acceptedOrders > ordersAtStart }
        // The same window as the undisturbed run: `length` seconds from the first order.
        let started = Date()
        let sampling = sampleBacklog(admin) { market.simulator.exchange.acceptedOrders - ordersAtStart }
        var log: [String] = []
        func note(_ text: String) {
            let orders = market.simulator.exchange.acceptedOrders - ordersAtStart
            log.append(String(format: "%5.1f s  %3d orders  ", Date().timeIntervalSince(started), orders) + text)
            print("chaos: " + log.last!)
        }

        // 1. SIGKILL a host, then restart it.
        kill(hosts["host-1"]!.processIdentifier, SIGKILL)
        hosts["host-1"]!.waitUntilExit()
        note("SIGKILL host-1")
        try await Task.sleep(nanoseconds: 2_000_000_000)
        hosts["host-1"] = try spawnNode("host-1", configs[0].yaml)
        note("host-1 restarted")
        try await Task.sleep(nanoseconds: 3_000_000_000)

        // 2. SIGKILL the leader of QT_PLAN, then of KV_qt_ledger (each restarted once the others elected).
        for stream in ["QT_PLAN", "KV_qt_ledger"] {
            var leader = ""
            try await retrying("\(stream)'s leader", seconds: 30) {
                leader = try await admin.streamInfo(stream).cluster?.leader ?? ""
                if leader.isEmpty { throw BusError.notFound("leader of \(stream)") }
            }
            cluster.kill(leader)
            note("SIGKILL \(leader), leader of \(stream)")
            try await Task.sleep(nanoseconds: 5_000_000_000)  // a RAFT election takes 4–9 s
            try cluster.restart(leader)
            note("\(leader) restarted")
            try await Task.sleep(nanoseconds: 2_000_000_000)
        }

        // 3. SIGSTOP a host for twice the lease TTL, then SIGCONT.
        kill(hosts["host-2"]!.processIdentifier, SIGSTOP)
        note("SIGSTOP host-2")
        try await Task.sleep(nanoseconds: UInt64(2 * PluginHost.leaseTTLMs) * 1_000_000)
        kill(hosts["host-2"]!.processIdentifier, SIGCONT)
        note("SIGCONT host-2")

        // 4. Every nats-server in turn: lame duck, exit, start again.
        for node in cluster.nodes {
            cluster.stopLameDuck(node.name, settleSeconds: 2)
            note("\(node.name) stopped in lame-duck mode")
            try cluster.restart(node.name)
            try await Task.sleep(nanoseconds: 2_000_000_000)
            note("\(node.name) restarted")
        }

        // 5. Add a host.
        hosts["host-4"] = try spawnNode("host-4", configs[3].yaml)
        note("host-4 joined")
        let remaining = length - Date().timeIntervalSince(started)
        if remaining > 0 { try await Task.sleep(nanoseconds: UInt64(remaining * 1e9)) }
        let placed = market.simulator.exchange.acceptedOrders - ordersAtStart
        note("entries stop: \(placed) orders placed")
        sampling.cancel()
        log += await sampling.value

        // Stop entries, let in-flight work finish, then stop every host and compare the books.
        try await setTradingState(.reducing, admin)
        try await waitUntil("no claim pending and every order record finished", seconds: 90) {
            (try? await self.quiet(admin)) ?? false
        }
        try await setTradingState(.halted, admin)
        try await waitUntil("position-brain's fills are in", seconds: 30) { (try? await self.quiet(admin)) ?? false }
        for (_, process) in hosts where process.isRunning { process.terminate() }
        for (name, process) in hosts {
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "\(name): \(self.exitReport(of: name))")
        }
        try await assertBooksAgree(admin, market: market)
        print("chaos: \(placed) orders with failures, \(baseline) undisturbed (same seed, \(Int(length)) s)\n" + log.joined(separator: "\n")
              + "\n" + (try await funnel(admin)))
        XCTAssertGreaterThanOrEqual(Double(placed), Double(baseline) / 2,
                                    "orders: \(placed) in the disturbed run, \(baseline) in the undisturbed one")
    }

    /// Where a window restarted: were the symbol's bars stored in order and without a gap? Tells a
    /// publisher's fault (a bar stored after the next one) from a consumer's (handled out of order).
    private func klineOrder(_ symbol: String, _ admin: BusConnection) async throws -> String {
        let opens = try await storedMessages(Kline.self, subject: Subjects.kline(symbol), bus: admin).map(\.openTimeMs)
        var notes: [String] = []
        for (index, open) in opens.enumerated().dropFirst() {
            let previous = opens[index - 1]
            if open <= previous { notes.append("#\(index) \(open) stored after \(previous)") }
            else if open - previous > 60_000 {
                notes.append("#\(index) gap \(previous) → \(open)")
            }
        }
        return "\(opens.count) klines stored; " + (notes.isEmpty ? "in order, no gap" : notes.prefix(10).joined(separator: ", "))
    }

    // MARK: - the runs

    /// One host on one server, nothing disturbed: the baseline order count.
    private func undisturbedRun() async throws -> Int {
        let market = try await startSimulator(symbols: symbols, startMs: simulatedStartMs)
        defer { Task { await market.simulator.stop() } }
        let config = try pipelineConfig("solo", servers: [server.url], replicas: 1, market: market)
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: [config.config], registry: PluginCatalog.registry)
        let host = try spawnNode("solo", config.yaml)
        let ordersAtStart = market.simulator.exchange.acceptedOrders
        try await waitUntil("the first order", seconds: 45) { market.simulator.exchange.acceptedOrders > ordersAtStart }
        let sampling = sampleBacklog(bus) { market.simulator.exchange.acceptedOrders - ordersAtStart }
        try await Task.sleep(nanoseconds: UInt64(length * 1e9))
        sampling.cancel()
        print((await sampling.value).map { "chaos undisturbed: " + $0 }.joined(separator: "\n"))
        let placed = market.simulator.exchange.acceptedOrders - ordersAtStart
        host.terminate()
        host.waitUntilExit()
        print("chaos: undisturbed run placed \(placed) orders in \(Int(length)) s\n" + (try await funnel(bus)))
        return placed
    }

    /// The trail's partition moves, and 30 lines either side of the first message handled after one
    /// with a higher stream sequence.
    static func aroundFirstReversal(_ trail: String) -> String {
        let lines = trail.split(separator: "\n")
        var highest: UInt64 = 0
        var reversal: Int?
        for (index, line) in lines.enumerated() where line.contains("\"kind\":\"handled\"") {
            guard let range = line.range(of: "\"seq\":"), let seq = UInt64(line[range.upperBound...].prefix { $0.isNumber }) else { continue }
            if seq < highest { reversal = index; break }
            highest = seq
        }
        let moves = lines.filter { !$0.contains("\"kind\":\"received\"") && !$0.contains("\"kind\":\"handled\"") }
        guard let reversal else { return (["no reversal; moves:"] + moves).joined(separator: "\n") }
        return (["moves:"] + moves + ["around line \(reversal):"] + lines[max(0, reversal - 30)..<min(lines.count, reversal + 30)])
            .joined(separator: "\n")
    }

    /// What market-state's hosts recorded for `symbol`'s klines (received, handled) and its partition moves.
    private func marketStateTrail(_ symbol: String, partition: Int) -> String {
        var lines: [(Int64, String)] = []
        for host in ["host-1", "host-2", "host-3", "host-4"] {
            guard let text = try? String(contentsOfFile: journalPath(host), encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.contains("\"instance\":\"market-state\"")
                && (line.contains("kline.\(symbol)\"") || (line.contains("\"partition\":\(partition),") && !line.contains("\"kind\":\"kv\"")
                    && !line.contains("\"kind\":\"received\"") && !line.contains("\"kind\":\"handled\""))) {
                let wall = line.range(of: "\"wall_ms\":").map { Int64(line[$0.upperBound...].prefix(13)) ?? 0 } ?? 0
                lines.append((wall, String(line)))
            }
        }
        return lines.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n")
    }

    // MARK: - checks

    /// Every 5 s until cancelled: each keyed plugin's backlog (`PartitionView`'s lag, summed over its
    /// partitions), to tell a lagging plugin from a refusing one.
    private func sampleBacklog(_ bus: BusConnection, orders: @escaping @Sendable () -> Int) -> Task<[String], Never> {
        Task {
            var samples: [String] = []
            let started = Date()
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 5_000_000_000)
                guard let view = try? await PartitionView.read(bus) else { continue }
                let backlog = view.backlogs.mapValues { $0.reduce(0) { $0 + $1.lag } }
                samples.append(String(format: "%5.1f s  %3d orders  backlog ", Date().timeIntervalSince(started), orders())
                               + backlog.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            return samples
        }
    }

    private func assertBooksAgree(_ admin: BusConnection, market: Market) async throws {
        let ledger = try await admin.keyValue("qt_ledger")
        let orders = try await admin.keyValue("qt_orders")
        var records: [OrderRecord] = []
        for key in try await orders.keys() {
            if let record = try await orders.get(OrderRecord.self, key)?.value { records.append(record) }
        }
        XCTAssertTrue(records.allSatisfy { $0.status == .applied || $0.status == .rejected },
                      "unfinished records: \(records.filter { $0.status != .applied && $0.status != .rejected }.map(\.clientOrderID))")
        let executorOrders = Set(records.map(\.exchangeOrderID).filter { $0 != 0 })
        var fills = 0
        for symbol in market.simulator.exchange.symbols {
            let entry = try await ledger.get(LedgerEntry.self, symbol)?.value
            XCTAssertEqual(entry?.pendingClientOrderID ?? "", "", "\(symbol): a claim is still pending")
            let ledgerAmount = Decimal.parse(entry?.positionAmt ?? "0") ?? -999
            XCTAssertEqual(ledgerAmount, market.simulator.exchange.positionAmount(symbol), "\(symbol): ledger = exchange")
            let applied = Set(entry?.appliedFillIds ?? [])
            for trade in try await market.client.userTrades(symbol: symbol, limit: 1000) {
                fills += 1
                XCTAssertTrue(executorOrders.contains(trade.orderId) || applied.contains(String(trade.id)),
                              "\(symbol): trade \(trade.id) of order \(trade.orderId) is neither an executor order nor applied to the ledger")
            }
        }
        // Every plan the portfolio gate approved was answered by the executor: a result or a decision.
        let approved = try await storedMessages(Plan.self, subject: "qt.plan.approved.*", bus: admin)
        let results = Set(try await storedMessages(OrderResult.self, subject: "qt.exec.result.*", bus: admin).map(\.planID))
        let decided = Set(try await storedMessages(Decision.self, subject: "qt.decision.executor.*", bus: admin).map(\.subjectID))
        let unanswered = approved.map(\.planID).filter { !results.contains($0) && !decided.contains($0) }
        XCTAssertEqual(unanswered, [], "approved plans without a result or a decision")
        // No symbol's market-state window restarted while its partition moved: bars_used never drops.
        let states = try await storedMessages(MarketState.self, subject: "qt.market.state.*", bus: admin)
        for (symbol, ofSymbol) in Dictionary(grouping: states, by: \.symbol) {
            let used = ofSymbol.sorted { $0.asOfMs < $1.asOfMs }.map(\.barsUsed)
            if used != used.sorted() {
                XCTFail("\(symbol): its market-state window restarted; bars used \(used); \(try await klineOrder(symbol, admin))")
                let trail = marketStateTrail(symbol, partition: try await admin.loadPartitioning().partition(of: symbol))
                if let keep = ProcessInfo.processInfo.environment["QT_KEEP_JOURNALS"] {
                    try? trail.write(toFile: "\(keep)/chaos-\(symbol).trail", atomically: true, encoding: .utf8)
                }
                print("chaos trail \(symbol) (market-state, around the first bar handled after a later one):\n" + Self.aroundFirstReversal(trail))
            }
        }
        print("chaos books: \(market.simulator.exchange.symbols.count) symbols, ledger = exchange, \(records.count) order records finished, "
              + "\(fills) exchange fills accounted for, \(approved.count) approved plans answered, "
              + "\(states.count) market states without a window restart")
    }
}
