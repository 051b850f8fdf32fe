import Exchange
import Foundation
import Host
import Identity
import Kernels
import Messages

/// Sizes proposed plans onto `qt.plan.sized.<SYM>` (DESIGN.md §5, §6.4). Every plan gets a `Decision`.
///
/// OPEN: the entry kill score is §6.2's for the symbol's latest market state with age 0 (a state
/// older than `market_state_max_age_s` of event time blocks with `STALE_INPUT`); §6.4 turns it,
/// the regime flip and the confidence into ALLOW / SCALE / BLOCK (PASS / MODIFY / BLOCK). The
/// notional is min(`max_notional_per_trade`, room under `max_total_notional` over the ledger's open
/// positions at entry price and the entries other governors reserved, `NotionalReservations`) × the
/// §6.4 scale, at the mark price, rounded down to the step; an
/// entry under the exchange's minimum notional is blocked. Per-symbol rate limits count the
/// plans this gate passed, in event time, in `qt_state/governor.rate-<SYM>`. Leverage is capped
/// by `max_leverage`; the plan gets `stop_dist_pct`.
/// CLOSE: quantity = |position| in the ledger, reduce-only, no kill-score gate (R6).
public final class GovernorPlugin: Plugin {
    public static let name = "governor"

    public static func registration(exchanges: ExchangeClients) -> PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: name, version: "1.0.0",
                inputs: [InputSpec("proposed", subject: "qt.plan.proposed.*", type: Plan.self, replayLimit: InputSpec.planReplay)],
                outputs: [OutputSpec("sized", subject: "qt.plan.sized.*", type: Plan.self),
                          OutputSpec("decisions", subject: "qt.decision.governor.*", type: Decision.self)],
                kvReads: ["qt_control", "qt_ledger", "qt_marketstate", "qt_state"],
                kvWrites: ["qt_state"],
                config: [
                    ConfigKey("max_notional_per_trade", .double, default: .double(200), range: 1...100_000_000, help: "USDT notional of one entry before scaling"),
                    ConfigKey("max_total_notional", .double, default: .double(2000), range: 1...1_000_000_000, help: "USDT notional of all open positions together"),
                    ConfigKey("max_leverage", .int, default: .int(10), range: 1...125, help: "leverage above this is capped"),
                    ConfigKey("stop_dist_pct", .double, default: .double(0.02), range: 0.001...0.5, help: "protective stop distance of an entry, fraction of price"),
                    ConfigKey("rate_per_5m", .int, default: .int(2), range: 0...10_000_000, help: "entries per symbol in any 5 minutes of event time"),
                    ConfigKey("rate_per_hour", .int, default: .int(3), range: 0...10_000_000, help: "entries per symbol in any hour of event time"),
                    ConfigKey("market_state_max_age_s", .int, default: .int(180), range: 1...1_000_000_000, help: "event-time age (3 bars) beyond which market state is stale"),
                    ConfigKey("reservation_s", .double, default: .double(90), range: 1...3600,
                              help: "wall-clock seconds an entry's notional stays reserved before the ledger shows it (gate, permit, order)"),
                ]),
            make: { setup in
                let settings = setup.settings
                let exchange = try exchanges.client(setup, plugin: name)
                return GovernorPlugin(
                    exchange: exchange, marks: MarkBook(exchange: exchange, streamURL: setup.exchange?.streamURL),
                    limits: Limits(maxNotionalPerTrade: Decimal(try settings.double("max_notional_per_trade")),
                                   maxTotalNotional: Decimal(try settings.double("max_total_notional")),
                                   maxLeverage: Int32(try settings.int("max_leverage")), stopDistPct: try settings.double("stop_dist_pct"),
                                   ratePerFiveMinutes: try settings.int("rate_per_5m"), ratePerHour: try settings.int("rate_per_hour"),
                                   marketStateMaxAgeMs: Int64(try settings.int("market_state_max_age_s")) * 1000,
                                   reservationMs: Int64(try settings.double("reservation_s") * 1000)))
            })
    }

    struct Limits {
        var maxNotionalPerTrade: Decimal
        var maxTotalNotional: Decimal
        var maxLeverage: Int32
        var stopDistPct: Double
        var ratePerFiveMinutes: Int
        var ratePerHour: Int
        var marketStateMaxAgeMs: Int64
        var reservationMs: Int64
    }

    private let exchange: any FuturesExchange
    private let marks: MarkBook
    private let filters: FilterCache
    private let limits: Limits
    private let ledgerView = LedgerView()
    private let control = ControlView()
    private let notionalRounds = StateRounds()
    /// Each symbol's entries of the last hour (`rate-<symbol>`), kept by a watch: the rate's write
    /// is a compare-and-set at the revision read here, so a view that trails fails it and the
    /// plan comes back to a fresh count.
    private let rates = BucketView<PluginState>.ownState(of: name, prefix: "rate-")
    private let marketStates = BucketView<MarketState>("qt_marketstate")
    /// How far a plan's event time may lie behind the market state it is sized on.
    static let maxPlanLagMs: Int64 = 86_400_000

    init(exchange: any FuturesExchange, marks: MarkBook, limits: Limits) {
        self.exchange = exchange
        self.marks = marks
        self.filters = FilterCache(exchange: exchange)
        self.limits = limits
    }

    public func stop() async { await marks.stop() }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        defer { context.recordWeight(of: exchange) }
        guard var plan = input.message(as: Plan.self) else { throw PluginError.permanent("expected a Plan") }
        try PlanCheck.validate(plan, subject: input.subject, expected: Subjects.planProposed(plan.symbol))
        let before = ["kind": "\(plan.kind)", "side": "\(plan.side)", "leverage": String(plan.leverage), "confidence": String(plan.confidence)]
        var after: [String: String] = [:]
        let reason: ReasonCode
        do {
            switch plan.kind {
            case .open: reason = try await sizeEntry(&plan, input: input, context: context, after: &after)
            case .close: reason = try await sizeClose(&plan, context: context)
            case .reduce, .updateStop, .unspecified, .UNRECOGNIZED:
                throw PluginError.permanent("plan \(plan.planID) on \(input.subject): kind \(plan.kind); proposed plans are OPEN or CLOSE")
            }
        } catch let refusal as GateRefusal {
            try context.decide(.block, reason: refusal.reason, about: plan.planID, kind: .plan, symbol: plan.symbol,
                               detail: refusal.detail, before: before, after: after)
            return
        }
        after["quantity"] = plan.quantity
        after["leverage"] = String(plan.leverage)
        try context.emit("sized", plan, subject: Subjects.planSized(plan.symbol))
        try context.decide(reason == .passed ? .pass : .modify, reason: reason, about: plan.planID, kind: .plan, symbol: plan.symbol,
                           before: before, after: after)
    }

    private func sizeClose(_ plan: inout Plan, context: HandlerContext) async throws -> ReasonCode {
        try await control.check(context, entry: false)
        guard let position = try await LedgerPosition.read(plan.symbol, from: try await context.kv("qt_ledger")) else {
            throw GateRefusal(reason: .noPosition, detail: "the ledger holds no \(plan.symbol) position to close")
        }
        plan.closeAll(position)
        return .passed
    }

    private func sizeEntry(_ plan: inout Plan, input: Input, context: HandlerContext, after: inout [String: String]) async throws -> ReasonCode {
        guard plan.side == .buy || plan.side == .sell, !plan.reduceOnly, plan.leverage > 0 else {
            throw PluginError.permanent("plan \(plan.planID) on \(input.subject): an OPEN needs side BUY or SELL, leverage ≥ 1 "
                                        + "and no reduce_only (side \(plan.side), leverage \(plan.leverage))")
        }
        try await control.check(context, entry: true)
        let symbol = plan.symbol
        let eventTimeMs = input.eventTimeMs
        let isCurrent = { [limits] (state: MarketState) in
            eventTimeMs - state.asOfMs <= limits.marketStateMaxAgeMs && state.asOfMs - eventTimeMs <= Self.maxPlanLagMs
        }
        let stored = try await marketStates.read(symbol, context) { $0.value.map(isCurrent) ?? false }
        if case .unreadable(let why) = stored { throw GateRefusal(reason: .unreadableState, detail: "\(why): entries on \(symbol) are held") }
        guard let state = stored.value, isCurrent(state) else {
            // Both ways, with different bounds: the state may run ahead of a plan by the pipeline's
            // lag (minutes of event time in the simulator, which compresses time), but a plan a day
            // behind the state (event time 0, an intent replayed from days ago) is stale.
            throw GateRefusal(reason: .staleInput, detail: "no market state for \(symbol) within \(limits.marketStateMaxAgeMs / 1000) s of event time")
        }
        let market = HarvestKernel.Market(sigma: state.sigma, ts: state.ts, pTrend: state.pTrend, pMr: state.pMr, pChop: state.pChop)
        let theta = HarvestKernel.Theta()
        let regimeFlip = HarvestKernel.regimeFlip(market, theta: theta)
        let kill = HarvestKernel.killScore(regimeFlip: regimeFlip, sigmaSpike: HarvestKernel.sigmaSpike(state.sigma, theta: theta),
                                           tsDrop: HarvestKernel.tsDrop(state.ts, theta: theta), agePenalty: 0, theta: theta)
        let gate = GovernorKernel.openGate(killScore: kill, regimeFlip: regimeFlip, confidence: plan.confidence, quantity: 1)
        after["kill_score"] = String(kill)
        after["threshold"] = String(gate.threshold)
        after["gate"] = gate.decision.rawValue
        if gate.decision == .block {
            throw GateRefusal(reason: .killScoreBlock, detail: "entry kill score \(kill) ≥ \(GovernorKernel.blockFrom)")
        }

        let rate = try await rates.state("rate-\(symbol)", context)
        var passed = rate?.state.values ?? [:]
        let isRedelivery = passed[plan.planID] != nil
        if !isRedelivery { try checkRate(passed, eventTimeMs: eventTimeMs, symbol: symbol) }

        var reasons: [ReasonCode] = []
        if gate.decision == .scale { reasons.append(.killScoreScale) }
        if plan.leverage > limits.maxLeverage {
            plan.leverage = limits.maxLeverage
            reasons.append(.leverageCap)
        }
        let rules = try await filters.filters(for: symbol)
        let mark = try await marks.mark(symbol)
        guard mark > 0 else { throw PluginError.transient("\(symbol): mark price \(mark.plainString)") }
        let ledger = try await ledgerView.read(context)
        if let why = ledger.unreadable[symbol] {
            throw GateRefusal(reason: .unreadableState, detail: "qt_ledger/\(symbol) cannot be read, entries are held: \(why)")
        }
        // Another symbol's unreadable entry leaves its notional out; its own entries are held.
        let nowMs = context.clock.nowMs()
        var quantity = Decimal(0)
        // The rate record counts this plan as passed. It goes out beside the reservation's
        // compare-and-set, once the room is sized, rather than after it: both land before the sized
        // plan does. Only when another governor's write makes the reservation's round run again and
        // the new round refuses does the rate count a plan that did not pass: one more than it
        // should, for an hour, on the side that blocks more.
        var rateWrite: (@Sendable () async throws -> Void)?
        if !isRedelivery {
            passed = passed.filter { (Int64($0.value) ?? 0) > eventTimeMs - 3_600_000 }
            passed[plan.planID] = String(eventTimeMs)
            var record = PluginState()
            record.values = passed
            record.symbols = [symbol]
            rateWrite = { [rates, record] in _ = try await rates.save("rate-\(symbol)", record, expectedRevision: rate?.revision ?? 0, context) }
        }
        let reservations = NotionalReservations(context: context, rounds: notionalRounds, maxTotal: limits.maxTotalNotional)
        let notional = try await reservations.reserve(plan, ledger: ledger, untilMs: nowMs + limits.reservationMs,
                                                      nowMs: nowMs, alongside: rateWrite) { room in
            let wanted = min(limits.maxNotionalPerTrade, room) * Decimal(gate.scale)
            do {
                quantity = try rules.marketQuantity(wanted / mark, price: mark, reduceOnly: false)
            } catch let error as FilterError {
                throw GateRefusal(reason: .minNotional, detail: "\(wanted.plainString) USDT at mark \(mark.plainString): \(error)")
            }
            if room < limits.maxNotionalPerTrade { reasons.append(.notionalCap) }
            return quantity * mark
        }
        plan.quantity = quantity.plainString
        plan.stopDistPct = limits.stopDistPct
        plan.killScore = kill
        plan.permitKind = .p33
        after["notional"] = notional.plainString
        after["mark"] = mark.plainString
        return reasons.first ?? .passed
    }

    /// 2 entries per 5 minutes and 3 per hour by default, counted in event time.
    private func checkRate(_ passed: [String: String], eventTimeMs: Int64, symbol: String) throws {
        let times = passed.values.compactMap { Int64($0) }
        let lastFive = times.filter { $0 > eventTimeMs - 300_000 }.count
        let lastHour = times.filter { $0 > eventTimeMs - 3_600_000 }.count
        if lastFive >= limits.ratePerFiveMinutes || lastHour >= limits.ratePerHour {
            throw GateRefusal(reason: .rateLimit, detail: "\(symbol): \(lastFive) entries in 5 min (max \(limits.ratePerFiveMinutes)), "
                          + "\(lastHour) in 1 h (max \(limits.ratePerHour))")
        }
    }
}
