import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// The portfolio gate and the executor on a real bus against the simulator: sized plans in,
/// orders on the exchange, the ledger equal to the exchange's positions.
final class ExecutorTests: ExecutionTestCase {
    override func configure(_ config: inout SimulatorConfig) {
        config.symbols = 120
    }

    func testAnEntryOpensWithAProtectiveStopAndAnExitClosesAndCancelsIt() async throws {
        let symbol = simulator.exchange.symbols[5]
        try await activeUniverse([symbol])
        try await freshAccount()
        _ = try await startPipeline(gateAndExecutor)

        let entry = try await entryPlan(symbol, long: true)
        try await submit(entry)
        let opened = try await results(symbol, expected: 1)
        XCTAssertEqual(opened.first?.status, .applied, "\(opened)")
        XCTAssertEqual(opened.first?.clientOrderID, ExecutorPlugin.clientOrderID(planID: entry.planID))

        let held = try await XCTUnwrapAsync(try await ledger(symbol))
        XCTAssertEqual(Decimal.parse(held.positionAmt), simulator.exchange.positionAmount(symbol))
        XCTAssertEqual(held.positionAmt, entry.quantity)
        XCTAssertEqual(held.pendingClientOrderID, "", "the claim is cleared with the fill")
        XCTAssertFalse(held.appliedFillIds.isEmpty)
        XCTAssertEqual(held.lastPlanID, entry.planID)
        let stops = try await client.openAlgoOrders(symbol: symbol)
        XCTAssertEqual(stops.map(\.clientAlgoId), [held.stopAlgoID], "one protective stop, recorded in the ledger")
        let stopPrice = try XCTUnwrap(Decimal.parse(held.stopPrice)), entryPrice = try XCTUnwrap(Decimal.parse(held.entryPrice))
        XCTAssertLessThan(stopPrice, entryPrice)
        XCTAssertGreaterThan(stopPrice, entryPrice * Decimal(0.97))
        let permit = try await bus.keyValue("qt_permits").get(Permit.self, entry.planID)
        XCTAssertNil(permit, "the executor deletes the permit it used")
        let record = try await bus.keyValue("qt_orders").get(OrderRecord.self, ExecutorPlugin.clientOrderID(planID: entry.planID))
        XCTAssertEqual(record?.value.status, .applied)

        // The same plan again (a replay after the duplicate window): no second order.
        let ordersBefore = simulator.exchange.acceptedOrders
        _ = try await bus.publish(OutgoingMessage(entry, subject: Subjects.planApproved(symbol), id: "replay-\(entry.planID)",
                                                  producer: "test@portfolio-gate"))
        let replayed = try await readAll(Decision.self, subject: "qt.decision.executor.\(symbol)", expected: 2)
        XCTAssertEqual(replayed.map(\.verdict), [.pass, .pass])
        XCTAssertEqual(simulator.exchange.acceptedOrders, ordersBefore, "a replayed plan resumes its APPLIED record")
        let resultsAfterReplay = try await read(OrderResult.self, subject: Subjects.execResult(symbol), seconds: 1) { _ in false }
        XCTAssertEqual(resultsAfterReplay.count, 1, "the result is published again under the same id: JetStream keeps one")

        let exit = try await closePlan(symbol)
        try await submit(exit)
        let closed = try await results(symbol, expected: 2)
        XCTAssertEqual(closed.last?.status, .applied, "\(closed)")
        let flat = try await XCTUnwrapAsync(try await ledger(symbol))
        XCTAssertEqual(Decimal.parse(flat.positionAmt), 0)
        XCTAssertEqual(simulator.exchange.positionAmount(symbol), 0)
        XCTAssertEqual(flat.stopAlgoID, "")
        let left = try await client.openAlgoOrders(symbol: symbol)
        XCTAssertTrue(left.isEmpty, "the CLOSE cancels the protective stop: \(left.map(\.clientAlgoId))")

        // Priced from the order response and the claimed entry, without listing trades: the same
        // figures as the exchange's trade list, and the ledger's realized PnL is the exchange's.
        XCTAssertEqual(simulator.exchange.requests("GET /fapi/v1/userTrades"), 0, "no trade list on the way")
        for result in closed {
            let trades = try await client.userTrades(symbol: symbol, orderId: result.exchangeOrderID)
            XCTAssertFalse(trades.isEmpty)
            XCTAssertEqual(Decimal.parse(result.realizedPnl), trades.reduce(Decimal(0)) { $0 + $1.realizedPnl }, "\(result.planKind)")
            XCTAssertEqual(Decimal.parse(result.fee), trades.reduce(Decimal(0)) { $0 + $1.commission }, "\(result.planKind)")
        }
        XCTAssertNotEqual(closed.last?.realizedPnl, "0", "the close realized something (the price moved)")
        XCTAssertEqual(Decimal.parse(flat.realizedPnl), Decimal.parse(closed.last?.realizedPnl ?? ""))
        XCTAssertTrue(flat.appliedFillIds.contains(LedgerBook.orderFillID(closed.last?.exchangeOrderID ?? 0)), "\(flat.appliedFillIds)")
    }

