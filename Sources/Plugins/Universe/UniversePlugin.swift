import Exchange
import Foundation
import Host
import Identity
import Kernels
import Messages

/// Writes `qt_universe/active`, the one tradable set (R4; DESIGN.md §5). Every `check_s` (wall
/// clock, singleton) it refreshes when the universe is missing or older than `refresh_s`:
/// USDT-quoted PERPETUAL symbols in TRADING status, ranked by 24 h quote volume, the top
/// `candidates` filtered by the market state in `qt_marketstate`, the first `max_active` active.
///
/// `max_active` follows `rollout` (e.g. "10,20,30"): at a refresh at least `rollout_step_s` after
/// the last step it moves one step up, but only if no alert fired since that step. Alerts are
/// an input so the rollout state lives in `qt_state/universe.rollout`, not in memory.
public final class UniversePlugin: Plugin {
    public static let name = "universe"
    static let rolloutState = "rollout"

    public static func registration(exchanges: ExchangeClients) -> PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: name, version: "1.0.0",
                inputs: [InputSpec("alerts", subject: "qt.alert.*", type: Alert.self)],
                kvReads: ["qt_marketstate", "qt_universe", "qt_state"],
                kvWrites: ["qt_universe", "qt_state"],
                timers: [TimerSpec("refresh", intervalMs: 30_000, singleton: true, intervalSecondsSetting: "check_s", firesAtStart: true)],
                config: [
                    ConfigKey("check_s", .double, default: .double(30), range: 0.2...3600, help: "seconds between checks whether a refresh is due"),
                    ConfigKey("refresh_s", .int, default: .int(3600), range: 0...604_800, help: "seconds a universe stays current"),
                    ConfigKey("candidates", .int, default: .int(20), range: 1...1000, help: "symbols by quote volume that are considered"),
                    ConfigKey("min_sigma", .double, default: .double(0), range: 0...1, help: "candidates with a lower 1-minute sigma are not active"),
                    ConfigKey("min_ts", .double, default: .double(0.4), range: 0...100, help: "candidates with a lower trend strength are not active"),
                    ConfigKey("rollout", .string, default: .string("10"), help: "max_active steps, comma-separated, e.g. 10,20,30"),
                    ConfigKey("rollout_step_s", .int, default: .int(86_400), range: 0...2_592_000, help: "seconds at one step before the next"),
                ]),
            make: { setup in
                let settings = setup.settings
                let text = try settings.string("rollout")
                let schedule = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !schedule.isEmpty, schedule.count == text.split(separator: ",").count, schedule.allSatisfy({ $0 > 0 }),
                      schedule == schedule.sorted() else {
                    throw PluginError.contract("universe.rollout is \"\(text)\"; expected rising positive integers separated by commas, e.g. 10,20,30")
                }
                return UniversePlugin(exchange: try exchanges.client(setup, plugin: name), schedule: schedule,
                                      refreshMs: Int64(try settings.int("refresh_s")) * 1000, stepMs: Int64(try settings.int("rollout_step_s")) * 1000,
                                      filter: UniverseRanking.Filter(candidates: try settings.int("candidates"), minSigma: try settings.double("min_sigma"),
                                                                     minTs: try settings.double("min_ts"), maxActive: schedule[0]))
            })
    }

    private let exchange: any FuturesExchange
    private let schedule: [Int]
    private let refreshMs: Int64
    private let stepMs: Int64
    private let filter: UniverseRanking.Filter

    init(exchange: any FuturesExchange, schedule: [Int], refreshMs: Int64, stepMs: Int64, filter: UniverseRanking.Filter) {
        self.exchange = exchange
        self.schedule = schedule
        self.refreshMs = refreshMs
        self.stepMs = stepMs
        self.filter = filter
    }

    /// Any alert after the last step holds the rollout at that step. The alert's time is its
    /// event time (wall clock for host and watchdog alerts), or the receipt time when it has none.
    public func handle(_ input: Input, context: HandlerContext) async throws {
        let alertMs = input.eventTimeMs > 0 ? input.eventTimeMs : context.clock.nowMs()
        let stored = try await context.loadState(Self.rolloutState)
        var state = stored?.state ?? PluginState()
        guard alertMs > Int64(state.values["last_alert_ms"] ?? "") ?? 0 else { return }
        state.values["last_alert_ms"] = String(alertMs)
        state.values["last_alert_subject"] = input.subject
        try await context.saveState(Self.rolloutState, state, expectedRevision: stored?.revision ?? 0)
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        let nowMs = context.eventTimeMs
        let bucket = try await context.kv("qt_universe")
        let current = try await bucket.get(Universe.self, "active")
        if let current, nowMs - current.value.asOfMs < refreshMs { return }

        let maxActive = try await rolloutStep(nowMs: nowMs, context: context)
        async let infoRead = exchange.exchangeInfo()
        async let tickersRead = exchange.tickers24h()
        let (info, tickers) = try await (infoRead, tickersRead)
        let (tradable, skipped) = Self.tradable(info)
        if !skipped.isEmpty {
            let named = skipped.prefix(10).map(\.debugDescription).joined(separator: ", ")
            context.logger.warning("universe: \(skipped.count) exchange symbol(s) outside \(Symbols.rule) are never traded: \(named)")
        }
        let listings = tickers.filter { tradable.contains($0.symbol) }
            .map { UniverseRanking.Listing(symbol: $0.symbol, quoteVolume: $0.quoteVolume.doubleValue) }
        let candidates = UniverseRanking.candidates(listings, count: filter.candidates)
        let marketStates = try await context.kv("qt_marketstate")
        var states: [String: MarketState] = [:]
        for listing in candidates {
            if let state = try await marketStates.get(MarketState.self, listing.symbol)?.value { states[listing.symbol] = state }
        }
        var rule = filter
        rule.maxActive = maxActive
        var universe = Universe()
        universe.version = (current?.value.version ?? 0) + 1
        universe.maxActive = Int32(maxActive)
        universe.entries = UniverseRanking.rank(candidates, states: states, filter: rule)
        universe.asOfMs = nowMs
        universe.meta.eventTimeMs = nowMs
        try await bucket.write("active", universe, over: current?.revision)
    }

    /// USDT perpetuals that are trading, split into those whose symbol can be a subject token and
    /// a KV key, and those skipped for it.
    static func tradable(_ info: ExchangeInfo) -> (tradable: Set<String>, skipped: [String]) {
        let listed = info.symbols.filter { $0.quoteAsset == "USDT" && $0.contractType == "PERPETUAL" && $0.status == "TRADING" }.map(\.symbol)
        return (Set(listed.filter(Symbols.isValid)), listed.filter { !Symbols.isValid($0) })
    }

    /// `max_active` now: the rollout's current step, moved one up when it is due and no alert came.
    private func rolloutStep(nowMs: Int64, context: HandlerContext) async throws -> Int {
        let stored = try await context.loadState(Self.rolloutState)
        var state = stored?.state ?? PluginState()
        let current = Int(state.values["max_active"] ?? "") ?? schedule[0]
        let steppedAt = Int64(state.values["stepped_at_ms"] ?? "") ?? nowMs
        let alertSinceStep = (Int64(state.values["last_alert_ms"] ?? "") ?? 0) >= steppedAt
        let next = state.values["stepped_at_ms"] != nil && nowMs - steppedAt >= stepMs && !alertSinceStep
            ? UniverseRanking.nextStep(schedule, current: current) : current
        if state.values["stepped_at_ms"] == nil || next != current {
            state.values["max_active"] = String(next)
            state.values["stepped_at_ms"] = String(nowMs)
            try await context.saveState(Self.rolloutState, state, expectedRevision: stored?.revision ?? 0)
        }
        return next
    }
}
