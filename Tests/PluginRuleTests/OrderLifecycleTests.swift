@testable import Exchange
import Foundation
import Host
import Messages
@testable import Plugins
import XCTest

/// The executor's order lifecycle, one test per transition: what each status does with each
/// answer, which record it saves and where the crash points sit. Pure: no host, no exchange.
final class OrderLifecycleTests: XCTestCase {
    let now: Int64 = 1_000_000

    func record(_ status: Messages.OrderStatus, kind: PlanKind = .open, side: Messages.OrderSide = .buy, quantity: String = "2") -> OrderRecord {
        var plan = Plan()
        plan.planID = "0123456789abcdef0123456789abcdef-plan"
        plan.symbol = "ETHUSDT"
        plan.kind = kind
        plan.side = side
        plan.quantity = quantity
        plan.reduceOnly = kind != .open
        plan.stopDistPct = 0.05
        if kind == .updateStop { plan.stopPrice = "1900.5" }
        var record = OrderRecord()
        record.planID = plan.planID
        record.clientOrderID = ExecutorPlugin.clientOrderID(planID: plan.planID)
        record.symbol = plan.symbol
        record.side = side
        record.quantity = quantity
        record.reduceOnly = plan.reduceOnly
        record.planKind = kind
        record.plan = plan
        record.status = status
        record.sentAtMs = 500
        record.updatedAtMs = 500
        return record
    }

    /// A FILLED record with what the exchange executed.
    func filled(_ kind: PlanKind = .open, side: Messages.OrderSide = .buy, qty: String = "2", price: String = "2000", pnl: String = "0",
                trades: [String] = ["1"]) -> OrderRecord {
        var filled = record(.filled, kind: kind, side: side, quantity: qty)
        filled.executedQty = qty
        filled.avgPrice = price
        filled.realizedPnl = pnl
        filled.fillIds = trades
        return filled
    }

    func response(_ status: Exchange.OrderStatus, executed: Decimal = 2, avgPrice: Decimal = 2000) -> OrderResponse {
        OrderResponse(orderId: 77, symbol: "ETHUSDT", status: status, clientOrderId: "qt-0123456789abcdef0123456789abcdef",
                      price: 0, avgPrice: avgPrice, origQty: 2, executedQty: executed, cumQuote: executed * avgPrice,
                      timeInForce: "GTC", type: "MARKET", reduceOnly: false, closePosition: false, side: .buy,
                      positionSide: "BOTH", stopPrice: 0, workingType: "CONTRACT_PRICE", priceProtect: false,
                      origType: "MARKET", updateTime: 900)
    }

    func trade(_ id: Int64, qty: Decimal, fee: Decimal, pnl: Decimal) -> UserTrade {
        UserTrade(symbol: "ETHUSDT", id: id, orderId: 77, side: .buy, price: 2000, qty: qty, quoteQty: qty * 2000,
                  realizedPnl: pnl, commission: fee, commissionAsset: "USDT", positionSide: "BOTH", buyer: true, maker: false, time: 900)
    }

    func entry(position: String, entryPrice: String = "2000", stop: String = "") -> LedgerEntry {
        var entry = LedgerEntry()
        entry.symbol = "ETHUSDT"
        entry.positionAmt = position
        entry.entryPrice = entryPrice
        entry.stopAlgoID = stop
        return entry
    }

    func step(_ record: OrderRecord, _ event: OrderLifecycle.Event) throws -> OrderLifecycle.Step {
        try OrderLifecycle.step(record, event, nowMs: now)
    }