    /// Issue 18: a plan published on qt.plan.approved with a real permit id but other terms is
    /// refused (no order, no claim left, a CRITICAL alert); the plan the permit was granted for
    /// still executes.
    func testAPlanThatDiffersFromWhatItsPermitApprovedIsRefusedAndTheGenuineOneExecutes() async throws {
        let symbol = simulator.exchange.symbols[20], otherSymbol = simulator.exchange.symbols[21]
        try await activeUniverse([symbol, otherSymbol])
        let genuine = try await entryPlan(symbol, long: true)
        // The permit as portfolio-gate writes it (its own test checks it does).
        var permit = Permit()
        permit.planID = genuine.planID
        permit.kind = .p33
        permit.symbol = symbol
        permit.maxQuantity = genuine.quantity
        permit.grantedAtMs = Int64(Date().timeIntervalSince1970 * 1000)
        permit.expiresAtMs = genuine.expiresAtMs
        permit.planDigest = PlanDigest.of(genuine)
        try await bus.keyValue("qt_permits").put(genuine.planID, message: permit)
        _ = try await startPipeline(["executor": [:]])

        let quantity = try XCTUnwrap(Decimal.parse(genuine.quantity))
        var larger = genuine, otherSide = genuine, elsewhere = genuine
        larger.quantity = (quantity * 10).plainString
        otherSide.side = .sell
        elsewhere.symbol = otherSymbol
        let ordersBefore = simulator.exchange.acceptedOrders
        for (index, forged) in [larger, otherSide, elsewhere].enumerated() {
            _ = try await bus.publish(OutgoingMessage(forged, subject: Subjects.planApproved(forged.symbol), id: "forged-\(index)",
                                                      producer: "intruder"))
        }
        let refused = try await decisions("executor", symbol, expected: 2) + (try await decisions("executor", otherSymbol, expected: 1))
        XCTAssertEqual(refused.map(\.verdict), [.block, .block, .block])
        XCTAssertEqual(refused.map(\.reason), [.permitMismatch, .permitMismatch, .permitMismatch], "\(refused.map(\.detail))")
        let alerts = try await readAll(Alert.self, subject: Subjects.alert(.permitMismatch), expected: 3)
        XCTAssertEqual(Set(alerts.map(\.severity)), [.critical])
        XCTAssertEqual(simulator.exchange.acceptedOrders, ordersBefore, "no order for a forged plan")
        for held in [symbol, otherSymbol] {
            let claim = try await ledger(held)?.pendingClientOrderID ?? ""
            XCTAssertEqual(claim, "", "\(held): no claim left behind")
            XCTAssertEqual(simulator.exchange.positionAmount(held), 0)
        }
        let kept = try await bus.keyValue("qt_permits").get(Permit.self, genuine.planID)
        XCTAssertNotNil(kept, "a refused forgery leaves the permit to the plan it was granted for")

        _ = try await bus.publish(OutgoingMessage(genuine, subject: Subjects.planApproved(symbol), id: genuine.planID, producer: "test@portfolio-gate"))
        let executed = try await results(symbol, expected: 1)
        XCTAssertEqual(executed.map(\.status), [.applied], "\(executed.map { "\($0.errorCode) \($0.errorMessage)" })")
        XCTAssertEqual(simulator.exchange.positionAmount(symbol), quantity, "the approved quantity, not the forged one")
        XCTAssertEqual(simulator.exchange.acceptedOrders, ordersBefore + 1)
    }

