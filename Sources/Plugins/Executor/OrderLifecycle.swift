import Exchange
import Foundation
import Host
import Messages

/// One order's life in `qt_orders`, as a pure function: `step(record, event)` gives the next
/// record and the effects to perform, in order. `ExecutorPlugin` performs them and answers the
/// one effect that asks something (the last one of a step) with the next event; no step reads
/// the clock, the bus or the exchange.
///
/// CLAIMED → SENT → (FILLED, in memory) → APPLIED, or SENT → REJECTED; an UPDATE_STOP goes
/// CLAIMED → FILLED (saved) without an order. Every `.save` is a compare-and-set of the record, and the crash points sit
/// where DESIGN.md §5's crash analysis puts them: a crash anywhere leaves a record that a
/// redelivery or the recovery pass finishes from its status without a second order.
enum OrderLifecycle {
    enum Event: Equatable, Sendable {
        /// The record as read (a new claim, a redelivered plan, the recovery pass).
        case resumed
        /// The stop the ledger holds now, which a CLOSE or UPDATE_STOP will cancel.
        case currentStop(clientAlgoID: String)
        /// The answer to `.checkClaim`: whether this order's claim is on the ledger entry.
        case claimHeld(Bool)
        /// UPDATE_STOP: the replacement stop is on the exchange.
        case stopPlaced
        /// The answer to `.send` and to `.query`.
        case sent(OrderOutcome)
        case queried(OrderOutcome)
        /// The answer to `.priceFill`.
        case fillPriced(OrderResponse, FillTerms)
        /// The answer to `.protectFill`: the stop now on the exchange, or nil when none was placed
        /// (the claim was already settled before a crash, or the exchange refused the stop).
        case fillProtected(PlacedStop?)
        /// The ledger entry after the fill was applied and the claim cleared.
        case ledgerSettled(LedgerEntry)
        /// The protective stop is placed or cancelled as the plan needs.
        case stopsSettled
    }

    enum Effect: Equatable, Sendable {
        case crashPoint(CrashPoint)
        /// Compare-and-set `qt_orders/<client order id>` to the step's record.
        case save
        /// The same compare-and-set, sent with the `OrderResult` when the run ends: the last
        /// write of a record nothing waits for, so it rides in the result's round trip.
        case saveWithResult
        case releaseClaim
        // Each of the following asks; its answer is the next event.
        case readCurrentStop
        /// Whether this order still holds the symbol's claim (an order the exchange does not know).
        case checkClaim
        case placeStop(NewStopOrder)
        case send(NewOrder)
        case query
        /// The fill's fee, realized PnL and ids (`FillTerms`).
        case priceFill(OrderResponse)
        case settleLedger(LedgerChange)
        /// After an OPEN's fill, before the settle: place the protective stop while this order
        /// still holds the claim, so the settle records it in the same compare-and-set.
        case protectFill(InitialStop)
        case placeInitialStop(InitialStop)
        case cancelStop(clientAlgoID: String)
        /// The `OrderResult` and the decision: the run ends here.
        case publishResult
        /// A record refused before its order was sent: the STALE block again, no result. The run ends here.
        case publishRefusal
    }

    /// `error_code` of a record finished REJECTED by the executor before its order was sent (not a
    /// Binance code: those are negative). An OPEN's record is created beside its claim
    /// (docs/decisions.md, "the record's create beside the claim"): when the claim is refused, or
    /// the claim is gone and the exchange never got the order, the record says so, and a replay
    /// repeats the STALE block instead of reporting an exchange rejection.
    static let refusedBeforeSending: Int32 = 1

    /// The record an OPEN's create left when its claim was refused: finished, nothing sent.
    static func refused(_ record: OrderRecord, why: String, nowMs: Int64) -> OrderRecord {
        var refused = record
        refused.status = .rejected
        refused.errorCode = refusedBeforeSending
        refused.errorMessage = why
        refused.updatedAtMs = nowMs
        return refused
    }

    struct Step: Equatable, Sendable {
        var record: OrderRecord
        var effects: [Effect]
    }