    func assertPermanent(_ body: @autoclosure () throws -> Any, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case PluginError.permanent(let why) = error else { return XCTFail("\(error) is not permanent", file: file, line: line) }
            XCTAssertTrue(why.contains(fragment), "\(why)", file: file, line: line)
        }
    }

    // MARK: Admission and the claim

    func testAdmissionRefusesAMissingPermitThenAnExpiredPlanThenTheTradingState() {
        var plan = record(.claimed).plan
        plan.expiresAtMs = now + 1
        let active = TradingControl(state: .active, killSwitch: false)
        XCTAssertNil(OrderLifecycle.admissionRefusal(plan, permit: granted(plan), control: active, nowMs: now))
        XCTAssertEqual(OrderLifecycle.admissionRefusal(plan, permit: nil, control: active, nowMs: now)?.0, .permitMissing)
        XCTAssertEqual(OrderLifecycle.admissionRefusal(plan, permit: granted(plan), control: active, nowMs: now + 1)?.0, .expired,
                       "a plan expires at its expires_at_ms")
        let reducing = TradingControl(state: .reducing, killSwitch: false)
        XCTAssertEqual(OrderLifecycle.admissionRefusal(plan, permit: granted(plan), control: reducing, nowMs: now)?.0, .tradingReducing)
        plan.kind = .close
        XCTAssertNil(OrderLifecycle.admissionRefusal(plan, permit: granted(plan), control: reducing, nowMs: now), "REDUCING never stops an exit (R6)")
        XCTAssertNil(OrderLifecycle.admissionRefusal(plan, permit: granted(plan), control: active, nowMs: now + 120_000),
                     "another host's clock never expires an exit: its permit's server-side TTL does")
        XCTAssertEqual(OrderLifecycle.admissionRefusal(plan, permit: granted(plan), control: TradingControl(state: .active, killSwitch: true), nowMs: now)?.0,
                       .tradingHalted)
    }

    func granted(_ plan: Plan) -> Permit {
        var permit = Permit()
        permit.planID = plan.planID
        permit.symbol = plan.symbol
        permit.maxQuantity = plan.quantity
        permit.planDigest = PlanDigest.of(plan)
        return permit
    }

    func testAPlanThatDiffersFromItsPermitsDigestIsRefused() {
        var approved = record(.claimed).plan
        approved.expiresAtMs = now + 1
        let permit = granted(approved)
        let active = TradingControl(state: .active, killSwitch: false)
        XCTAssertNil(OrderLifecycle.admissionRefusal(approved, permit: permit, control: active, nowMs: now))
        var sameNumber = approved
        sameNumber.quantity = approved.quantity + ".000"
        XCTAssertNil(OrderLifecycle.admissionRefusal(sameNumber, permit: permit, control: active, nowMs: now),
                     "\(sameNumber.quantity) is the quantity \(approved.quantity) was approved for")
        let forgeries: [(String, (inout Plan) -> Void)] = [
            ("larger quantity", { $0.quantity = "1000" }),
            ("other side", { $0.side = $0.side == .buy ? .sell : .buy }),
            ("other symbol", { $0.symbol = $0.symbol == "SOLUSDT" ? "XRPUSDT" : "SOLUSDT" }),
            ("other kind", { $0.kind = .reduce }),
            ("reduce-only flipped", { $0.reduceOnly.toggle() }),
            ("wider stop", { $0.stopDistPct = 0.5 }),
        ]
        for (label, forge) in forgeries {
            var forged = approved
            forge(&forged)
            let refusal = OrderLifecycle.admissionRefusal(forged, permit: permit, control: active, nowMs: now)
            XCTAssertEqual(refusal?.0, .permitMismatch, label)
            XCTAssertTrue(refusal?.1.contains(approved.planID) == true, "\(label): \(refusal?.1 ?? "nil") names the plan")
        }
        var noDigest = permit
        noDigest.planDigest = ""
        XCTAssertEqual(OrderLifecycle.admissionRefusal(approved, permit: noDigest, control: active, nowMs: now)?.0, .permitMismatch,
                       "a permit without a digest binds nothing, so it is refused")
    }

    func testAWonClaimStartsAClaimedRecordWithOneClientOrderIDPerPlan() {
        let plan = record(.claimed, kind: .reduce, side: .sell, quantity: "0.5").plan
        let claimed = OrderLifecycle.claimed(plan, nowMs: now)
        XCTAssertEqual(claimed.status, .claimed)
        XCTAssertEqual(claimed.clientOrderID, "qt-0123456789abcdef0123456789abcdef")
        XCTAssertEqual(claimed.quantity, "0.5")
        XCTAssertEqual(claimed.side, .sell)
        XCTAssertTrue(claimed.reduceOnly)
        XCTAssertEqual(claimed.planKind, .reduce)
        XCTAssertEqual(claimed.plan, plan)
        XCTAssertEqual(claimed.updatedAtMs, now)
    }

    // MARK: CLAIMED

    func testAClaimedRecordFirstReadsTheStopTheLedgerHolds() throws {
        let claimed = record(.claimed)
        XCTAssertEqual(try step(claimed, .resumed), .init(record: claimed, effects: [.readCurrentStop]))
    }

    func testAClaimedOrderIsSavedSentBeforeTheOrderGoesOut() throws {
        let result = try step(record(.claimed), .currentStop(clientAlgoID: "qs-old"))
        XCTAssertEqual(result.record.status, .sent)
        XCTAssertEqual(result.record.sentAtMs, now, "the resend window counts from here")
        XCTAssertEqual(result.record.updatedAtMs, now)
        XCTAssertEqual(result.record.stopClientAlgoID, "qs-old", "the stop a later CLOSE cancels")
        let order = NewOrder(symbol: "ETHUSDT", side: .buy, quantity: 2, reduceOnly: false, clientOrderId: "qt-0123456789abcdef0123456789abcdef")
        XCTAssertEqual(result.effects, [.save, .send(order)], "a crash after the save leaves a query, never a blind resend")
    }

    func testAClaimedUpdateStopPlacesTheReplacementStopWithoutAnOrder() throws {
        let result = try step(record(.claimed, kind: .updateStop, side: .sell), .currentStop(clientAlgoID: "qs-old"))
        XCTAssertEqual(result.record.status, .claimed, "nothing to save before the stop is placed: placing it again finds it")
        XCTAssertEqual(result.record.stopClientAlgoID, "qs-old")
        let stop = NewStopOrder(symbol: "ETHUSDT", side: .sell, triggerPrice: Decimal(string: "1900.5")!,
                                clientAlgoId: "qs-0123456789abcdef0123456789abcdef")
        XCTAssertEqual(result.effects, [.placeStop(stop)])
    }

    func testAnUpdateStopWithoutAStopPriceIsPermanent() {
        var update = record(.claimed, kind: .updateStop)
        update.plan.stopPrice = ""
        assertPermanent(try step(update, .currentStop(clientAlgoID: "")), "UPDATE_STOP without a stop_price")
    }

    func testAPlacedReplacementStopMakesTheRecordFilledAndSettlesTheLedger() throws {
        var update = record(.claimed, kind: .updateStop, side: .sell)
        update.stopClientAlgoID = "qs-old"
        let result = try step(update, .stopPlaced)
        XCTAssertEqual(result.record.status, .filled)
        XCTAssertEqual(result.record.updatedAtMs, now)
        let change = try LedgerChange(result.record)
        XCTAssertNil(change.execution, "an UPDATE_STOP trades nothing")
        XCTAssertEqual(result.effects, [.save, .settleLedger(change)])
    }

    func testAMalformedQuantityIsPermanentBeforeAnythingIsSent() {
        assertPermanent(try step(record(.claimed, quantity: "two"), .currentStop(clientAlgoID: "")), "quantity is \"two\"")
        assertPermanent(try step(record(.claimed, quantity: "0"), .currentStop(clientAlgoID: "")), "is not positive")
        var sideless = record(.claimed)
        sideless.side = .unspecified
        assertPermanent(try step(sideless, .currentStop(clientAlgoID: "")), "neither BUY nor SELL")
    }

    func terms(pnl: Decimal = 0) -> FillTerms { FillTerms(fee: 0.8, realizedPnl: pnl, fillIDs: [LedgerBook.orderFillID(77)]) }

    // MARK: SENT

    func testASentRecordIsQueriedNeverSentAgain() throws {
        let sent = record(.sent)
        XCTAssertEqual(try step(sent, .resumed), .init(record: sent, effects: [.query]))
    }

    func testAFilledAnswerAsksForTheFillsTermsAfterTheSendCrashPoint() throws {
        let sent = record(.sent)
        let filled = response(.filled)
        for event in [OrderLifecycle.Event.sent(.filled(filled)), .queried(.filled(filled))] {
            XCTAssertEqual(try step(sent, event), .init(record: sent, effects: [.crashPoint(.afterSend), .priceFill(filled)]), "\(event)")
        }
    }

    func testTheFillsTermsMakeTheRecordFilledWithFeesAndRealizedPnl() throws {
        let trades = [trade(1, qty: 1.5, fee: 0.6, pnl: 0), trade(2, qty: 0.5, fee: 0.2, pnl: -1.25)]
        let result = try step(record(.sent), .fillPriced(response(.filled, avgPrice: 2001.5), FillTerms.listed(trades)))
        XCTAssertEqual(result.record.status, .filled)
        XCTAssertEqual(result.record.exchangeOrderID, 77)
        XCTAssertEqual(result.record.executedQty, "2")
        XCTAssertEqual(result.record.avgPrice, "2001.5")
        XCTAssertEqual(result.record.fee, "0.8")
        XCTAssertEqual(result.record.realizedPnl, "-1.25")
        XCTAssertEqual(result.record.fillIds, ["1", "2"])
        XCTAssertEqual(result.record.updatedAtMs, now)
        XCTAssertEqual(result.effects.first, .crashPoint(.afterFill))
        XCTAssertFalse(result.effects.contains(.save), "FILLED is not saved: after a crash the query of the SENT order answers the same fill")
    }

    /// Without a trade list: the PnL against the entry the claim holds, the fee at the taker rate,
    /// and the order's own id in `applied_fill_ids`, which a second application finds.
    func testAFillPricedFromTheResponseRealizesAgainstTheClaimedEntry() throws {
        let claimed = entry(position: "-2", entryPrice: "2100")
        let cover = response(.filled, executed: 2, avgPrice: 2000)
        let terms = try FillTerms.priced(cover, side: .buy, claimed: claimed, takerRate: Decimal(string: "0.0005")!)
        XCTAssertEqual(terms.realizedPnl, 200, "a short covered 100 lower")
        XCTAssertEqual(terms.fee, 2, "4,000 of quote at 0.05 %")
        XCTAssertEqual(terms.fillIDs, ["order:77"])
        XCTAssertEqual(LedgerBook.exchangeOrderID(ofFillID: terms.fillIDs[0]), 77)
        XCTAssertNil(LedgerBook.exchangeOrderID(ofFillID: "77"), "a trade id is not an order's fill id")

        var close = record(.sent, kind: .close, side: .buy)
        close = try step(close, .fillPriced(cover, terms)).record
        var ledger = claimed
        try LedgerChange(close).apply(to: &ledger, eventTimeMs: 5)
        XCTAssertEqual(ledger.positionAmt, "0")
        XCTAssertEqual(ledger.realizedPnl, "200")
        let once = ledger
        try LedgerChange(close).apply(to: &ledger, eventTimeMs: 6)
        XCTAssertEqual(ledger, once, "the same order's fill is applied once")
    }

    func testAnOpenThatFilledPlacesItsStopBeforeTheSettleFromTheFillsPrice() throws {
        let long = try step(record(.sent), .fillPriced(response(.filled, avgPrice: 2001.5), terms()))
        XCTAssertEqual(long.effects, [.crashPoint(.afterFill), .protectFill(InitialStop(
            symbol: "ETHUSDT", closingSide: .sell, clientAlgoID: "qs-0123456789abcdef0123456789abcdef", entryPrice: 2001.5,
            isLong: true, distance: Decimal(0.05), requestedTrigger: nil))],
            "the claim required a flat entry: the position is this fill, at its average price")
        let short = try step(record(.sent, side: .sell), .fillPriced(response(.filled), terms()))
        guard case .protectFill(let stop) = short.effects.last else { return XCTFail("\(short.effects)") }
        XCTAssertEqual(stop.closingSide, .buy)
        XCTAssertFalse(stop.isLong)
    }

    func testAnExitThatFilledSettlesAtOnce() throws {
        let close = try step(record(.sent, kind: .close, side: .sell), .fillPriced(response(.filled), terms(pnl: 3)))
        XCTAssertEqual(close.effects, [.crashPoint(.afterFill), .settleLedger(try LedgerChange(close.record))])
    }

    func testTheSettleRecordsTheStopPlacedBeforeIt() throws {
        let open = filled()
        let placed = PlacedStop(clientAlgoID: "qs-0123456789abcdef0123456789abcdef", triggerPrice: "1900")
        let result = try step(open, .fillProtected(placed))
        XCTAssertEqual(result.effects, [.settleLedger(try LedgerChange(open, stop: placed))])
        var ledger = entry(position: "0", entryPrice: "0")
        try LedgerChange(open, stop: placed).apply(to: &ledger, eventTimeMs: 42)
        XCTAssertEqual(ledger.positionAmt, "2")
        XCTAssertEqual(ledger.stopAlgoID, placed.clientAlgoID, "one compare-and-set records the fill and its stop")
        XCTAssertEqual(ledger.stopPrice, "1900")
        let settled = try step(open, .ledgerSettled(ledger))
        XCTAssertEqual(settled.record.status, .applied, "the stop is recorded: nothing is placed after the settle")
    }

    func testAFillWhoseStopWasNotPlacedIsSettledAndTheStopTriedAfter() throws {
        let open = filled()
        XCTAssertEqual(try step(open, .fillProtected(nil)).effects, [.settleLedger(try LedgerChange(open))])
        guard case .placeInitialStop = try step(open, .ledgerSettled(entry(position: "2"))).effects.first else {
            return XCTFail("a refused stop is tried again after the settle, which reports the refusal")
        }
    }

    func testARefusalRejectsTheRecordReleasesTheClaimAndPublishes() throws {
        for event in [OrderLifecycle.Event.sent(.refused(code: -2019, message: "Margin is insufficient.")),
                      .queried(.refused(code: -2019, message: "Margin is insufficient."))] {
            let result = try step(record(.sent), event)
            XCTAssertEqual(result.record.status, .rejected, "\(event)")
            XCTAssertEqual(result.record.errorCode, -2019)
            XCTAssertEqual(result.record.errorMessage, "Margin is insufficient.")
            XCTAssertEqual(result.effects, [.crashPoint(.afterSend), .save, .releaseClaim, .crashPoint(.beforeAck), .publishResult])
        }
    }

    func testAnOrderAbsentAfterTheRecvWindowIsSentAgainWithTheSameClientOrderID() throws {
        let sent = record(.sent)
        XCTAssertEqual(try step(sent, .queried(.absent)), .init(record: sent, effects: [.checkClaim]), "only under the claim")
        let result = try step(sent, .claimHeld(true))
        XCTAssertEqual(result.record.status, .sent)
        XCTAssertEqual(result.record.sentAtMs, now, "a new window for the second request")
        guard case .send(let order) = result.effects.last else { return XCTFail("\(result.effects)") }
        XCTAssertEqual(result.effects.first, .save, "whoever wins the record's compare-and-set sends")
        XCTAssertEqual(order.clientOrderId, sent.clientOrderID, "never a second client order id for a plan")
    }

    /// An OPEN's record is created beside its claim: one the exchange does not know, whose claim is
    /// gone, was never sent (a crash after the create, the claim refused), and is not sent now.
    func testAnOrderAbsentWithoutItsClaimIsRefusedBeforeSendingNotSent() throws {
        let result = try step(record(.sent), .claimHeld(false))
        XCTAssertEqual(result.record.status, .rejected)
        XCTAssertEqual(result.record.errorCode, OrderLifecycle.refusedBeforeSending)
        XCTAssertTrue(result.record.errorMessage.contains("never sent"), result.record.errorMessage)
        XCTAssertEqual(result.effects, [.save, .crashPoint(.beforeAck), .publishRefusal])
        XCTAssertEqual(try step(result.record, .resumed).effects, [.releaseClaim, .crashPoint(.beforeAck), .publishRefusal],
                       "a replay repeats the block, not an exchange rejection")
    }

    func testAnOrderStillAbsentAfterBeingSentAgainIsLeftToRedelivery() {
        XCTAssertThrowsError(try step(record(.sent), .sent(.absent))) { error in
            guard case PluginError.transient(let why) = error else { return XCTFail("\(error) is not transient") }
            XCTAssertTrue(why.contains("sent again and still not known"), why)
        }
    }

    // MARK: FILLED

    func testAFilledRecordSettlesTheLedger() throws {
        let settling = filled()
        let result = try step(settling, .resumed)
        XCTAssertEqual(result, .init(record: settling, effects: [.settleLedger(try LedgerChange(settling))]))
        XCTAssertEqual(try LedgerChange(settling).execution, LedgerBook.Execution(side: .buy, quantity: 2, price: 2000, realizedPnl: 0, tradeIDs: ["1"]))
    }

    func testAFilledRecordWithAMalformedFillIsPermanent() {
        assertPermanent(try step(filled(price: "NaN?"), .resumed), "avg_price is \"NaN?\"")
    }

    func testAfterAnOpenTheProtectiveStopIsPlacedAgainstThePosition() throws {
        let long = try step(record(.filled), .ledgerSettled(entry(position: "2")))
        XCTAssertEqual(long.effects, [.placeInitialStop(InitialStop(
            symbol: "ETHUSDT", closingSide: .sell, clientAlgoID: "qs-0123456789abcdef0123456789abcdef", entryPrice: 2000,
            isLong: true, distance: Decimal(0.05), requestedTrigger: nil))])
        XCTAssertEqual(long.record.status, .filled, "APPLIED only once the stop is placed")
        let short = try step(record(.filled, side: .sell), .ledgerSettled(entry(position: "-2")))
        guard case .placeInitialStop(let stop) = short.effects.first else { return XCTFail("\(short.effects)") }
        XCTAssertEqual(stop.closingSide, .buy)
        XCTAssertFalse(stop.isLong)
    }

    func testAFilledOpenWithANonFiniteStopDistanceStillGetsTheDefaultStop() throws {
        var filled = record(.filled)
        filled.plan.stopDistPct = .infinity
        guard case .placeInitialStop(let stop) = try step(filled, .ledgerSettled(entry(position: "2"))).effects.first else {
            return XCTFail("a filled position without a stop")
        }
        XCTAssertEqual(stop.distance, Decimal(InitialStop.defaultDistance), "a record from before plans were checked: no trap")
    }

    func testAnOpenWhoseStopIsAlreadyRecordedIsApplied() throws {
        let result = try step(record(.filled), .ledgerSettled(entry(position: "2", stop: "qs-0123456789abcdef0123456789abcdef")))
        XCTAssertEqual(result.record.status, .applied)
        XCTAssertEqual(result.effects, [.crashPoint(.afterLedger), .saveWithResult, .crashPoint(.beforeAck), .publishResult])
    }

    func testAnOpenThatLeftNoPositionPlacesNoStop() throws {
        let result = try step(record(.filled), .ledgerSettled(entry(position: "0")))
        XCTAssertEqual(result.record.status, .applied)
        XCTAssertFalse(result.effects.contains { if case .placeInitialStop = $0 { return true } else { return false } })
    }

    func testACloseThatLeftTheSymbolFlatCancelsTheOldStop() throws {
        var close = record(.filled, kind: .close, side: .sell)
        close.stopClientAlgoID = "qs-old"
        XCTAssertEqual(try step(close, .ledgerSettled(entry(position: "0"))).effects, [.cancelStop(clientAlgoID: "qs-old")])
    }

    func testAReduceThatLeavesAPositionKeepsTheStop() throws {
        var reduce = record(.filled, kind: .reduce, side: .sell)
        reduce.stopClientAlgoID = "qs-old"
        let result = try step(reduce, .ledgerSettled(entry(position: "1", stop: "qs-old")))
        XCTAssertEqual(result.record.status, .applied)
        XCTAssertEqual(result.effects, [.crashPoint(.afterLedger), .saveWithResult, .crashPoint(.beforeAck), .publishResult])
    }

    func testAnUpdateStopCancelsTheStopItReplaced() throws {
        var update = record(.filled, kind: .updateStop, side: .sell)
        update.stopClientAlgoID = "qs-old"
        XCTAssertEqual(try step(update, .ledgerSettled(entry(position: "2"))).effects, [.cancelStop(clientAlgoID: "qs-old")])
    }

    func testACloseWithNoStopToCancelIsApplied() throws {
        let result = try step(record(.filled, kind: .close, side: .sell), .ledgerSettled(entry(position: "0")))
        XCTAssertEqual(result.record.status, .applied)
        XCTAssertEqual(result.effects.last, .publishResult)
    }

    func testSettledStopsMakeTheRecordAppliedAfterTheLedgerCrashPoint() throws {
        let result = try step(record(.filled), .stopsSettled)
        XCTAssertEqual(result.record.status, .applied)
        XCTAssertEqual(result.record.updatedAtMs, now)
        XCTAssertEqual(result.effects, [.crashPoint(.afterLedger), .saveWithResult, .crashPoint(.beforeAck), .publishResult])
    }

    // MARK: APPLIED, REJECTED and what does not follow

    func testAnAppliedOrRejectedRecordOnlyPublishesAgain() throws {
        for status in [Messages.OrderStatus.applied, .rejected] {
            let done = record(status)
            XCTAssertEqual(try step(done, .resumed), .init(record: done, effects: [.releaseClaim, .crashPoint(.beforeAck), .publishResult]),
                           "\(status): a claim its plan took again on the way is let go")
        }
    }

    func testAnUnspecifiedStatusIsPermanent() {
        assertPermanent(try step(record(.unspecified), .resumed), "is not a step of the executor")
        assertPermanent(try step(record(.UNRECOGNIZED(42)), .resumed), "is not a step of the executor")
    }

    func testAnEventThatDoesNotFollowTheStatusIsPermanent() {
        assertPermanent(try step(record(.claimed), .stopPlaced), "does not follow status")  // an OPEN places no replacement stop
        assertPermanent(try step(record(.applied), .sent(.absent)), "does not follow status")
        assertPermanent(try step(record(.filled), .queried(.filled(response(.filled)))), "does not follow status")
        assertPermanent(try step(record(.rejected), .stopsSettled), "does not follow status")
    }

    /// Every status from CLAIMED to APPLIED, answering each ask as the exchange and the ledger
    /// would: the crash points come in DESIGN.md §5's order and every status a crash cannot
    /// rebuild from the exchange is saved (FILLED is not: a query answers it again).
    func testAnOpenWalksFromClaimedToAppliedThroughEveryCrashPoint() throws {
        var current = record(.claimed)
        var event = OrderLifecycle.Event.resumed
        var statuses: [Messages.OrderStatus] = []
        var crashPoints: [CrashPoint] = []
        walk: for _ in 0..<10 {
            let result = try step(current, event)
            current = result.record
            for effect in result.effects {
                switch effect {
                case .crashPoint(let point): crashPoints.append(point)
                case .save, .saveWithResult: statuses.append(current.status)
                case .readCurrentStop: event = .currentStop(clientAlgoID: "")
                case .send: event = .sent(.filled(response(.filled)))
                case .priceFill(let filled): event = .fillPriced(filled, terms())
                case .protectFill(let stop): event = .fillProtected(PlacedStop(clientAlgoID: stop.clientAlgoID, triggerPrice: "1900"))
                case .settleLedger(let change): event = .ledgerSettled(entry(position: "2", stop: change.initialStop?.clientAlgoID ?? ""))
                case .publishResult: break walk
                default: return XCTFail("unexpected \(effect)")
                }
            }
        }
        XCTAssertEqual(statuses, [.sent, .applied])
        XCTAssertEqual(crashPoints, [.afterSend, .afterFill, .afterLedger, .beforeAck])
    }

    // MARK: Ledger change and the initial stop

    func testTheLedgerChangeRecordsThePlanAndWhatItsKindNeeds() throws {
        let open = filled()
        var ledger = entry(position: "0", entryPrice: "0")
        try LedgerChange(open).apply(to: &ledger, eventTimeMs: 42)
        XCTAssertEqual(ledger.positionAmt, "2")
        XCTAssertEqual(ledger.stopDistPct, 0.05)
        XCTAssertEqual(ledger.lastPlanID, open.planID)

        let reduce = filled(.reduce, side: .sell, qty: "1", price: "2100", pnl: "100", trades: ["2"])
        ledger.tranchesTaken = 3
        try LedgerChange(reduce).apply(to: &ledger, eventTimeMs: 43)
        XCTAssertEqual(ledger.positionAmt, "1")
        XCTAssertEqual(ledger.tranchesTaken, 3, "tranches stop counting at three")

        let update = record(.filled, kind: .updateStop, side: .sell)
        try LedgerChange(update).apply(to: &ledger, eventTimeMs: 44)
        XCTAssertEqual(ledger.positionAmt, "1", "an UPDATE_STOP trades nothing")
        XCTAssertEqual(ledger.stopPrice, "1900.5")
        XCTAssertEqual(ledger.stopAlgoID, "qs-0123456789abcdef0123456789abcdef")
    }

    func testTheInitialStopIsRoundedAwayFromTheMarketUnlessThePlanNamesIt() {
        let rules = SymbolFilters(symbol: "ETHUSDT", tickSize: 0.1, stepSize: 0.001, minQty: 0.001, maxQty: 1000, minNotional: 5)
        func stop(long: Bool, requested: Decimal? = nil) -> InitialStop {
            InitialStop(symbol: "ETHUSDT", closingSide: long ? .sell : .buy, clientAlgoID: "qs-1", entryPrice: Decimal(string: "2001.37")!,
                        isLong: long, distance: Decimal(string: "0.05")!, requestedTrigger: requested)
        }
        XCTAssertEqual(stop(long: true).trigger(roundedBy: rules), Decimal(string: "1901.3"), "2001.37 × 0.95 = 1901.3015, down")
        XCTAssertEqual(stop(long: false).trigger(roundedBy: rules), Decimal(string: "2101.5"), "2001.37 × 1.05 = 2101.4385, up")
        XCTAssertEqual(stop(long: true, requested: 1950).trigger(roundedBy: rules), 1950)
        XCTAssertEqual(stop(long: true).order(roundedBy: rules).side, .sell)
    }
}

