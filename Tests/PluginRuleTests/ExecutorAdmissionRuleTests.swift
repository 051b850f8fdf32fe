import Exchange
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// The executor's admission (DESIGN.md §5, steps 1–3): what it checks before anything reaches
/// the exchange. One test per rule; a refused plan sends no order and leaves no claim.
final class ExecutorAdmissionRuleTests: RuleTestCase {
    var symbol: String { symbols[0] }

    override func setUp() async throws {
        try await super.setUp()
        let exchanges = try await startSimulator()
        try await host.start(ExecutorPlugin.registration(exchanges: exchanges), exchange: ExchangeSettings(baseURL: simulator!.baseURL))
    }

    func plan(_ kind: PlanKind = .open, side: Messages.OrderSide = .buy, quantity: String = "1", revision: UInt64 = 0) -> Plan {
        var plan = Plan()
        plan.meta.eventTimeMs = nextEventTime()
        plan.symbol = symbol
        plan.planID = ContentID.hash("rule-approved", symbol, String(eventTimeMs))
        plan.kind = kind
        plan.side = side
        plan.quantity = quantity
        plan.reduceOnly = kind != .open
        plan.stopDistPct = 0.02
        plan.ledgerRevision = revision
        plan.permitKind = kind == .open ? .p33 : .p26
        plan.expiresAtMs = host.clock.nowMs() + 60_000
        return plan
    }

    func permit(_ plan: Plan) async throws {
        var permit = Permit()
        permit.planID = plan.planID
        permit.kind = plan.permitKind
        permit.symbol = plan.symbol
        permit.expiresAtMs = plan.expiresAtMs
        _ = try await host.kv("qt_permits").put(plan.planID, permit)
    }

    func approve(_ plan: Plan, permitted: Bool = true) async throws {
        if permitted { try await permit(plan) }
        try await send(plan, on: Subjects.planApproved(plan.symbol), id: plan.planID)
    }

    /// No order reached the simulator, and the ledger holds no claim.
    func assertNothingSent(_ ordersBefore: Int, file: StaticString = #filePath, line: UInt = #line) async throws {
        XCTAssertEqual(simulator?.exchange.acceptedOrders, ordersBefore, "no order for a refused plan", file: file, line: line)
        let entry = try await host.kv("qt_ledger").get(LedgerEntry.self, symbol)?.value
        XCTAssertEqual(entry?.pendingClientOrderID ?? "", "", "a refused plan leaves no claim", file: file, line: line)
        let records = try await host.kv("qt_orders").keys()
        XCTAssertEqual(records, [], file: file, line: line)
    }

    func testAPlanWithoutAPermitIsBlocked() async throws {
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        try await approve(plan(), permitted: false)
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.permitMissing])
        try await assertNothingSent(before)
    }

    func testAnExpiredPlanIsBlocked() async throws {
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        var expired = plan()
        expired.expiresAtMs = host.clock.nowMs()
        try await approve(expired)
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.expired], "expiry is wall clock, inclusive")
        try await assertNothingSent(before)
    }

    func testHaltedBlocksAnExit() async throws {
        let revision = try await position(symbol, amount: "2")
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        try await tradingState(.halted)
        try await approve(plan(.close, side: .sell, quantity: "2", revision: revision))
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.tradingHalted])
        XCTAssertEqual(simulator?.exchange.acceptedOrders, before)
    }

    func testReducingBlocksAnEntry() async throws {
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        try await tradingState(.reducing)
        try await approve(plan())
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.tradingReducing])
        try await assertNothingSent(before)
    }

    func testAnExitMadeAtAnOlderLedgerRevisionIsStale() async throws {
        let revision = try await position(symbol, amount: "2")
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        try await approve(plan(.close, side: .sell, quantity: "2", revision: revision - 1))
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.stale])
        XCTAssertEqual(simulator?.exchange.acceptedOrders, before)
        let entry = try await host.kv("qt_ledger").get(LedgerEntry.self, symbol)
        XCTAssertEqual(entry?.revision, revision, "the ledger is not touched")
    }

    func testAnEntryOnAHeldSymbolIsStale() async throws {
        try await position(symbol, amount: "2")
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        try await approve(plan())
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.stale])
        XCTAssertEqual(simulator?.exchange.acceptedOrders, before)
    }

    func testAnEntryWhileAnotherOrderIsInFlightIsStale() async throws {
        var entry = LedgerEntry()
        entry.symbol = symbol
        entry.positionAmt = "0"
        entry.pendingClientOrderID = "qt-someoneelse"
        _ = try await host.kv("qt_ledger").put(symbol, entry)
        try await approve(plan())
        let decided = await decisions("executor", symbol)
        XCTAssertEqual(decided.map(\.reason), [.stale], summary(decided))
        XCTAssertTrue(decided.first?.detail.contains("in flight") == true)
    }

    func testAPermittedEntryIsRecordedAndUsesUpItsPermit() async throws {
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        let mark = try mark(symbol)
        let filters = try await XCTUnwrapAsync(try await BinanceFutures(config: ExchangeConfig(baseURL: simulator!.baseURL), credentials: nil)
            .symbolFilters()[symbol])
        let quantity = try filters.marketQuantity(120 / mark, price: mark, reduceOnly: false)
        let entry = plan(quantity: quantity.plainString)
        try await approve(entry)
        let permit = try await host.kv("qt_permits").get(Permit.self, entry.planID)
        XCTAssertNil(permit, "a permit is used once")
        let record = try await host.kv("qt_orders").get(OrderRecord.self, ExecutorPlugin.clientOrderID(planID: entry.planID))?.value
        XCTAssertEqual(record?.planID, entry.planID)
        XCTAssertEqual(simulator?.exchange.acceptedOrders, before + 1, "one order per plan")
        let decided = await decisions("executor", symbol)
        XCTAssertFalse(decided.contains { $0.verdict == .block }, summary(decided))
    }
}
