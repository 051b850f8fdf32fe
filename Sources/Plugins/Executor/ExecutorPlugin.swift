import Exchange
import Foundation
import Host
import Identity
import Messages

/// The one plugin that touches money (DESIGN.md §5, R7). For each approved plan, in steps that
/// are each safe to repeat after a crash anywhere:
/// 1. an existing `qt_orders` record is resumed from its state;
/// 2. the permit must exist and the plan must not have expired;
/// 3. the symbol is claimed in the ledger by compare-and-set (`pending_client_order_id`) at the
///    plan's revision (exits) or flat with no claim (entries);
/// 4. the record is created (CLAIMED) and the permit deleted;
/// 5. the order is sent (SENT first, so a crash leaves a query, never a blind resend);
/// 6. one ledger compare-and-set applies the fill and clears the claim;
/// 7. protective stop: placed after an OPEN, replaced by UPDATE_STOP, cancelled after a CLOSE;
/// 8. the record is APPLIED and the `OrderResult` published with the ack.
/// Fills it did not place (`qt.exec.fill.*`) are applied to the ledger once per trade id. A timer
/// (`Recovery`) finishes records a crash left behind and releases claims no plan can finish.
public final class ExecutorPlugin: Plugin {
    public static let name = "executor"

    public static func registration(exchanges: ExchangeClients, crashHook: @escaping CrashHook = { _ in }) -> PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: name, version: "1.0.0",
                inputs: [InputSpec("approved", subject: "qt.plan.approved.*", type: Plan.self, concurrency: 8),
                         InputSpec("fills", subject: "qt.exec.fill.*", type: Fill.self)],
                outputs: [OutputSpec("results", subject: "qt.exec.result.*", type: OrderResult.self),
                          OutputSpec("decisions", subject: "qt.decision.executor.*", type: Decision.self)],
                kvReads: ["qt_ledger", "qt_orders", "qt_permits", "qt_control"],
                kvWrites: ["qt_ledger", "qt_orders", "qt_permits"],
                // Every host runs it on the symbols whose partitions it owns, and again on each partition it takes.
                timers: [TimerSpec("resume", intervalMs: 30_000, singleton: false, intervalSecondsSetting: "resume_s", firesAtStart: true,
                                   firesOnPartitionAcquired: true)],
                config: [ConfigKey("resume_s", .double, default: .double(30),
                                   help: "seconds between passes that finish records left unfinished and release orphan claims"),
                         ConfigKey("query_interval_ms", .int, default: .int(250), help: "pause between queries of an order whose outcome is unknown"),
                         ConfigKey("patience_ms", .int, default: .int(15_000),
                                   help: "how long one delivery waits for an unknown outcome before leaving it to redelivery")]),
            make: { setup in
                let exchange = try exchanges.client(setup, plugin: name)
                let desk = OrderDesk(exchange: exchange, clock: setup.clock, finalAfterMs: exchange.config.recvWindowMs + 5_000,
                                     queryIntervalMs: Int64(try setup.settings.int("query_interval_ms")),
                                     patienceMs: Int64(try setup.settings.int("patience_ms")))
                return ExecutorPlugin(desk: desk, stops: ProtectiveStops(exchange: exchange), filters: FilterCache(exchange: exchange),
                                      crashHook: crashHook)
            })
    }

    private let desk: OrderDesk
    private let stops: ProtectiveStops
    private let filters: FilterCache
    private let recovery = Recovery()
    private let crashHook: CrashHook

    init(desk: OrderDesk, stops: ProtectiveStops, filters: FilterCache, crashHook: @escaping CrashHook) {
        self.crashHook = crashHook
        self.desk = desk
        self.stops = stops
        self.filters = filters
    }

    /// `qt-` + the first 32 hex of the plan id: one client order id per plan, forever.
    public static func clientOrderID(planID: String) -> String { "qt-" + planID.prefix(32) }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        try await recovery.pass(context: context) { record, revision in
            try await self.run(record, revision: revision, context: context)
        }
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        if let fill = input.message(as: Fill.self) {
            return try await FillBook(context: context).apply(fill, subject: input.subject)
        }
        guard let plan = input.message(as: Plan.self) else { throw PluginError.permanent("expected a Plan or a Fill") }
        try PlanCheck.validate(plan, subject: input.subject, expected: Subjects.planApproved(plan.symbol))
        let clientOrderID = Self.clientOrderID(planID: plan.planID)
        let orders = try await context.kv("qt_orders")
        if let found = try await orders.get(OrderRecord.self, clientOrderID) {
            // A crash between creating the record and deleting the permit leaves the permit.
            let permits = try await context.kv("qt_permits")
            if try await permits.get(Permit.self, plan.planID) != nil { try await permits.delete(plan.planID) }
            return try await run(found.value, revision: found.revision, context: context)
        }
        let ledger = try await context.kv("qt_ledger")
        let claims = LedgerClaims(ledger: ledger, symbol: plan.symbol, clientOrderID: clientOrderID)
        let nowMs = desk.clock.nowMs()
        var refusal: (ReasonCode, String)?
        let control = try await TradingControl.read(context)
        if try await context.kv("qt_permits").get(Permit.self, plan.planID) == nil {
            refusal = (.permitMissing, "no permit qt_permits/\(plan.planID): never granted, expired (60 s) or used")
        } else if plan.expiresAtMs <= nowMs {
            refusal = (.expired, "plan expired at \(plan.expiresAtMs), now \(nowMs)")
        } else if let halted = control.refusal(entry: plan.kind == .open) {
            refusal = halted
        } else if case .stale(let why) = try await claims.claim(plan) {
            refusal = (.stale, why)
        }
        if let (reason, detail) = refusal {
            // A claim of this plan left by a crash before its record: no order was sent, so it is released.
            try await claims.release()
            try context.decide(.block, reason: reason, about: plan.planID, kind: .plan, symbol: plan.symbol, detail: detail)
            return
        }
        crashHook(.afterClaim)

        var record = OrderRecord()
        record.planID = plan.planID
        record.clientOrderID = clientOrderID
        record.symbol = plan.symbol
        record.side = plan.side
        record.quantity = plan.quantity
        record.reduceOnly = plan.reduceOnly
        record.planKind = plan.kind
        record.plan = plan
        record.status = .claimed
        record.updatedAtMs = nowMs
        let revision: UInt64
        do {
            revision = try await orders.create(clientOrderID, record)
        } catch is KVConflict {
            // Another host created it between our read and now: continue from what it wrote.
            guard let found = try await orders.get(OrderRecord.self, clientOrderID) else { throw PluginError.transient("qt_orders/\(clientOrderID) vanished") }
            return try await run(found.value, revision: found.revision, context: context)
        }
        crashHook(.afterRecord)
        try await context.kv("qt_permits").delete(plan.planID)
        try await run(record, revision: revision, context: context)
    }

    /// Steps 5–8 from whatever state the record is in.
    private func run(_ start: OrderRecord, revision startRevision: UInt64, context: HandlerContext) async throws {
        var record = start
        var revision = startRevision
        let orders = try await context.kv("qt_orders")
        func save(_ next: OrderRecord) async throws {
            var stamped = next
            stamped.updatedAtMs = desk.clock.nowMs()
            revision = try await orders.update(stamped.clientOrderID, stamped, expectedRevision: revision)
            record = stamped
        }
        while true {
            switch record.status {
            case .claimed, .sent:
                record = try await execute(record, save: save, context: context)
            case .filled:
                try await settle(record, context: context)
                crashHook(.afterLedger)
                var applied = record
                applied.status = .applied
                try await save(applied)
            case .applied, .rejected:
                crashHook(.beforeAck)
                try publish(record, context: context)
                return
            case .unspecified, .UNRECOGNIZED:
                throw PluginError.permanent("qt_orders/\(record.clientOrderID): status \(record.status) is not a step of the executor")
            }
        }
    }

    /// Step 5: send (or find out what became of) the order; the record ends FILLED or REJECTED.
    private func execute(_ record: OrderRecord, save: (OrderRecord) async throws -> Void, context: HandlerContext) async throws -> OrderRecord {
        let plan = record.plan
        let ledger = try await context.kv("qt_ledger")
        let claims = LedgerClaims(ledger: ledger, symbol: record.symbol, clientOrderID: record.clientOrderID)
        var next = record
        if record.status == .claimed {
            next.stopClientAlgoID = try await claims.currentStop()
            if plan.kind == .updateStop {
                // No order: the new stop is placed, then the ledger takes it with the claim cleared.
                guard let trigger = Decimal.parse(plan.stopPrice), trigger > 0 else {
                    throw PluginError.permanent("plan \(plan.planID): UPDATE_STOP without a stop_price")
                }
                try context.checkLease(symbol: record.symbol)
                try await stops.place(symbol: record.symbol, closingSide: try Self.exchangeSide(plan.side), trigger: trigger,
                                      clientAlgoID: ProtectiveStops.clientAlgoID(planID: plan.planID))
                next.status = .filled
                try await save(next)
                return next
            }
            next.status = .sent
            next.sentAtMs = desk.clock.nowMs()
            try await save(next)
        }
        let order = NewOrder(symbol: record.symbol, side: try Self.exchangeSide(record.side),
                             quantity: try Self.quantity(record), reduceOnly: record.reduceOnly, clientOrderId: record.clientOrderID)
        var outcome: OrderDesk.Outcome
        try context.checkLease(symbol: record.symbol)
        if record.status == .claimed {
            outcome = try await desk.send(order, sentAtMs: next.sentAtMs)
        } else {
            outcome = try await desk.resolve(symbol: record.symbol, clientOrderID: record.clientOrderID, sentAtMs: record.sentAtMs)
            if case .absent = outcome {
                // The first request can no longer arrive: the same client order id is sent again,
                // by whoever wins the record's compare-and-set.
                next.sentAtMs = desk.clock.nowMs()
                try await save(next)
                try context.checkLease(symbol: record.symbol)
                outcome = try await desk.send(order, sentAtMs: next.sentAtMs)
            }
        }
        crashHook(.afterSend)
        switch outcome {
        case .filled(let response):
            let trades = try await desk.trades(of: response)
            next.exchangeOrderID = response.orderId
            next.executedQty = response.executedQty.plainString
            next.avgPrice = response.avgPrice.plainString
            next.fee = trades.reduce(Decimal(0)) { $0 + $1.commission }.plainString
            next.realizedPnl = trades.reduce(Decimal(0)) { $0 + $1.realizedPnl }.plainString
            next.fillIds = trades.map { String($0.id) }
            next.status = .filled
            try await save(next)
            crashHook(.afterFill)
        case .refused(let code, let message):
            next.status = .rejected
            next.errorCode = Int32(clamping: code)
            next.errorMessage = message
            try await save(next)
            try await claims.release()
        case .absent:
            throw PluginError.transient("order \(record.clientOrderID): sent again and still not known")
        }
        return next
    }

    /// Steps 6 and 7: the fill into the ledger with the claim cleared, then the protective stop.
    private func settle(_ record: OrderRecord, context: HandlerContext) async throws {
        let plan = record.plan
        let ledger = try await context.kv("qt_ledger")
        let claims = LedgerClaims(ledger: ledger, symbol: record.symbol, clientOrderID: record.clientOrderID)
        let newStop = ProtectiveStops.clientAlgoID(planID: plan.planID)
        let execution: LedgerBook.Execution? = plan.kind == .updateStop ? nil : LedgerBook.Execution(
            side: record.side, quantity: try Self.decimal(record.executedQty, "executed_qty", record),
            price: try Self.decimal(record.avgPrice, "avg_price", record),
            realizedPnl: try Self.decimal(record.realizedPnl, "realized_pnl", record), tradeIDs: record.fillIds)
        let entry = try await claims.settle(eventTimeMs: context.eventTimeMs) { entry in
            if let execution { _ = try LedgerBook.apply(execution, to: &entry, eventTimeMs: context.eventTimeMs) }
            entry.lastPlanID = plan.planID
            switch plan.kind {
            case .open: entry.stopDistPct = plan.stopDistPct
            case .reduce where !entry.positionAmt.isEmpty && Decimal.parse(entry.positionAmt) != 0:
                entry.tranchesTaken = min(3, entry.tranchesTaken + 1)
            case .updateStop:
                entry.stopPrice = plan.stopPrice
                entry.stopAlgoID = newStop
            default: break
            }
        }
        try context.checkLease(symbol: record.symbol)
        switch plan.kind {
        case .open:
            let position = try LedgerPosition(symbol: record.symbol, entry: entry.value, revision: entry.revision)
            guard position.isOpen, entry.value.stopAlgoID != newStop else { return }
            let rules = try await filters.filters(for: record.symbol)
            let distance = Decimal(plan.stopDistPct > 0 ? plan.stopDistPct : 0.02)
            let trigger = Decimal.parse(plan.stopPrice).flatMap { $0 > 0 ? $0 : nil }
                ?? (position.amount > 0 ? rules.roundPrice(position.entryPrice * (1 - distance), .down)
                                        : rules.roundPrice(position.entryPrice * (1 + distance), .up))
            try await stops.place(symbol: record.symbol, closingSide: try Self.exchangeSide(position.closingSide), trigger: trigger,
                                  clientAlgoID: newStop)
            try await claims.recordStop(clientAlgoID: newStop, price: trigger.plainString)
        case .close, .reduce, .updateStop:
            let flat = try !LedgerPosition(symbol: record.symbol, entry: entry.value, revision: entry.revision).isOpen
            if plan.kind == .updateStop || flat {
                try await stops.cancel(clientAlgoID: record.stopClientAlgoID)
            }
        case .unspecified, .UNRECOGNIZED: break
        }
    }

    private func publish(_ record: OrderRecord, context: HandlerContext) throws {
        var result = OrderResult()
        result.planID = record.planID
        result.clientOrderID = record.clientOrderID
        result.exchangeOrderID = record.exchangeOrderID
        result.status = record.status
        result.executedQty = record.executedQty
        result.avgPrice = record.avgPrice
        result.fee = record.fee
        result.realizedPnl = record.realizedPnl
        result.errorCode = record.errorCode
        result.errorMessage = record.errorMessage
        result.symbol = record.symbol
        result.side = record.side
        result.planKind = record.planKind
        try context.emit("results", result, subject: Subjects.execResult(record.symbol),
                         id: ContentID.hash(Self.name, "result", record.clientOrderID))
        // A replayed plan is a new input and gets its own decision; a timer's needs a content id.
        let decisionID = context.isTimer ? ContentID.hash(Self.name, "decision", record.clientOrderID) : nil
        if record.status == .rejected {
            try context.decide(.block, reason: .exchangeRejected, about: record.planID, kind: .plan, symbol: record.symbol,
                               detail: "Binance \(record.errorCode): \(record.errorMessage)", id: decisionID)
        } else {
            try context.decide(.pass, reason: .passed, about: record.planID, kind: .plan, symbol: record.symbol,
                               after: ["executed_qty": record.executedQty, "avg_price": record.avgPrice], id: decisionID)
        }
    }

    static func exchangeSide(_ side: Messages.OrderSide) throws -> Exchange.OrderSide {
        switch side {
        case .buy: return .buy
        case .sell: return .sell
        default: throw PluginError.permanent("order side \(side) is neither BUY nor SELL")
        }
    }

    static func quantity(_ record: OrderRecord) throws -> Decimal {
        let quantity = try decimal(record.quantity, "quantity", record)
        guard quantity > 0 else { throw PluginError.permanent("qt_orders/\(record.clientOrderID): quantity \(record.quantity) is not positive") }
        return quantity
    }

    static func decimal(_ text: String, _ field: String, _ record: OrderRecord) throws -> Decimal {
        guard let value = Decimal.parse(text) else {
            throw PluginError.permanent("qt_orders/\(record.clientOrderID): \(field) is \"\(text)\", expected a decimal string")
        }
        return value
    }
}
