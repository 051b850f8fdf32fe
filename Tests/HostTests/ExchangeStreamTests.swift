import Exchange
import ExchangeSimulator
import Foundation
import Host
import Messages
import Plugins
import XCTest

/// Issue 19: market data and account events over the simulator's WebSocket streams, through
/// the real client, with REST only for backfill and reconciliation.
final class ExchangeStreamTests: ExecutionTestCase {
    /// Kline streams: connections the simulator drops mid-run are reopened, the bars missed in
    /// between are backfilled over REST, and each symbol's published sequence has no gap and no
    /// duplicate. The REST poll is slowed to once a minute, so the bars can only come from the streams.
    func testStreamedBarsHaveNoGapAndNoDuplicateWhenTheConnectionsDrop() async throws {
        let symbols = Array(simulator.exchange.symbols.prefix(3))
        try await activeUniverse(symbols)
        _ = try await startPipeline(["market-feed": ["interval_s": "60", "backfill_bars": "20"]], streaming: true)
        try await waitUntil("the kline streams are open", seconds: 20) { self.simulator.streamConnections >= 1 }
        let startedAt = simulator.exchange.simulatedNowMs
        for _ in 0..<3 {
            try await Task.sleep(for: .seconds(2))
            XCTAssertGreaterThanOrEqual(simulator.dropStreamConnections(), 1)
        }
        try await waitUntil("the kline streams reopen", seconds: 20) { self.simulator.streamConnections >= 1 }
        let until = simulator.exchange.simulatedNowMs + 10 * 60_000
        for symbol in symbols {
            let bars = try await read(Kline.self, subject: Subjects.kline(symbol), seconds: 60) { ($0.last?.openTimeMs ?? 0) >= until }
            let opens = bars.map(\.openTimeMs)
            XCTAssertGreaterThan(opens.last ?? 0, startedAt + 20 * 60_000, "\(symbol): bars kept coming after the drops")
            XCTAssertEqual(Set(opens).count, opens.count, "\(symbol): a bar is published once")
            XCTAssertEqual(zip(opens.dropFirst(), opens).filter { $0 - $1 != 60_000 }.map { "\($1)→\($0)" }, [],
                           "\(symbol): no gap across the dropped connections")
            let last = try XCTUnwrap(bars.last)
            let rest = try await client.klines(symbol: symbol, startTime: last.openTimeMs, limit: 1)
            XCTAssertEqual(rest.first.map { $0.close.plainString }, last.close, "\(symbol): the streamed bar is the one REST serves")
        }
        // REST backfills once per symbol per (re)connection (plus a retry or two); the ~40 bars a
        // symbol got after the first backfill came over the streams.
        let restRequests = simulator.exchange.requests("GET /fapi/v1/klines") - symbols.count
        XCTAssertLessThanOrEqual(restRequests, symbols.count * 3 + 6, "klines requests beyond the initial backfill")
    }

    /// A candidate the universe filtered out (trend strength under `min_ts`) keeps its bars: its
    /// market state must stay current for it to qualify again. Fed only while active, every
    /// candidate could fall out at once and freeze there (seen in a `qt up` run: no bars, no trades).
    func testACandidateTheUniverseFilteredOutKeepsItsBarsAndASymbolOutsideItGetsNone() async throws {
        let symbols = Array(simulator.exchange.symbols.prefix(3))
        var universe = Universe()
        universe.version = 1
        universe.maxActive = 1
        universe.entries = [(symbols[0], UniverseReason.active), (symbols[1], .belowMinTs)].enumerated().map { index, candidate in
            var entry = UniverseEntry()
            entry.symbol = candidate.0
            entry.rank = Int32(index + 1)
            entry.active = candidate.1 == .active
            entry.reason = candidate.1
            return entry
        }
        try await bus.keyValue("qt_universe").put("active", message: universe)
        _ = try await startPipeline(["market-feed": ["backfill_bars": "20"]], streaming: true)
        for symbol in symbols.prefix(2) {
            let bars = try await read(Kline.self, subject: Subjects.kline(symbol), seconds: 30) { !$0.isEmpty }
            XCTAssertFalse(bars.isEmpty, "\(symbol): bars for a universe candidate, active or not")
        }
        let outside = try await read(Kline.self, subject: Subjects.kline(symbols[2]), seconds: 3) { !$0.isEmpty }
        XCTAssertEqual(outside.count, 0, "\(symbols[2]) is not a candidate: no bars")
    }