    /// Steps 2 and 3 before the claim: why an approved plan may not go out, or nil. The claim
    /// (a compare-and-set) comes only after these, so a refused plan writes nothing.
    ///
    /// `expires_at_ms` was set by another host's clock; only entries are judged by it. An exit's
    /// freshness is its permit (the bucket's TTL runs on the server's clock) and the ledger revision
    /// its claim requires, so clock skew between hosts can never block a close (R6).
    static func admissionRefusal(_ plan: Plan, permit: Permit?, control: TradingControl, nowMs: Int64) -> (ReasonCode, String)? {
        guard let permit else { return (.permitMissing, "no permit qt_permits/\(plan.planID): never granted, expired (60 s) or used") }
        if let mismatch = PlanDigest.mismatch(plan, permit: permit) { return (.permitMismatch, mismatch) }
        if plan.kind == .open, plan.expiresAtMs <= nowMs { return (.expired, "plan expired at \(plan.expiresAtMs), now \(nowMs)") }
        return control.refusal(entry: plan.kind == .open)
    }

    /// Step 4: the record a won claim starts from.
    static func claimed(_ plan: Plan, nowMs: Int64) -> OrderRecord {
        var record = OrderRecord()
        record.planID = plan.planID
        record.clientOrderID = ExecutorPlugin.clientOrderID(planID: plan.planID)
        record.symbol = plan.symbol
        record.side = plan.side
        record.quantity = plan.quantity
        record.reduceOnly = plan.reduceOnly
        record.planKind = plan.kind
        record.plan = plan
        record.status = .claimed
        record.updatedAtMs = nowMs
        return record
    }

    static func step(_ record: OrderRecord, _ event: Event, nowMs: Int64) throws -> Step {
        let plan = record.plan
        var next = record
        func saved(_ status: Messages.OrderStatus) -> OrderRecord {
            next.status = status
            next.updatedAtMs = nowMs
            return next
        }
        switch (record.status, event) {
        case (.claimed, .resumed):
            return Step(record: record, effects: [.readCurrentStop])
        case (.claimed, .currentStop(let stopID)):
            next.stopClientAlgoID = stopID
            if plan.kind == .updateStop {
                guard let trigger = Decimal.parse(plan.stopPrice), trigger > 0 else {
                    throw PluginError.permanent("plan \(plan.planID): UPDATE_STOP without a stop_price")
                }
                let stop = NewStopOrder(symbol: record.symbol, side: try exchangeSide(plan.side), triggerPrice: trigger,
                                        clientAlgoId: ProtectiveStops.clientAlgoID(planID: plan.planID))
                return Step(record: next, effects: [.placeStop(stop)])
            }
            next.sentAtMs = nowMs
            let sent = saved(.sent)
            return Step(record: sent, effects: [.save, .send(try order(sent))])
        case (.claimed, .stopPlaced) where plan.kind == .updateStop:
            let filled = saved(.filled)
            return Step(record: filled, effects: [.save, .settleLedger(try LedgerChange(filled))])

        case (.sent, .resumed):
            return Step(record: record, effects: [.query])
        case (.sent, .sent(.absent)):
            throw PluginError.transient("order \(record.clientOrderID): sent again and still not known")
        case (.sent, .queried(.absent)):
            // The first request can no longer arrive. Sent again only under the claim: an OPEN's
            // record is created beside its claim, so one without the claim was never sent.
            return Step(record: record, effects: [.checkClaim])
        case (.sent, .claimHeld(false)):
            let refused = refused(record, why: "never sent: the exchange does not know \(record.clientOrderID) and its claim on "
                                  + "\(record.symbol) is gone", nowMs: nowMs)
            return Step(record: refused, effects: [.save, .crashPoint(.beforeAck), .publishRefusal])
        case (.sent, .claimHeld(true)):
            // The same client order id is sent again, by whoever wins the record's compare-and-set.
            next.sentAtMs = nowMs
            let resent = saved(.sent)
            return Step(record: resent, effects: [.save, .send(try order(resent))])
        case (.sent, .sent(.filled(let response))), (.sent, .queried(.filled(let response))):
            return Step(record: record, effects: [.crashPoint(.afterSend), .priceFill(response)])
        case (.sent, .sent(.refused(let code, let message))), (.sent, .queried(.refused(let code, let message))):
            next.errorCode = Int32(clamping: code)
            next.errorMessage = message
            return Step(record: saved(.rejected),
                        effects: [.crashPoint(.afterSend), .save, .releaseClaim, .crashPoint(.beforeAck), .publishResult])
        case (.sent, .fillPriced(let response, let terms)):
            next.exchangeOrderID = response.orderId
            next.executedQty = response.executedQty.plainString
            next.avgPrice = response.avgPrice.plainString
            next.fee = terms.fee.plainString
            next.realizedPnl = terms.realizedPnl.plainString
            next.fillIds = terms.fillIDs
            // Not saved: FILLED would only cache what the exchange answers again. A crash before the
            // APPLIED save leaves the record SENT; its query finds the same fill and the settle
            // finds the claim gone if it already ran (docs/decisions.md, the crash table).
            let filled = saved(.filled)
            if let protection = try initialStop(filled, filledAt: response) {
                return Step(record: filled, effects: [.crashPoint(.afterFill), .protectFill(protection)])
            }
            return Step(record: filled, effects: [.crashPoint(.afterFill), .settleLedger(try LedgerChange(filled))])
        case (.filled, .fillProtected(let stop)):
            return Step(record: record, effects: [.settleLedger(try LedgerChange(record, stop: stop))])

        case (.filled, .resumed):
            return Step(record: record, effects: [.settleLedger(try LedgerChange(record))])
        case (.filled, .ledgerSettled(let entry)):
            if let stopChange = try stopChange(record, after: entry) { return Step(record: record, effects: [stopChange]) }
            return try step(record, .stopsSettled, nowMs: nowMs)
        case (.filled, .stopsSettled):
            return Step(record: saved(.applied), effects: [.crashPoint(.afterLedger), .saveWithResult, .crashPoint(.beforeAck), .publishResult])

        case (.applied, .resumed), (.rejected, .resumed):
            // A finished record's plan met again may have claimed the symbol on its way here (its
            // permit outlived a crash before the final batch landed): that claim is let go.
            let publish: Effect = record.errorCode == refusedBeforeSending && record.status == .rejected ? .publishRefusal : .publishResult
            return Step(record: record, effects: [.releaseClaim, .crashPoint(.beforeAck), publish])
        case (.unspecified, _), (.UNRECOGNIZED, _):
            throw PluginError.permanent("qt_orders/\(record.clientOrderID): status \(record.status) is not a step of the executor")
        default:
            throw PluginError.permanent("qt_orders/\(record.clientOrderID): \(event) does not follow status \(record.status)")
        }
    }

