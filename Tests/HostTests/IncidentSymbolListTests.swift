import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// The incident's R4 and R5 (DESIGN.md §1): four symbol lists drifted apart (8, 566, 3, 4), 566
/// symbols with no concentration limit opened 45 positions, and the exit side looped over a
/// 3-symbol list so 42 of them were never considered for exit. Here the whole entry side runs on
/// 566 symbols (universe → intent-bridge → governor → portfolio-gate → executor) and the exit side
/// on the ledger, with the sentinel and the trading state, against the simulator.
final class IncidentSymbolListTests: ExecutionTestCase {
    override func configure(_ config: inout SimulatorConfig) {
        config.symbols = 566
        config.historyBars = 300
    }

    let eventTimeMs: Int64 = 1_800_000_000_000

    func strongIntent(_ symbol: String, _ action: IntentAction, at eventTimeMs: Int64) async throws -> TradeIntent {
        var intent = TradeIntent()
        intent.intentID = ContentID.hash("ai-agent", symbol, String(eventTimeMs), "test")
        intent.symbol = symbol
        intent.action = action
        intent.confidence = 0.95
        intent.leverage = 3
        intent.model = "test"
        intent.meta.eventTimeMs = eventTimeMs
        _ = try await bus.publish(OutgoingMessage(intent, subject: Subjects.intent(symbol), id: intent.intentID, producer: "test@ai-agent"))
        return intent
    }

    func marketState(_ symbol: String, asOfMs: Int64) async throws {
        var state = MarketState()
        state.symbol = symbol
        state.sigma = 0.002
        state.ts = 0.5
        (state.pTrend, state.pMr, state.pChop) = (0.6, 0.2, 0.2)
        state.asOfMs = asOfMs
        try await bus.keyValue("qt_marketstate").put(symbol, message: state)
    }

    func openPositions() async throws -> [String: Decimal] {
        let ledger = try await bus.keyValue("qt_ledger")
        var open: [String: Decimal] = [:]
        for key in try await ledger.keys() {
            if let amount = try await ledger.get(LedgerEntry.self, key).flatMap({ Decimal.parse($0.value.positionAmt) }), amount != 0 {
                open[key] = amount
            }
        }
        return open
    }