    func testGateBlocksEntriesOutsideTheUniverseWhenReducingAndBeyondMaxPositions() async throws {
        let symbols = Array(simulator.exchange.symbols[10..<14])
        try await activeUniverse(Array(symbols[0..<3]))
        try await freshAccount()
        _ = try await startPipeline(["portfolio-gate": ["max_positions": "2"], "executor": [:]])

        for symbol in symbols { try await submit(try await entryPlan(symbol, long: true)) }
        var decisions: [String: Decision] = [:]
        for symbol in symbols {
            decisions[symbol] = try await readAll(Decision.self, subject: "qt.decision.portfolio-gate.\(symbol)", expected: 1).first
        }
        XCTAssertEqual(decisions[symbols[3]]?.reason, .notInUniverse)
        XCTAssertEqual(decisions.values.filter { $0.verdict == .pass }.count, 2, "\(decisions.mapValues { "\($0.verdict) \($0.reason)" })")
        XCTAssertEqual(decisions.values.filter { $0.reason == .maxPositions }.count, 1)
        let passed = decisions.filter { $0.value.verdict == .pass }.keys.sorted()
        for symbol in passed { _ = try await results(symbol, expected: 1) }
        let open = try await passed.asyncMap { try await self.ledger($0) }
        XCTAssertEqual(open.compactMap { $0 }.filter { Decimal.parse($0.positionAmt) != 0 }.count, 2)

        // REDUCING: a new entry is blocked, the exit of an open position goes through.
        var control = Control()
        control.tradingState = .reducing
        try await bus.keyValue("qt_control").put("trading_state", message: control)
        let blocked = symbols.first { !passed.contains($0) && $0 != symbols[3] }!
        try await submit(try await entryPlan(blocked, long: false))
        let reducing = try await readAll(Decision.self, subject: "qt.decision.portfolio-gate.\(blocked)", expected: 2)
        XCTAssertEqual(reducing.last?.reason, .tradingReducing)
        try await submit(try await closePlan(passed[0]))
        let closed = try await results(passed[0], expected: 2)
        XCTAssertEqual(closed.last?.status, .applied)
        XCTAssertEqual(simulator.exchange.positionAmount(passed[0]), 0)
    }

    /// Issue 6: with 20 % of responses lost after the fill, 200 plans (100 entries, 100 exits)
    /// make exactly 200 orders and a ledger equal to the exchange.
    func testLostResponsesAfterFillsStillGiveOneOrderPerPlan() async throws {
        let symbols = Array(simulator.exchange.symbols[15..<115])
        try await activeUniverse(symbols)
        try await freshAccount()
        var faults = simulator.exchange.faults
        faults.dropResponseAfterFillRate = 0.2
        simulator.exchange.faults = faults
        _ = try await startPipeline(gateAndExecutor)

        let ordersBefore = simulator.exchange.acceptedOrders
        for (index, symbol) in symbols.enumerated() {
            // Stops far away: a burst on the simulator may not close a position before its exit plan.
            var plan = try await entryPlan(symbol, long: index % 2 == 0)
            plan.stopDistPct = 0.5
            try await submit(plan)
        }
        for symbol in symbols { _ = try await results(symbol, expected: 1) }
        for symbol in symbols { try await submit(try await closePlan(symbol)) }
        for symbol in symbols {
            let done = try await results(symbol, expected: 2)
            XCTAssertEqual(done.map(\.status), [.applied, .applied], "\(symbol): \(done.map { "\($0.errorCode) \($0.errorMessage)" })")
        }
        XCTAssertEqual(simulator.exchange.acceptedOrders - ordersBefore, 2 * symbols.count, "exactly one order per plan")
        for symbol in symbols {
            let entry = try await ledger(symbol)
            XCTAssertEqual(Decimal.parse(entry?.positionAmt ?? ""), simulator.exchange.positionAmount(symbol), symbol)
            XCTAssertEqual(entry?.pendingClientOrderID, "", symbol)
        }
    }

