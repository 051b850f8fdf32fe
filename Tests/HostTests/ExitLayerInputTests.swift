import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Identity
import Kernels
import Messages
import Plugins
import XCTest

/// The inputs of the exit layer: bars, market state, snapshots and the proposer's memory.
final class ExitLayerInputTests: ExitLayerTestCase {
    override func configure(_ config: inout SimulatorConfig) {
        config.barMs = 200
    }

    func snapshot(_ symbol: String, amount: String, mark: String) async throws {
        var snapshot = PositionSnapshot()
        snapshot.symbol = symbol
        snapshot.positionAmt = amount
        snapshot.markPrice = mark
        snapshot.asOfMs = Int64(Date().timeIntervalSince1970 * 1000)
        try await bus.keyValue("qt_snapshot").put(symbol, message: snapshot)
    }

    func publishTrendingState(_ symbol: String, asOfMs: Int64) async throws {
        var state = MarketState()
        state.symbol = symbol
        state.sigma = 0.005
        state.ts = 1.0
        state.pTrend = 0.8
        state.pMr = 0.1
        state.pChop = 0.1
        state.barsUsed = 301
        state.asOfMs = asOfMs
        state.meta.eventTimeMs = asOfMs
        _ = try await bus.publish(OutgoingMessage(state, subject: Subjects.marketState(symbol), id: "state-\(symbol)-\(asOfMs)",
                                                  producer: "test@market-state"))
    }

    /// A long at 100 with a 2 % stop marked at 105: R_net = (5 − 0.1) / 2 = 2.45, tranche level 1.
    func testATrancheAlreadyTakenIsNotProposedAgainAndQuietStatesRepublishAfterAMinute() async throws {
        let opened: Int64 = 1_800_000_000_000
        for (symbol, taken) in [("FRESHUSDT", Int32(0)), ("TAKENUSDT", Int32(1))] {
            var entry = LedgerEntry()
            entry.symbol = symbol
            entry.positionAmt = "2"
            entry.entryPrice = "100"
            entry.stopDistPct = 0.02
            entry.openedAtMs = opened
            entry.tranchesTaken = taken
            _ = try await putLedger(entry)
            try await snapshot(symbol, amount: "2", mark: "105")
        }
        _ = try await startPipeline(["harvest-proposer": [:]])
        for offset: Int64 in [60_000, 70_000, 130_000] {
            for symbol in ["FRESHUSDT", "TAKENUSDT"] { try await publishTrendingState(symbol, asOfMs: opened + offset) }
        }
        let proposals = try await readAll(HarvestProposal.self, subject: "qt.harvest.proposed.*", expected: 4)
        XCTAssertEqual(proposals.count, 4)
        let fresh = proposals.filter { $0.symbol == "FRESHUSDT" }, taken = proposals.filter { $0.symbol == "TAKENUSDT" }
        XCTAssertEqual(fresh.map(\.action), [.partial25, .partial25])
        XCTAssertEqual(fresh.first?.reasons, [.harvestTranche, .profitLock])
        XCTAssertEqual(fresh.first?.rNet ?? 0, 2.45, accuracy: 1e-9)
        XCTAssertEqual(taken.map(\.action), [.updateSl, .updateSl], "PARTIAL_25 was taken: only the profit lock is left")
        XCTAssertEqual(taken.first?.newStopPrice, "100.2")
        XCTAssertEqual(taken.first?.tranchesTaken, 1)
        XCTAssertEqual(proposals.map(\.meta.eventTimeMs).sorted(), [60_000, 60_000, 130_000, 130_000].map { opened + $0 },
                       "an unchanged state 10 s later is not republished; 70 s later it is")
        XCTAssertEqual(fresh.first?.proposalID,
                       ContentID.content(plugin: "harvest-proposer", kind: "proposal", symbol: "FRESHUSDT", eventTimeMs: opened + 60_000,
                                         revision: fresh.first?.ledgerRevision ?? 0))
    }