    /// A protective stop the exchange triggers reaches the ledger from the user data stream: the
    /// trade poll runs only once a minute here, so only the stream can deliver it in time.
    func testATriggeredStopReachesTheLedgerFromTheUserDataStream() async throws {
        let symbol = simulator.exchange.symbols[9]
        try await activeUniverse([symbol])
        try await freshAccount()
        _ = try await startPipeline(["portfolio-gate": ["max_positions": "10"], "executor": [:],
                                     "position-brain": ["interval_s": "60", "reconcile_interval_s": "3600"]], streaming: true)
        try await waitUntil("the user data stream is open", seconds: 20) { self.simulator.streamConnections >= 1 }
        let opened = try await openLongWithStopJustBelowTheMark(symbol)

        simulator.exchange.force(symbol: symbol, regime: .trend, bars: 400, trendUp: false)
        try await waitUntil("the exchange triggers the stop", seconds: 30) { self.simulator.exchange.positionAmount(symbol) == 0 }
        let triggeredAt = ContinuousClock.now
        try await waitUntil("the ledger goes flat", seconds: 10) { Decimal.parse(try await self.ledger(symbol)?.positionAmt ?? "") == 0 }
        XCTAssertLessThan(ContinuousClock.now - triggeredAt, .seconds(5), "the stream, not the 60 s poll, delivered the stop")
        let fills = try await readAll(Fill.self, subject: Subjects.execFill(symbol), expected: 1)
        XCTAssertEqual(fills.map(\.origin), [.stop])
        XCTAssertEqual(fills.first?.clientOrderID, opened.stopAlgoID)
        let snapshot = try await bus.keyValue("qt_snapshot").get(PositionSnapshot.self, symbol)
        XCTAssertEqual(Decimal.parse(snapshot?.value.positionAmt ?? ""), 0, "ACCOUNT_UPDATE wrote the flat snapshot")
    }

    /// The listenKey expires: position-brain makes a new one, and the reconciliation that follows
    /// finds the trade that happened while no stream carried the account's events.
    func testAnExpiredListenKeyIsReplacedAndTheReconciliationFindsTheFillsInBetween() async throws {
        let symbol = simulator.exchange.symbols[4]
        try await openPosition(symbol, long: true, notional: 300)
        _ = try await startPipeline(["executor": [:], "position-brain": ["interval_s": "0.5", "reconcile_interval_s": "3600"]],
                                    streaming: true)
        try await waitUntil("the user data stream is open", seconds: 20) { self.simulator.streamConnections >= 1 }
        try await Task.sleep(for: .seconds(1))  // the first reconciliation sets the trade cursor
        let before = try await XCTUnwrapAsync(try await ledger(symbol))

        simulator.exchange.expireListenKeys()
        let amount = try XCTUnwrap(Decimal.parse(before.positionAmt))
        let allFilters = try await client.symbolFilters()
        let filters = try XCTUnwrap(allFilters[symbol])
        let half = SymbolFilters.floor(amount / 2, to: filters.stepSize)
        let manual = try await client.newOrder(NewOrder(symbol: symbol, side: .sell, quantity: half, reduceOnly: true,
                                                        clientOrderId: "manual-\(symbol)"))
        try await waitUntil("the ledger shows the manual trade", seconds: 20) {
            Decimal.parse(try await self.ledger(symbol)?.positionAmt ?? "") == amount - manual.executedQty
        }
        XCTAssertGreaterThanOrEqual(simulator.exchange.requests("POST /fapi/v1/listenKey"), 2, "a new listenKey after the expiry")
        let fills = try await readAll(Fill.self, subject: Subjects.execFill(symbol), expected: 1)
        XCTAssertEqual(fills.map(\.origin), [.external])
        XCTAssertEqual(fills.first.map { Decimal.parse($0.qty) }, manual.executedQty)
        let published = try await count(Subjects.execFill(symbol))
        XCTAssertEqual(published, 1, "the trade is published once")
    }

    /// A host that shuts down closes its exchange streams at once; left to the idle timeout they
    /// would reconnect to the exchange for seconds after the host is gone.
    func testAHostThatStopsClosesItsStreams() async throws {
        try await activeUniverse(Array(simulator.exchange.symbols.prefix(2)))
        let host = try await startPipeline(["market-feed": [:], "position-brain": [:]], streaming: true)
        try await waitUntil("the kline and user data streams are open", seconds: 20) { self.simulator.streamConnections >= 2 }
        await host.shutdown()
        try await waitUntil("every stream connection is closed", seconds: 5) { self.simulator.streamConnections == 0 }
    }
}
