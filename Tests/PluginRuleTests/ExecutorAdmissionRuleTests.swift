import Exchange
import ExchangeSimulator
import Foundation
import Host
import Identity
import Messages
@testable import Plugins
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

    func permit(_ plan: Plan, grantedAtMs: Int64 = 0) async throws {
        var permit = Permit()
        permit.grantedAtMs = grantedAtMs
        permit.planID = plan.planID
        permit.kind = plan.permitKind
        permit.symbol = plan.symbol
        permit.expiresAtMs = plan.expiresAtMs
        permit.planDigest = PlanDigest.of(plan)
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
        let waiting = await reasons("executor", symbol)
        XCTAssertEqual(waiting, [], "the permit travels beside the plan: its first delivery waits a retry")
        await host.advance(byMs: 1_000)
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.permitMissing])
        try await assertNothingSent(before)
    }

    /// The executor reads permits from a watched view, but a view learns nothing when the
    /// bucket's TTL (on the server's clock) removes a key: a permit it holds is taken only well
    /// inside that TTL by the executor's clock, and an older one is read from the bucket. An exit
    /// is judged by its permit alone (no plan expiry, R6), so this is what refuses a stale one.
    func testAnExitWhosePermitTheBucketHasExpiredIsBlockedThoughTheViewStillHoldsIt() async throws {
        let revision = try await position(symbol, amount: "2")
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        let close = plan(.close, side: .sell, quantity: "2", revision: revision)
        try await permit(close, grantedAtMs: host.clock.nowMs())
        // A plan without a permit has the executor load its view, which now holds the close's permit.
        try await approve(plan(.close, side: .sell, quantity: "2", revision: revision), permitted: false)
        await host.advance(byMs: 61_000)  // also the plan's retry: it is refused
        let expired = try await host.kv("qt_permits").get(Permit.self, close.planID)
        XCTAssertNil(expired, "the bucket's TTL has removed the permit")
        try await send(close, on: Subjects.planApproved(symbol), id: close.planID)
        await host.advance(byMs: 1_000)
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.permitMissing, .permitMissing])
        XCTAssertEqual(simulator?.exchange.acceptedOrders, before)
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

    func testAnUnknownTradingStateIsHaltedForEntriesAndExits() async throws {
        let revision = try await position(symbol, amount: "2")
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        for state in [TradingState.UNRECOGNIZED(42), .unspecified] {
            try await tradingState(state)
            try await approve(plan(.close, side: .sell, quantity: "2", revision: revision))
        }
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.tradingHalted, .tradingHalted], "a state the executor cannot read fails closed")
        XCTAssertEqual(simulator?.exchange.acceptedOrders, before)
    }

    /// Issue 17's crash loop: a plan with an infinite stop distance filled, then trapped the
    /// stop placement on every restart. It is refused at admission now, before any order.
    func testAPlanWithNonFiniteOrUnparseableNumbersIsDeadLetteredBeforeAnyOrder() async throws {
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        var infinite = plan(quantity: "1")
        infinite.stopDistPct = .infinity
        var notANumber = plan(quantity: "NaN")
        notANumber.planID += "-nan"
        var prefix = plan(quantity: "1.5-2")
        prefix.planID += "-prefix"
        var huge = plan(quantity: "1e300")
        huge.planID += "-huge"
        for bad in [infinite, notANumber, prefix, huge] { try await approve(bad) }
        let letters = await host.deadLetters.filter { $0.plugin == "executor" }
        XCTAssertEqual(letters.count, 4, letters.map(\.reason).joined(separator: "\n"))
        XCTAssertTrue(letters[0].reason.contains("stop_dist_pct is inf"), letters[0].reason)
        XCTAssertTrue(letters[1].reason.contains("quantity is \"NaN\""), letters[1].reason)
        XCTAssertTrue(letters[2].reason.contains("quantity is \"1.5-2\""), letters[2].reason)
        try await assertNothingSent(before)
    }

    /// `qt_orders` has no TTL: a record left SENT by an outage longer than a day is still there
    /// for recovery (it used to expire, and the claim was then released without the fill). A
    /// finished record is removed by the recovery pass after a day.
    func testAnUnfinishedRecordOutlivesADayAndAFinishedOneIsSweptAfterIt() async throws {
        let orders = host.kv("qt_orders")
        func record(_ id: String, _ status: Messages.OrderStatus, updatedAtMs: Int64) -> OrderRecord {
            var record = OrderRecord()
            record.clientOrderID = id
            record.planID = id
            record.symbol = symbol
            record.status = status
            record.updatedAtMs = updatedAtMs
            return record
        }
        _ = try await orders.put("qt-unfinished", record("qt-unfinished", .sent, updatedAtMs: host.clock.nowMs()))
        await host.advance(byMs: 25 * 3_600_000)
        let survived = try await orders.get(OrderRecord.self, "qt-unfinished")
        XCTAssertEqual(survived?.value.status, .sent, "an unfinished record never expires")
        try await orders.delete("qt-unfinished")  // recovery would resume it against the simulator

        _ = try await orders.put("qt-old", record("qt-old", .applied, updatedAtMs: host.clock.nowMs() - 25 * 3_600_000))
        _ = try await orders.put("qt-recent", record("qt-recent", .rejected, updatedAtMs: host.clock.nowMs()))
        try await host.tick("executor", "resume")
        let left = try await orders.keys()
        XCTAssertEqual(left, ["qt-recent"], "finished records are kept a day for qt trace, then removed")
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
        let entry = plan()
        try await approve(entry)
        let reasons = await reasons("executor", symbol)
        XCTAssertEqual(reasons, [.stale])
        XCTAssertEqual(simulator?.exchange.acceptedOrders, before)
        try await assertRefusedBeforeSending(entry, ordersBefore: before)
    }

    /// An OPEN's record is created beside its claim: a refused claim leaves it REJECTED "refused
    /// before sending", no result is published, and the plan met again is the same STALE block.
    func assertRefusedBeforeSending(_ plan: Plan, ordersBefore: Int, file: StaticString = #filePath, line: UInt = #line) async throws {
        let clientOrderID = ExecutorPlugin.clientOrderID(planID: plan.planID)
        let record = try await host.kv("qt_orders").get(OrderRecord.self, clientOrderID)?.value
        XCTAssertEqual(record?.status, .rejected, file: file, line: line)
        XCTAssertEqual(record?.errorCode, OrderLifecycle.refusedBeforeSending, file: file, line: line)
        let permit = try await host.kv("qt_permits").get(Permit.self, plan.planID)
        XCTAssertNil(permit, "the permit is used up", file: file, line: line)
        try await send(plan, on: Subjects.planApproved(plan.symbol), id: "again-\(plan.planID)")
        let again = await decisions("executor", plan.symbol)
        XCTAssertEqual(again.map(\.reason), [.stale, .stale], summary(again), file: file, line: line)
        XCTAssertEqual(again.last?.detail, record?.errorMessage, file: file, line: line)
        let results = await host.messages(OrderResult.self, on: "qt.exec.result.*")
        XCTAssertEqual(results, [], "a refusal publishes no result", file: file, line: line)
        XCTAssertEqual(simulator?.exchange.acceptedOrders, ordersBefore, file: file, line: line)
    }

    /// A SENT record the exchange does not know after the receive window, whose claim is gone, was
    /// never sent (a crash after an OPEN's create, its claim refused): finished without an order.
    func testASentRecordWithoutItsClaimThatTheExchangeNeverGotIsNotSent() async throws {
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        let entry = plan()
        var record = OrderRecord()
        record.planID = entry.planID
        record.clientOrderID = ExecutorPlugin.clientOrderID(planID: entry.planID)
        record.symbol = symbol
        record.side = .buy
        record.quantity = "1"
        record.planKind = .open
        record.plan = entry
        record.status = .sent
        record.sentAtMs = host.clock.nowMs() - 60_000
        record.updatedAtMs = record.sentAtMs
        _ = try await host.kv("qt_orders").put(record.clientOrderID, record)
        try await send(entry, on: Subjects.planApproved(symbol), id: entry.planID)
        let decided = await decisions("executor", symbol)
        XCTAssertEqual(decided.map(\.reason), [.stale], summary(decided))
        XCTAssertTrue(decided.first?.detail.contains("never sent") == true, summary(decided))
        let finished = try await host.kv("qt_orders").get(OrderRecord.self, record.clientOrderID)?.value
        XCTAssertEqual(finished?.status, .rejected)
        XCTAssertEqual(finished?.errorCode, OrderLifecycle.refusedBeforeSending)
        XCTAssertEqual(simulator?.exchange.acceptedOrders, before, "not sent after the window without the claim")
    }

    func testAnEntryWhileAnotherOrderIsInFlightIsStale() async throws {
        var entry = LedgerEntry()
        entry.symbol = symbol
        entry.positionAmt = "0"
        entry.pendingClientOrderID = "qt-someoneelse"
        _ = try await host.kv("qt_ledger").put(symbol, entry)
        let before = try XCTUnwrap(simulator?.exchange.acceptedOrders)
        let opening = plan()
        try await approve(opening)
        let decided = await decisions("executor", symbol)
        XCTAssertEqual(decided.map(\.reason), [.stale], summary(decided))
        XCTAssertTrue(decided.first?.detail.contains("in flight") == true)
        try await assertRefusedBeforeSending(opening, ordersBefore: before)
        let claim = try await host.kv("qt_ledger").get(LedgerEntry.self, symbol)?.value
        XCTAssertEqual(claim?.pendingClientOrderID, "qt-someoneelse", "the other order's claim is untouched")
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

/// Each host measures its clock against the exchange's on the executor's pass and says so
/// above a second, once an hour.
final class ClockSkewRuleTests: RuleTestCase {
    func testASkewOverASecondRaisesOneClockAlertAnHour() async throws {
        let exchanges = try await startSimulator(faults: SimulatorFaults(clockSkewMs: 5_000))
        try await host.start(ExecutorPlugin.registration(exchanges: exchanges), exchange: ExchangeSettings(baseURL: simulator!.baseURL))
        try await host.tick("executor", "resume")
        try await host.tick("executor", "resume")
        let alerts = await host.messages(Alert.self, on: "qt.alert.clock")
        XCTAssertEqual(alerts.count, 1, "once an hour per host")
        let offset = try XCTUnwrap(Int64(alerts.first?.details["offset_ms"] ?? ""))
        XCTAssertGreaterThan(offset, 4_000, "the exchange runs 5 s ahead")
        XCTAssertTrue(alerts.first?.message.contains("behind") == true, alerts.first?.message ?? "")
        await host.advance(byMs: 3_600_000)
        try await host.tick("executor", "resume")
        let later = await host.messages(Alert.self, on: "qt.alert.clock")
        XCTAssertEqual(later.count, 2)
    }

    func testAClockWithinASecondRaisesNothing() async throws {
        let exchanges = try await startSimulator()
        try await host.start(ExecutorPlugin.registration(exchanges: exchanges), exchange: ExchangeSettings(baseURL: simulator!.baseURL))
        try await host.tick("executor", "resume")
        let alerts = await host.messages(Alert.self, on: "qt.alert.clock")
        XCTAssertEqual(alerts.count, 0)
    }
}