    /// Step 7 for an OPEN that filled, placed before the settle: the claim required a flat entry, so
    /// the position is this fill alone and its entry price the fill's average price. Nil for every
    /// other kind and for an order that filled nothing.
    static func initialStop(_ record: OrderRecord, filledAt response: OrderResponse) throws -> InitialStop? {
        let plan = record.plan
        guard plan.kind == .open, response.executedQty > 0, response.avgPrice > 0 else { return nil }
        return protectiveStop(record, entryPrice: response.avgPrice, isLong: try exchangeSide(record.side) == .buy)
    }

    /// The OPEN plan's protective stop for a position at `entryPrice`.
    static func protectiveStop(_ record: OrderRecord, entryPrice: Decimal, isLong: Bool) -> InitialStop {
        let plan = record.plan
        return InitialStop(symbol: record.symbol, closingSide: isLong ? .sell : .buy,
                           clientAlgoID: ProtectiveStops.clientAlgoID(planID: plan.planID), entryPrice: entryPrice, isLong: isLong,
                           distance: Decimal(InitialStop.distance(plan.stopDistPct)),
                           requestedTrigger: Decimal.parse(plan.stopPrice).flatMap { $0 > 0 ? $0 : nil })
    }

    /// Step 7 after the settle: after an OPEN, a stop unless the entry has this plan's already (it
    /// has when `protectFill` placed it); after a CLOSE or
    /// REDUCE that left the symbol flat, and after an UPDATE_STOP, the old stop is cancelled.
    static func stopChange(_ record: OrderRecord, after entry: LedgerEntry) throws -> Effect? {
        let plan = record.plan
        let position = try LedgerPosition(symbol: record.symbol, entry: entry, revision: 0)
        switch plan.kind {
        case .open:
            let stopID = ProtectiveStops.clientAlgoID(planID: plan.planID)
            guard position.isOpen, entry.stopAlgoID != stopID else { return nil }
            return .placeInitialStop(protectiveStop(record, entryPrice: position.entryPrice, isLong: position.amount > 0))
        case .close, .reduce, .updateStop:
            guard plan.kind == .updateStop || !position.isOpen, !record.stopClientAlgoID.isEmpty else { return nil }
            return .cancelStop(clientAlgoID: record.stopClientAlgoID)
        case .unspecified, .UNRECOGNIZED:
            return nil
        }
    }

    static func order(_ record: OrderRecord) throws -> NewOrder {
        let quantity = try decimal(record.quantity, "quantity", record)
        guard quantity > 0 else { throw PluginError.permanent("qt_orders/\(record.clientOrderID): quantity \(record.quantity) is not positive") }
        return NewOrder(symbol: record.symbol, side: try exchangeSide(record.side), quantity: quantity, reduceOnly: record.reduceOnly,
                        clientOrderId: record.clientOrderID)
    }