/// How exchange answers about an order read: which are final, which are queried again, and
/// when `-2013` (no such order) becomes final.
final class OrderReadingTests: XCTestCase {
    func response(_ status: Exchange.OrderStatus, executed: Decimal) -> OrderResponse {
        OrderResponse(orderId: 1, symbol: "ETHUSDT", status: status, clientOrderId: "qt-1", price: 0, avgPrice: 2000, origQty: 2,
                      executedQty: executed, cumQuote: 0, timeInForce: "GTC", type: "MARKET", reduceOnly: false, closePosition: false,
                      side: .buy, positionSide: "BOTH", stopPrice: 0, workingType: "CONTRACT_PRICE", priceProtect: false,
                      origType: "MARKET", updateTime: 0)
    }

    func testOnlyAFilledSendAnswerIsFinal() {
        XCTAssertEqual(OrderReading.ofSent(response(.filled, executed: 2)), .known(.filled(response(.filled, executed: 2))))
        XCTAssertEqual(OrderReading.ofSent(response(.new, executed: 0)), .unknown)
        XCTAssertEqual(OrderReading.ofSent(response(.expired, executed: 0)), .unknown, "the query tells what it ended as")
    }

    func testASendErrorIsQueriedUnlessTheExchangeProcessedARefusal() {
        let refusal = BinanceError(.marginInsufficient, "Margin is insufficient.")
        XCTAssertEqual(OrderReading.ofSendError(.api(refusal), clientOrderID: "qt-1"), .known(.refused(code: -2019, message: "Margin is insufficient.")))
        XCTAssertEqual(OrderReading.ofSendError(.api(BinanceError(.duplicateClientOrderID, "dup")), clientOrderID: "qt-1"), .unknown,
                       "a duplicate id means an earlier request arrived")
        XCTAssertEqual(OrderReading.ofSendError(.unknownOutcome("timeout"), clientOrderID: "qt-1"), .unknown)
        XCTAssertEqual(OrderReading.ofSendError(.unavailable("503"), clientOrderID: "qt-1"), .unknown)
        XCTAssertEqual(OrderReading.ofSendError(.rateLimited(httpStatus: 429, retryAfterSeconds: 1), clientOrderID: "qt-1"), .unknown)
        guard case .invalid(let why) = OrderReading.ofSendError(.decoding(endpoint: "/fapi/v1/order", detail: "x"), clientOrderID: "qt-1") else {
            return XCTFail("an answer the client cannot read is not retried as a send")
        }
        XCTAssertTrue(why.contains("qt-1"), why)
    }