    func testPositionBrainRefusesAnAccountInHedgeMode() async throws {
        try await client.setHedgeMode(true)
        do {
            _ = try await startPipeline(["position-brain": [:]])
            XCTFail("position-brain must refuse hedge mode")
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains("hedge mode") && text.contains("dualSidePosition=false"), text)
        }
    }

    func testPositionBrainWritesSnapshotsAndPutsADivergentSymbolOnHold() async throws {
        let symbols = simulator.exchange.symbols
        try await openPosition(symbols[0], long: true)
        var phantom = LedgerEntry()
        phantom.symbol = symbols[1]
        phantom.positionAmt = "1"
        phantom.entryPrice = "1"
        _ = try await putLedger(phantom)
        _ = try await startPipeline(["position-brain": ["interval_s": "0.2"]])

        let alerts = try await readAll(Alert.self, subject: "qt.alert.reconcile", expected: 1)
        XCTAssertEqual(alerts.first?.symbol, symbols[1])
        XCTAssertEqual(alerts.first?.details["ledger"], "1")
        XCTAssertEqual(alerts.first?.details["exchange"], "0")
        let holds = try await bus.keyValue("qt_state").get(PluginState.self, "position-brain.reconcile")
        XCTAssertEqual(holds?.value.symbols, [symbols[1]], "only the divergent symbol is held")
        let snapshots = try await bus.keyValue("qt_snapshot")
        let position = try await snapshots.get(PositionSnapshot.self, symbols[0])
        let opened = try await bus.keyValue("qt_ledger").get(LedgerEntry.self, symbols[0])
        XCTAssertEqual(position?.value.positionAmt, Decimal.parse(opened?.value.positionAmt ?? "")?.plainString)
        XCTAssertFalse(position?.value.markPrice.isEmpty ?? true)
        let account = try await snapshots.get(AccountSnapshot.self, "_account")
        XCTAssertEqual(Decimal.parse(account?.value.totalWalletBalance ?? "").map { $0 > 9_000 }, true)
        let ledger = try await bus.keyValue("qt_ledger").get(LedgerEntry.self, symbols[1])
        XCTAssertEqual(ledger?.value.positionAmt, "1", "position-brain never edits the ledger")

        // The ledger is corrected (as `qt ledger adopt` would): the hold lifts.
        phantom.positionAmt = "0"
        _ = try await putLedger(phantom)
        try await waitUntil("hold lifted", seconds: 10) {
            try await self.bus.keyValue("qt_state").get(PluginState.self, "position-brain.reconcile")?.value.symbols.isEmpty ?? false
        }
    }

    /// Backfill, no duplicates, no gaps across a restart of the feed, and no state before 257 bars.
    func testBarsArriveOnceWithoutGapsAcrossARestartAndStateNeeds257() async throws {
        let symbol = simulator.exchange.symbols[2]
        try await openPosition(symbol, long: true)
        let plugins: [String: [String: String]] = ["market-feed": ["interval_s": "0.2", "backfill_bars": "250"], "market-state": [:]]
        let first = try await startPipeline(plugins)
        try await waitUntil("first market state", seconds: 30) { try await self.count(Subjects.marketState(symbol)) > 0 }
        await stopHost(first)
        try await Task.sleep(nanoseconds: 2_000_000_000)  // ~10 bars close while the feed is down
        let downAt = simulator.exchange.simulatedNowMs
        _ = try await startPipeline(plugins, host: "exit-b")
        let bars = try await read(Kline.self, subject: Subjects.kline(symbol), seconds: 60) { read in
            read.count >= 310 && (read.last?.openTimeMs ?? 0) > downAt + 5 * 60_000
        }
        let opens = bars.map(\.openTimeMs)
        XCTAssertGreaterThanOrEqual(opens.count, 310)
        guard opens.count >= 310 else { return }
        XCTAssertEqual(Set(opens).count, opens.count, "a bar is published once")
        XCTAssertEqual(zip(opens.dropFirst(), opens).filter { $0 - $1 != 60_000 }.count, 0, "no gap: the downtime was refetched")

        let states = try await read(MarketState.self, subject: Subjects.marketState(symbol), seconds: 30) { read in
            (read.last?.asOfMs ?? 0) >= bars.last!.closeTimeMs
        }
        XCTAssertEqual(states.first?.barsUsed, 257, "no state before 257 closes")
        XCTAssertEqual(states.first?.asOfMs, bars[256].closeTimeMs)
        XCTAssertEqual(states.map(\.barsUsed).max(), 301)
        let closes = bars.suffix(from: bars.count - 301).prefix(301)
        let latest = try XCTUnwrap(states.first { $0.asOfMs == closes.last!.closeTimeMs })
        let expected = try XCTUnwrap(MarketStateKernel.compute(closes: closes.map { Double($0.close)! }))
        XCTAssertEqual(latest.sigma, expected.sigma, accuracy: 1e-15)
        XCTAssertEqual(latest.pTrend, expected.pTrend, accuracy: 1e-15)
        let stored = try await bus.keyValue("qt_marketstate").get(MarketState.self, symbol)
        XCTAssertGreaterThanOrEqual(stored?.value.asOfMs ?? 0, latest.asOfMs)
    }
}