    static func exchangeSide(_ side: Messages.OrderSide) throws -> Exchange.OrderSide {
        switch side {
        case .buy: return .buy
        case .sell: return .sell
        default: throw PluginError.permanent("order side \(side) is neither BUY nor SELL")
        }
    }

    static func decimal(_ text: String, _ field: String, _ record: OrderRecord) throws -> Decimal {
        guard let value = Decimal.parse(text) else {
            throw PluginError.permanent("qt_orders/\(record.clientOrderID): \(field) is \"\(text)\", expected a decimal string")
        }
        return value
    }
}

/// Step 6's change to the symbol's ledger entry, applied under the claim in one compare-and-set.
struct LedgerChange: Equatable, Sendable {
    let planID: String
    let kind: PlanKind
    /// Nil for an UPDATE_STOP, which trades nothing.
    let execution: LedgerBook.Execution?
    let stopDistPct: Double
    let stopPrice: String
    let stopAlgoID: String
    /// An OPEN's protective stop placed before the settle: recorded with the fill.
    let initialStop: PlacedStop?

    init(_ record: OrderRecord, stop: PlacedStop? = nil) throws {
        initialStop = stop
        let plan = record.plan
        planID = plan.planID
        kind = plan.kind
        stopDistPct = plan.stopDistPct
        stopPrice = plan.stopPrice
        stopAlgoID = ProtectiveStops.clientAlgoID(planID: plan.planID)
        execution = plan.kind == .updateStop ? nil : LedgerBook.Execution(
            side: record.side, quantity: try OrderLifecycle.decimal(record.executedQty, "executed_qty", record),
            price: try OrderLifecycle.decimal(record.avgPrice, "avg_price", record),
            realizedPnl: try OrderLifecycle.decimal(record.realizedPnl, "realized_pnl", record), tradeIDs: record.fillIds)
    }

    func apply(to entry: inout LedgerEntry, eventTimeMs: Int64) throws {
        if let execution { _ = try LedgerBook.apply(execution, to: &entry, eventTimeMs: eventTimeMs) }
        entry.lastPlanID = planID
        switch kind {
        case .open:
            entry.stopDistPct = stopDistPct
            if let initialStop, Decimal.parse(entry.positionAmt).map({ $0 != 0 }) == true {
                entry.stopAlgoID = initialStop.clientAlgoID
                entry.stopPrice = initialStop.triggerPrice
            }
        case .reduce where !entry.positionAmt.isEmpty && Decimal.parse(entry.positionAmt) != 0:
            entry.tranchesTaken = min(3, entry.tranchesTaken + 1)
        case .updateStop:
            entry.stopPrice = stopPrice
            entry.stopAlgoID = stopAlgoID
        default: break
        }
    }
}

/// A protective stop the exchange accepted: what the ledger entry records of it.
struct PlacedStop: Equatable, Sendable {
    let clientAlgoID: String
    let triggerPrice: String
}

/// The protective stop after an OPEN: the plan's stop price when it has one, else the entry
/// price moved by the plan's stop distance against the position, rounded away from the entry
/// to the symbol's tick.
struct InitialStop: Equatable, Sendable {
    /// Used when a plan carries no stop distance (plans from before `stop_dist_pct`).
    static let defaultDistance = 0.02

    let symbol: String
    let closingSide: Exchange.OrderSide
    let clientAlgoID: String
    let entryPrice: Decimal
    let isLong: Bool
    let distance: Decimal
    let requestedTrigger: Decimal?

    /// The plan's stop distance when it is a fraction in (0, 1), else the default. A record written
    /// before plans were checked may hold anything; a filled position still gets its stop.
    static func distance(_ stopDistPct: Double) -> Double {
        stopDistPct.isFinite && stopDistPct > 0 && stopDistPct < 1 ? stopDistPct : defaultDistance
    }

    func trigger(roundedBy rules: SymbolFilters) -> Decimal {
        if let requestedTrigger { return requestedTrigger }
        return isLong ? rules.roundPrice(entryPrice * (1 - distance), .down) : rules.roundPrice(entryPrice * (1 + distance), .up)
    }

    func order(roundedBy rules: SymbolFilters) -> NewStopOrder {
        NewStopOrder(symbol: symbol, side: closingSide, triggerPrice: trigger(roundedBy: rules), clientAlgoId: clientAlgoID)
    }
}