    func testAQueriedOrderThatEndedReadsAsWhatItExecuted() {
        XCTAssertEqual(OrderReading.ofQueried(response(.filled, executed: 2)), .known(.filled(response(.filled, executed: 2))))
        XCTAssertEqual(OrderReading.ofQueried(response(.expired, executed: 0)),
                       .known(.refused(code: 0, message: "order qt-1 ended EXPIRED without a fill")))
        XCTAssertEqual(OrderReading.ofQueried(response(.canceled, executed: 1)), .known(.filled(response(.canceled, executed: 1))),
                       "a partial fill is a fill of what it executed")
        XCTAssertEqual(OrderReading.ofQueried(response(.expiredInMatch, executed: 0)),
                       .known(.refused(code: 0, message: "order qt-1 ended EXPIRED_IN_MATCH without a fill")),
                       "self-trade prevention ends the order: the claim is released, never held forever")
        XCTAssertEqual(OrderReading.ofQueried(response(.expiredInMatch, executed: 1)), .known(.filled(response(.expiredInMatch, executed: 1))))
        XCTAssertEqual(OrderReading.ofQueried(response(.new, executed: 0)), .unknown)
        XCTAssertEqual(OrderReading.ofQueried(response(.partiallyFilled, executed: 1)), .unknown)
    }

    func testNoSuchOrderIsFinalOnlyAfterTheRequestCanNoLongerArrive() {
        let noSuchOrder = ExchangeError.api(BinanceError(.noSuchOrder, "Order does not exist."))
        XCTAssertEqual(OrderReading.ofQueryError(noSuchOrder, clientOrderID: "qt-1", sentAtMs: 1_000, nowMs: 11_000, finalAfterMs: 10_000), .unknown,
                       "at the window's edge the request may still arrive")
        XCTAssertEqual(OrderReading.ofQueryError(noSuchOrder, clientOrderID: "qt-1", sentAtMs: 1_000, nowMs: 11_001, finalAfterMs: 10_000), .known(.absent))
        XCTAssertEqual(OrderReading.ofQueryError(.unknownOutcome("timeout"), clientOrderID: "qt-1", sentAtMs: 0, nowMs: 99_999, finalAfterMs: 1), .unknown)
        guard case .invalid = OrderReading.ofQueryError(.api(BinanceError(.rejectedAPIKey, "bad key")), clientOrderID: "qt-1", sentAtMs: 0,
                                                        nowMs: 0, finalAfterMs: 0) else {
            return XCTFail("any other refusal of the query is not retried")
        }
    }
}
