import Exchange
import Foundation
import Host
import Identity
import Messages

/// The one plugin that touches money (DESIGN.md §5, R7). For each approved plan, in steps that
/// are each safe to repeat after a crash anywhere:
/// 1. the permit must exist (without one, an existing `qt_orders` record is resumed from its
///    state; a plan met before its permit waits one retry) and the plan must not have expired;
/// 2. the trading state must allow it;
/// 3. the symbol is claimed in the ledger by compare-and-set (`pending_client_order_id`) at the
///    plan's revision (exits) or flat with no claim (entries);
/// 4. the record is created (SENT for an order, CLAIMED for an UPDATE_STOP; an OPEN's beside its
///    claim, finished REJECTED "refused before sending" when the claim is refused); the permit's
///    delete goes out with the result;
/// 5. the order is sent (SENT first, so a crash leaves a query, never a blind resend);
/// 6. an OPEN's protective stop is placed while the claim still holds;
/// 7. one ledger compare-and-set applies the fill, records that stop and clears the claim; then
///    the stop is replaced by an UPDATE_STOP or cancelled after a CLOSE;
/// 8. the record's APPLIED write goes out with the `OrderResult`, in one batch, before the ack.
/// Fills it did not place (`qt.exec.fill.*`) are applied to the ledger once per trade id. A timer
/// (`Recovery`) finishes records a crash left behind and releases claims no plan can finish.
public final class ExecutorPlugin: Plugin {
    public static let name = "executor"