    /// A fill the executor did not place (a triggered stop, as position-brain reports it) moves
    /// the ledger, once per trade id however often it is delivered.
    func testAFillFromTheExchangeIsAppliedOncePerTradeID() async throws {
        let symbol = simulator.exchange.symbols[7]
        try await activeUniverse([symbol])
        try await freshAccount()
        _ = try await startPipeline(gateAndExecutor)
        try await submit(try await entryPlan(symbol, long: true))
        _ = try await results(symbol, expected: 1)
        let held = try await XCTUnwrapAsync(try await ledger(symbol))

        var fill = Fill()
        fill.symbol = symbol
        fill.tradeID = 9_000_001
        fill.side = .sell
        fill.qty = held.positionAmt
        fill.price = held.stopPrice
        fill.realizedPnl = "-2.5"
        fill.origin = .stop
        fill.timeMs = 1_800_000_000_000
        for copy in 0..<2 {
            _ = try await bus.publish(OutgoingMessage(fill, subject: Subjects.execFill(symbol), id: "fill-\(copy)", producer: "test@position-brain"))
        }
        let decisions = try await readAll(Decision.self, subject: "qt.decision.executor.\(symbol)", expected: 3)
        XCTAssertEqual(decisions.dropFirst().map(\.verdict), [.pass, .skip], "\(decisions.map { "\($0.verdict) \($0.reason)" })")
        let flat = try await XCTUnwrapAsync(try await ledger(symbol))
        XCTAssertEqual(Decimal.parse(flat.positionAmt), 0)
        XCTAssertEqual(flat.realizedPnl, "-2.5")
        XCTAssertTrue(flat.appliedFillIds.contains("9000001"))
    }

    /// Issue 6: a protective stop that triggers on the exchange reaches the ledger through
    /// position-brain's trade poll and `qt.exec.fill.*`; the executor sends no closing order.
    func testATriggeredStopReachesTheLedgerWithoutAClosingOrder() async throws {
        let symbol = simulator.exchange.symbols[9]
        try await activeUniverse([symbol])
        try await freshAccount()
        _ = try await startPipeline(["portfolio-gate": ["max_positions": "10"], "executor": [:], "position-brain": ["interval_s": "0.3"]])
        let opened = try await openLongWithStopJustBelowTheMark(symbol)
        XCTAssertNotEqual(opened.stopAlgoID, "")
        let ordersAfterEntry = simulator.exchange.acceptedOrders

        simulator.exchange.force(symbol: symbol, regime: .trend, bars: 400, trendUp: false)
        try await waitUntil("the stop triggers and the ledger goes flat", seconds: 60) {
            Decimal.parse(try await self.ledger(symbol)?.positionAmt ?? "") == 0
        }
        XCTAssertEqual(simulator.exchange.positionAmount(symbol), 0)
        XCTAssertEqual(simulator.exchange.acceptedOrders, ordersAfterEntry, "the executor sent no closing order")
        let fills = try await readAll(Fill.self, subject: Subjects.execFill(symbol), expected: 1)
        XCTAssertEqual(fills.map(\.origin), [.stop])
        XCTAssertEqual(fills.first?.clientOrderID, opened.stopAlgoID)
        let flat = try await XCTUnwrapAsync(try await ledger(symbol))
        XCTAssertEqual(flat.stopAlgoID, "", "a flat ledger holds no stop")
        XCTAssertTrue(flat.appliedFillIds.contains(String(fills.first?.tradeID ?? 0)))
        let reconcile = try await count(Subjects.alert(.reconcile))
        XCTAssertEqual(reconcile, 0, "the stop fill is not a divergence")
    }
}
