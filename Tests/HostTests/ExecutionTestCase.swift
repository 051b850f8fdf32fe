import Bus
import Exchange
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// The entry and execution side on a real bus against the simulator: helpers to write the
/// universe and an account snapshot, make entry and exit plans, and read results and the ledger.
class ExecutionTestCase: ExitLayerTestCase {
    let gateAndExecutor = ["portfolio-gate": ["max_positions": "200"], "executor": [:]]

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
        try await bus.keyValue("qt_universe").put("active", message: universe)
    }

    /// A long entry through the running executor with its protective stop 0.4 % under the mark,
    /// close enough for a forced down-trend to trigger it; returns the ledger entry it opened.
    func openLongWithStopJustBelowTheMark(_ symbol: String) async throws -> LedgerEntry {
        var plan = try await entryPlan(symbol, long: true)
        let filters = try await client.symbolFilters()
        let mark = try XCTUnwrap(simulator.exchange.mark(symbol))
        plan.stopPrice = try XCTUnwrap(filters[symbol]).roundPrice(mark * Decimal(0.996), .down).plainString
        try await submit(plan)
        check(try await results(symbol, expected: 1).map(\.status), [.applied])
        return try await XCTUnwrapAsync(try await ledger(symbol))
    }

    func freshAccount(marginRatio: Double = 0.05) async throws {
        var account = AccountSnapshot()
        account.marginRatio = marginRatio
        account.asOfMs = Int64(Date().timeIntervalSince1970 * 1000)
        try await bus.keyValue("qt_snapshot").put("_account", message: account)
    }

    func entryPlan(_ symbol: String, long: Bool, notional: Decimal = 120, stopDistPct: Double = 0.02) async throws -> Plan {
        let filters = try await client.symbolFilters()
        let mark = try XCTUnwrap(simulator.exchange.mark(symbol))
        var plan = Plan()
        plan.planID = ContentID.hash("test-entry", symbol, UUID().uuidString)
        plan.symbol = symbol
        plan.kind = .open
        plan.side = long ? .buy : .sell
        plan.quantity = try XCTUnwrap(filters[symbol]).marketQuantity(notional / mark, price: mark, reduceOnly: false).plainString
        plan.stopDistPct = stopDistPct
        plan.permitKind = .p33
        plan.expiresAtMs = Int64(Date().timeIntervalSince1970 * 1000) + 60_000
        return plan
    }

    func closePlan(_ symbol: String) async throws -> Plan {
        let found = try await XCTUnwrapAsync(try await bus.keyValue("qt_ledger").get(LedgerEntry.self, symbol))
        let amount = try XCTUnwrap(Decimal.parse(found.value.positionAmt))
        var plan = Plan()
        plan.planID = ContentID.hash("test-close", symbol, String(found.revision))
        plan.symbol = symbol
        plan.kind = .close
        plan.side = amount > 0 ? .sell : .buy
        plan.quantity = abs(amount).plainString
        plan.reduceOnly = true
        plan.ledgerRevision = found.revision
        plan.permitKind = .p26
        return plan
    }

    func submit(_ plan: Plan) async throws {
        _ = try await bus.publish(OutgoingMessage(plan, subject: Subjects.planSized(plan.symbol), id: plan.planID, producer: "test@governor"))
    }

    func results(_ symbol: String, expected: Int) async throws -> [OrderResult] {
        try await readAll(OrderResult.self, subject: Subjects.execResult(symbol), expected: expected)
    }

    func ledger(_ symbol: String) async throws -> LedgerEntry? {
        try await bus.keyValue("qt_ledger").get(LedgerEntry.self, symbol)?.value
    }

    func decisions(_ plugin: String, _ symbol: String, expected: Int) async throws -> [Decision] {
        try await readAll(Decision.self, subject: "qt.decision.\(plugin).\(symbol)", expected: expected)
    }

    /// XCTAssertEqual for values that need `try await` (its autoclosures cannot await).
    func check<T: Equatable>(_ actual: T, _ expected: T, _ message: @autoclosure () -> String = "",
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual, expected, message(), file: file, line: line)
    }

    func setTradingState(_ state: TradingState) async throws {
        var control = Control()
        control.tradingState = state
        try await bus.keyValue("qt_control").put("trading_state", message: control)
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var mapped: [T] = []
        for element in self { mapped.append(try await transform(element)) }
        return mapped
    }
}