    public static func registration(exchanges: ExchangeClients, crashHook: @escaping CrashHook = { _ in }) -> PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: name, version: "1.0.0",
                inputs: [InputSpec("approved", subject: "qt.plan.approved.*", type: Plan.self, concurrency: 8,
                                           replayLimit: InputSpec.planReplay),
                         InputSpec("fills", subject: "qt.exec.fill.*", type: Fill.self)],
                outputs: [OutputSpec("results", subject: "qt.exec.result.*", type: OrderResult.self),
                          OutputSpec("decisions", subject: "qt.decision.executor.*", type: Decision.self),
                          OutputSpec("alerts", subject: "qt.alert.*", type: Alert.self)],
                kvReads: ["qt_ledger", "qt_orders", "qt_permits", "qt_control"],
                kvWrites: ["qt_ledger", "qt_orders", "qt_permits"],
                // Every host runs it on the symbols whose partitions it owns, and again on each partition it takes.
                timers: [TimerSpec("resume", intervalMs: 30_000, singleton: false, intervalSecondsSetting: "resume_s", firesAtStart: true,
                                   firesOnPartitionAcquired: true)],
                config: [ConfigKey("resume_s", .double, default: .double(30), range: 1...3600,
                                   help: "seconds between passes that finish records left unfinished and release orphan claims"),
                         ConfigKey("query_interval_ms", .int, default: .int(250), range: 10...10_000, help: "pause between queries of an order whose outcome is unknown"),
                         ConfigKey("patience_ms", .int, default: .int(15_000), range: 100...25_000,
                                   help: "how long one delivery waits for an unknown outcome before leaving it to redelivery")]),
            make: { setup in
                let exchange = try exchanges.client(setup, plugin: name)
                let desk = OrderDesk(exchange: exchange, clock: setup.clock, finalAfterMs: exchange.config.recvWindowMs + 5_000,
                                     queryIntervalMs: Int64(try setup.settings.int("query_interval_ms")),
                                     patienceMs: Int64(try setup.settings.int("patience_ms")))
                return ExecutorPlugin(desk: desk, stops: ProtectiveStops(exchange: exchange), filters: FilterCache(exchange: exchange),
                                      skew: ClockSkewWatch(exchange: exchange), crashHook: crashHook)
            })
    }

    private let desk: OrderDesk
    private let stops: ProtectiveStops
    private let filters: FilterCache
    private let recovery = Recovery()
    private let takerRate = TakerRate()
    /// The ledger as a watch keeps it: a claim is tried at the revision it shows, without a read.
    private let ledgerView = BucketView<LedgerEntry>("qt_ledger")
    /// The permits, kept by a watch: a plan's permit is found without a round trip.
    private let permits = PermitView()
    private let skew: ClockSkewWatch
    /// The trading state and kill switch, kept by a watch: read per plan without a round trip.
    private let control = ControlView()
    private let crashHook: CrashHook

    init(desk: OrderDesk, stops: ProtectiveStops, filters: FilterCache, skew: ClockSkewWatch, crashHook: @escaping CrashHook) {
        self.crashHook = crashHook
        self.desk = desk
        self.stops = stops
        self.filters = filters
        self.skew = skew
    }

    /// The pass decision's `after` key holding the milliseconds this delivery spent in exchange calls.
    public static let exchangeTimeKey = "exchange_ms"

    /// `qt-` + the first 32 hex of the plan id: one client order id per plan, forever.
    public static func clientOrderID(planID: String) -> String { "qt-" + planID.prefix(32) }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        // Every host runs this timer: each measures its own clock against the exchange's.
        try await skew.check(context: context)
        try await recovery.pass(context: context) { record, revision in
            try await self.run(record, revision: revision, context: context)
        }
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        defer { context.recordWeight(of: desk.exchange) }
        if let fill = input.message(as: Fill.self) {
            return try await FillBook(context: context).apply(fill, subject: input.subject)
        }
        guard let plan = input.message(as: Plan.self) else { throw PluginError.permanent("expected a Plan or a Fill") }
        try PlanCheck.validate(plan, subject: input.subject, expected: Subjects.planApproved(plan.symbol), sized: true)
        let clientOrderID = Self.clientOrderID(planID: plan.planID)
        let orders = try await context.kv("qt_orders")
        let nowMs = desk.clock.nowMs()
        // The permit is read first (from the watched view, PermitView): it is deleted once the order
        // has run, so a plan that still has one has no finished record, unless a crash or a retry
        // fell between the record's create and that delete; the create and the refusal below look
        // for that record.
        let permit = try await permits.permit(of: plan.planID, nowMs: nowMs, context: context)
        if permit == nil {
            if let found = try await orders.get(OrderRecord.self, clientOrderID) {
                return try await run(found.value, revision: found.revision, context: context)
            }
            // The gate's permit travels beside the plan, in another stream, so the plan can arrive
            // first: its first delivery waits one retry (1 s) before the plan is refused.
            if input.deliveryCount <= 1 {
                context.count("permit_awaited")
                throw PluginError.transient("plan \(plan.planID): no permit qt_permits/\(plan.planID) yet; looked again in a second, then refused")
            }
        }
        let ledger = try await context.kv("qt_ledger")
        let claims = LedgerClaims(ledger: ledger, symbol: plan.symbol, clientOrderID: clientOrderID)
        var refusal = OrderLifecycle.admissionRefusal(plan, permit: permit, control: try await control.read(context), nowMs: nowMs)
        // A view that cannot be brought up to date is no reason to hold a plan: the bucket decides.
        let viewed = try? await ledgerView.read(plan.symbol, context)
        // An OPEN's record does not depend on what the claim finds (its stop id is informational:
        // nothing after an OPEN's settle reads it), so it is created beside the claim, one awaited
        // write fewer. A CLOSE's record carries the stop the claim finds, so it waits for the claim.
        let opening = refusal == nil && plan.kind == .open
            ? try OrderLifecycle.step(OrderLifecycle.claimed(plan, nowMs: nowMs), .currentStop(clientAlgoID: ""), nowMs: nowMs) : nil
        async let createdBeside: RecordCreation? = opening == nil ? nil : create(opening!.record, orders: orders, crashPoint: .afterCreate)
        if refusal == nil, case .stale(let why) = try await claims.claim(plan, viewed: viewed) {
            refusal = (.stale, why)
        }
        let creation = try await createdBeside
        if let opening, case .created(let revision)? = creation {
            if let (reason, detail) = refusal {
                // The record landed beside a refused claim: nothing was sent. It is finished as refused
                // before sending, so a replay repeats this block instead of reporting an exchange refusal.
                _ = try await orders.update(clientOrderID, OrderLifecycle.refused(opening.record, why: detail, nowMs: nowMs),
                                            expectedRevision: revision)
                try await context.deleteWithOutputs("qt_permits", plan.planID)
                return try context.decide(.block, reason: reason, about: plan.planID, kind: .plan, symbol: plan.symbol, detail: detail)
            }
            crashHook(.afterClaim)
            crashHook(.afterRecord)
            try await context.deleteWithOutputs("qt_permits", plan.planID)
            return try await run(opening.record, revision: revision, context: context, claims: claims,
                                 then: opening.effects.filter { $0 != .save })
        }
        if let (reason, detail) = refusal {
            // A record with its permit still there (a crash between the two writes): the record goes on;
            // an order may be out, so nothing is refused or released.
            if permit != nil, let found = try await orders.get(OrderRecord.self, clientOrderID) {
                try await context.deleteWithOutputs("qt_permits", plan.planID)
                return try await run(found.value, revision: found.revision, context: context)
            }
            // A claim of this plan left by a crash before its record: no order was sent, so it is released.
            try await claims.release()
            try context.decide(.block, reason: reason, about: plan.planID, kind: .plan, symbol: plan.symbol, detail: detail)
            if reason == .permitMismatch { try Self.alertMismatch(plan, detail: detail, subject: input.subject, context: context) }
            return
        }
        crashHook(.afterClaim)

        // The claim has just read the ledger, so the stop it holds is known: the record starts at the
        // step after CLAIMED (SENT for an order), one write where there were two. A crash before the
        // order goes out leaves a SENT record, which recovery queries and sends again once the first
        // request can no longer arrive (docs/decisions.md, the crash table).
        let first: OrderLifecycle.Step
        if let opening {
            first = opening
        } else {
            let stop = try await claims.currentStop()
            first = try OrderLifecycle.step(OrderLifecycle.claimed(plan, nowMs: nowMs), .currentStop(clientAlgoID: stop), nowMs: nowMs)
        }
        let record = first.record
        let revision: UInt64
        let recorded: RecordCreation
        if let creation { recorded = creation } else { recorded = try await create(record, orders: orders) }
        switch recorded {
        case .created(let created):
            revision = created
        case .exists(let found):
            // Another host created it between our read and now: continue from what it wrote.
            // A record with its permit still there is ours from before a crash, or another host's.
            try await context.deleteWithOutputs("qt_permits", plan.planID)
            return try await run(found.value, revision: found.revision, context: context)
        }
        crashHook(.afterRecord)
        // The permit's delete goes out with the result, in its round trip: the record already
        // guards against a second order, and a crash or a retry before the delete lands is the
        // case the permit-first read above already finishes (the crash table).
        try await context.deleteWithOutputs("qt_permits", plan.planID)
        try await run(record, revision: revision, context: context, claims: claims, then: first.effects.filter { $0 != .save })
    }

    private enum RecordCreation: Sendable {
        case created(UInt64)
        /// The record was there already (a crash or another host before this delivery).
        case exists((value: OrderRecord, revision: UInt64))
    }

    private func create(_ record: OrderRecord, orders: PluginKV, crashPoint: CrashPoint? = nil) async throws -> RecordCreation {
        do {
            let revision = try await orders.create(record.clientOrderID, record)
            if let crashPoint { crashHook(crashPoint) }
            return .created(revision)
        } catch is KVConflict {
            guard let found = try await orders.get(OrderRecord.self, record.clientOrderID) else {
                throw PluginError.transient("qt_orders/\(record.clientOrderID) vanished")
            }
            return .exists(found)
        }
    }

    private static func alertMismatch(_ plan: Plan, detail: String, subject: String, context: HandlerContext) throws {
        var alert = Alert()
        alert.kind = .permitMismatch
        alert.severity = .critical
        alert.plugin = name
        alert.symbol = plan.symbol
        alert.subject = subject
        alert.message = detail + ": no order was sent; find who publishes on qt.plan.approved besides portfolio-gate"
        alert.details = ["plan_id": plan.planID, "side": "\(plan.side)", "kind": "\(plan.kind)", "quantity": plan.quantity,
                         "reduce_only": String(plan.reduceOnly)]
        alert.meta.eventTimeMs = context.eventTimeMs
        try context.emit("alerts", alert, subject: Subjects.alert(.permitMismatch))
    }

    /// Steps 5–8 from whatever state the record is in: performs what `OrderLifecycle` says and
    /// answers its asks. Every exchange call is made only while this host holds the symbol's lease.
    /// `claims` carries the entry the claim just wrote, when the run follows it; `then`, the effects
    /// of the step that made `start` (already saved) still to perform.
    private func run(_ start: OrderRecord, revision startRevision: UInt64, context: HandlerContext, claims known: LedgerClaims? = nil,
                     then pending: [OrderLifecycle.Effect]? = nil) async throws {
        var record = start
        var firstEffects = pending
        var revision = startRevision
        let orders = try await context.kv("qt_orders")
        let ledger = try await context.kv("qt_ledger")
        let claims = known ?? LedgerClaims(ledger: ledger, symbol: record.symbol, clientOrderID: record.clientOrderID)
        var event = OrderLifecycle.Event.resumed
        // Wall time inside exchange calls, reported with the decision so the pipeline's own share
        // of a trade's latency can be told apart from the exchange's (issue 20).
        var exchangeNanos: UInt64 = 0
        func timed<T>(_ call: () async throws -> T) async throws -> T {
            let start = DispatchTime.now().uptimeNanoseconds
            defer { exchangeNanos += DispatchTime.now().uptimeNanoseconds - start }
            return try await call()
        }
        func placeStop(_ initial: InitialStop) async throws -> PlacedStop {
            try context.checkLease(symbol: record.symbol)
            let stop = initial.order(roundedBy: try await filters.filters(for: record.symbol))
            try await timed { try await stops.place(stop) }
            return PlacedStop(clientAlgoID: stop.clientAlgoId, triggerPrice: stop.triggerPrice.plainString)
        }
        while true {
            let effects: [OrderLifecycle.Effect]
            if let pending = firstEffects {
                effects = pending
                firstEffects = nil
            } else {
                let step = try OrderLifecycle.step(record, event, nowMs: desk.clock.nowMs())
                record = step.record
                effects = step.effects
            }
            var answer: OrderLifecycle.Event?
            for effect in effects {
                switch effect {
                case .crashPoint(let point):
                    crashHook(point)
                case .save:
                    revision = try await orders.update(record.clientOrderID, record, expectedRevision: revision)
                case .saveWithResult:
                    try await context.updateWithOutputs("qt_orders", record.clientOrderID, record, expectedRevision: revision)
                case .releaseClaim:
                    try await claims.release()
                case .readCurrentStop:
                    answer = .currentStop(clientAlgoID: try await claims.currentStop())
                case .checkClaim:
                    answer = .claimHeld(try await claims.holdsClaim())
                case .placeStop(let stop):
                    try context.checkLease(symbol: record.symbol)
                    try await timed { try await stops.place(stop) }
                    answer = .stopPlaced
                case .send(let order):
                    try context.checkLease(symbol: record.symbol)
                    answer = .sent(try await timed { try await desk.send(order, sentAtMs: record.sentAtMs) })
                case .query:
                    try context.checkLease(symbol: record.symbol)
                    answer = .queried(try await timed {
                        try await desk.resolve(symbol: record.symbol, clientOrderID: record.clientOrderID, sentAtMs: record.sentAtMs)
                    })
                case .priceFill(let response):
                    // The claim's entry is the position before this fill; once the settle has run
                    // (a crash after it), only the exchange's trade list still tells.
                    if let entry = try await claims.claimedEntry() {
                        let rate = try await timed { try await takerRate.rate(symbol: record.symbol, exchange: desk.exchange) }
                        answer = .fillPriced(response, try FillTerms.priced(response, side: record.side, claimed: entry, takerRate: rate))
                    } else {
                        answer = .fillPriced(response, FillTerms.listed(try await timed { try await desk.trades(of: response) }))
                    }
                case .settleLedger(let change):
                    let eventTimeMs = context.eventTimeMs
                    let settled = try await claims.settle(eventTimeMs: eventTimeMs) { try change.apply(to: &$0, eventTimeMs: eventTimeMs) }
                    answer = .ledgerSettled(settled.value)
                case .protectFill(let initial):
                    // A claim already settled means this ran before a crash and the settle recorded
                    // what it placed; placing again might add a second stop.
                    guard try await claims.holdsClaim() else {
                        answer = .fillProtected(nil)
                        break
                    }
                    do {
                        answer = .fillProtected(try await placeStop(initial))
                    } catch let error as PluginError {
                        // Refused: the fill is settled without it, and the step after the settle
                        // tries once more and reports the refusal, as before stops came first.
                        guard case .permanent = error else { throw error }
                        answer = .fillProtected(nil)
                    }
                case .placeInitialStop(let initial):
                    let placed = try await placeStop(initial)
                    try await claims.recordStop(clientAlgoID: placed.clientAlgoID, price: placed.triggerPrice)
                    answer = .stopsSettled
                case .cancelStop(let stopID):
                    try context.checkLease(symbol: record.symbol)
                    try await timed { try await stops.cancel(clientAlgoID: stopID) }
                    answer = .stopsSettled
                case .publishResult:
                    try publish(record, exchangeMs: Double(exchangeNanos) / 1e6, context: context)
                    return
                case .publishRefusal:
                    let decisionID = context.isTimer ? ContentID.hash(Self.name, "decision", record.clientOrderID) : nil
                    try context.decide(.block, reason: .stale, about: record.planID, kind: .plan, symbol: record.symbol,
                                       detail: record.errorMessage, id: decisionID)
                    return
                }
            }
            guard let answer else {
                throw PluginError.permanent("qt_orders/\(record.clientOrderID): the lifecycle left status \(record.status) with nothing to ask")
            }
            event = answer
        }
    }

    private func publish(_ record: OrderRecord, exchangeMs: Double, context: HandlerContext) throws {
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
        // Counted per result published: a result published again (a redelivery after a crash) counts again.
        context.count(record.status == .rejected ? "orders_rejected" : "orders_applied")
        if record.status == .rejected {
            try context.decide(.block, reason: .exchangeRejected, about: record.planID, kind: .plan, symbol: record.symbol,
                               detail: "Binance \(record.errorCode): \(record.errorMessage)", id: decisionID)
        } else {
            try context.decide(.pass, reason: .passed, about: record.planID, kind: .plan, symbol: record.symbol,
                               after: ["executed_qty": record.executedQty, "avg_price": record.avgPrice,
                                       Self.exchangeTimeKey: String(format: "%.3f", exchangeMs)], id: decisionID)
        }
    }
}