    func testFortyFiveSignalsOver566SymbolsOpenAtMostTenInsideTheUniverseAndEveryPositionGetsExitProposals() async throws {
        try await freshAccount()
        // Stops 30 % away: at a bar every 250 ms, 2 % stops trigger while the exit side backfills,
        // and a position the stop closed needs no exit proposal.
        _ = try await startPipeline([
            "universe": ["check_s": "1", "candidates": "40", "min_ts": "0", "rollout": "30"],
            "intent-bridge": [:], "governor": ["stop_dist_pct": "0.3"], "portfolio-gate": ["max_positions": "10"], "executor": [:],
        ])
        try await waitUntil("the universe is written", seconds: 30) {
            try await bus.keyValue("qt_universe").get(Universe.self, "active") != nil
        }
        let universe = try await XCTUnwrapAsync(try await bus.keyValue("qt_universe").get(Universe.self, "active")).value
        let active = universe.entries.filter(\.active).map(\.symbol)
        XCTAssertEqual(active.count, 30)
        XCTAssertEqual(universe.entries.count, 40)
        let volumes = universe.entries.map(\.quoteVolume)
        XCTAssertEqual(volumes, volumes.sorted(by: >), "ranked by 24 h quote volume")
        let outside = simulator.exchange.symbols.filter { !active.contains($0) }.suffix(15)
        let signalled = active + outside

        for symbol in signalled { try await marketState(symbol, asOfMs: eventTimeMs) }
        for (index, symbol) in signalled.enumerated() {
            _ = try await strongIntent(symbol, index % 3 == 0 ? .openShort : .openLong, at: eventTimeMs)
        }
        try await waitUntil("every intent decided", seconds: 60) { try await count("qt.decision.intent-bridge.*") == 45 }
        try await waitUntil("every proposed plan sized or blocked", seconds: 60) { try await count("qt.decision.governor.*") == 30 }
        let sized = try await count("qt.plan.sized.*")
        try await waitUntil("every sized plan through the portfolio gate", seconds: 60) {
            try await count("qt.decision.portfolio-gate.*") == sized
        }
        let approved = try await count("qt.plan.approved.*")
        try await waitUntil("every approved plan executed", seconds: 120) { try await count("qt.exec.result.*") == approved }

        let open = try await openPositions()
        XCTAssertEqual(open.count, 10, "max_positions: \(open.keys.sorted())")
        XCTAssertTrue(Set(open.keys).isSubset(of: Set(active)), "no position outside the universe")
        for (symbol, amount) in open { XCTAssertEqual(simulator.exchange.positionAmount(symbol), amount, symbol) }
        let exchangeOpen = simulator.exchange.symbols.filter { simulator.exchange.positionAmount($0) != 0 }
        XCTAssertEqual(exchangeOpen.count, 10)
        for symbol in outside {
            check(try await decisions("intent-bridge", symbol, expected: 1).first?.reason, .notInUniverse)
        }

        // The exit side has no list of its own: every open position in the ledger gets proposals.
        let exitSide = try await startPipeline(["market-feed": ["interval_s": "0.3"], "market-state": [:],
                                                "position-brain": ["interval_s": "0.5"], "harvest-proposer": [:]], host: "exit")
        let proposals = try await read(HarvestProposal.self, subject: "qt.harvest.proposed.*", seconds: 90) { read in
            Set(read.map(\.symbol)).isSuperset(of: open.keys)
        }
        let proposed = Set(proposals.map(\.symbol))
        XCTAssertEqual(proposed, Set(open.keys), "open positions without an exit proposal: \(Set(open.keys).subtracting(proposed).sorted())")
        // Its market states would replace the ones this test writes below.
        await stopHost(exitSide)

        // The limit lowered while positions are open: the sentinel alerts.
        _ = try await startPipeline(["sentinel": ["interval_s": "0.5", "max_positions": "5"]], host: "watch")
        let alert = try await readAll(Alert.self, subject: Subjects.alert(.maxPositions), expected: 1).first
        XCTAssertEqual(alert?.details["open"], "10")

        // HALTED blocks everything, exits included; REDUCING lets the exit through and not the entry.
        let held = open.keys.sorted()[0]
        let flat = active.first { open[$0] == nil }!
        try await setTradingState(.halted)
        _ = try await strongIntent(held, .close, at: eventTimeMs + 60_000)
        _ = try await strongIntent(flat, .openLong, at: eventTimeMs + 60_000)
        check(try await decisions("governor", held, expected: 2).last?.reason, .tradingHalted)
        check(try await decisions("governor", flat, expected: 2).last?.reason, .tradingHalted)
        XCTAssertEqual(simulator.exchange.positionAmount(held), open[held])

        try await setTradingState(.reducing)
        try await marketState(flat, asOfMs: eventTimeMs + 120_000)
        _ = try await strongIntent(held, .close, at: eventTimeMs + 120_000)
        _ = try await strongIntent(flat, .openLong, at: eventTimeMs + 120_000)
        check(try await decisions("governor", flat, expected: 3).last?.reason, .tradingReducing)
        try await waitUntil("the exit goes through under REDUCING", seconds: 30) { simulator.exchange.positionAmount(held) == 0 }
        // The ledger follows the fill a moment later (the executor's compare-and-set after the order).
        try await waitUntil("the ledger shows the close", seconds: 15) {
            Decimal.parse(try await self.ledger(held)?.positionAmt ?? "") == 0
        }
        let closed = try await ledger(held)
        XCTAssertEqual(Decimal.parse(closed?.positionAmt ?? ""), 0)
        check(try await openPositions().count, 9)
    }
}
