import Foundation
import Host
import Identity
import Messages

/// Plugins for the host's integration tests: a two-stage relay (klines → states → decisions),
/// a singleton ticker, and a strict consumer that rejects what it cannot act on.
public enum TestPlugins {
    public static var registry: PluginRegistry {
        PluginRegistry([Counter.registration, Sequencer.registration, Feed.registration, RelayA.registration, RelayB.registration, Ticker.registration, Strict.registration, Broken.registration])
    }
}

/// A per-host timer that publishes one kline of symbol FEED per second: a source for the graph.
public final class Feed: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: "feed", version: "1.0.0",
            outputs: [OutputSpec("klines", subject: "qt.market.kline.*", type: Kline.self)],
            timers: [TimerSpec("bar", intervalMs: 1_000, singleton: false)]),
        make: { _ in Feed() })

    public func handle(_ input: Input, context: HandlerContext) async throws {
        throw PluginError.permanent("feed has no inputs")
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        var bar = Kline()
        bar.symbol = "FEED"
        bar.closeTimeMs = context.eventTimeMs
        bar.close = "1"
        let id = ContentID.content(plugin: "feed", kind: timer, symbol: context.hostID, eventTimeMs: context.eventTimeMs, revision: 0)
        try context.emit("klines", bar, subject: Subjects.kline("FEED"), id: id)
    }
}

/// Kline → MarketState, the close copied into `sigma` so a test can follow each message.
public final class RelayA: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: "relay-a", version: "1.0.0",
            inputs: [InputSpec("klines", subject: "qt.market.kline.*", type: Kline.self, ackWaitMs: 2_000)],
            outputs: [OutputSpec("states", subject: "qt.market.state.*", type: MarketState.self)],
            config: [ConfigKey("delay_ms", .int, default: .int(0), help: "simulated work per message")]),
        make: { RelayA(delayMs: try $0.settings.int("delay_ms")) })

    let delayMs: Int
    init(delayMs: Int) { self.delayMs = delayMs }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let bar = input.message(as: Kline.self) else { throw PluginError.permanent("not a kline") }
        if delayMs > 0 { try await Task.sleep(nanoseconds: UInt64(delayMs) * 1_000_000) }
        var state = MarketState()
        state.symbol = bar.symbol
        state.sigma = Double(bar.close) ?? 0
        state.asOfMs = bar.closeTimeMs
        try context.emit("states", state, subject: Subjects.marketState(bar.symbol))
    }
}

/// MarketState → Decision whose `subject_id` is the kline the state came from.
public final class RelayB: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: "relay-b", version: "1.0.0",
            inputs: [InputSpec("states", subject: "qt.market.state.*", type: MarketState.self, ackWaitMs: 2_000)],
            outputs: [OutputSpec("decisions", subject: "qt.decision.relay-b.*", type: Decision.self)]),
        make: { _ in RelayB() })

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let state = input.message(as: MarketState.self) else { throw PluginError.permanent("not a market state") }
        try context.decide(.pass, reason: .passed, about: state.meta.causeID, kind: .intent, symbol: state.symbol,
                           detail: "host \(context.hostID)")
    }
}

/// A singleton timer: each beat is a Decision on `qt.decision.ticker.<host>`.
public final class Ticker: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: "ticker", version: "1.0.0",
            outputs: [OutputSpec("decisions", subject: "qt.decision.ticker.*", type: Decision.self)],
            timers: [TimerSpec("beat", intervalMs: 500, singleton: true)]),
        make: { _ in Ticker() })

    public func handle(_ input: Input, context: HandlerContext) async throws {
        throw PluginError.permanent("ticker has no inputs")
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        var beat = Decision()
        beat.plugin = "ticker"
        beat.verdict = .pass
        beat.reason = .passed
        beat.symbol = context.hostID
        beat.detail = context.hostID
        let id = ContentID.content(plugin: "ticker", kind: timer, symbol: context.hostID, eventTimeMs: context.eventTimeMs, revision: 0)
        try context.emit("decisions", beat, subject: Subjects.decision(plugin: "ticker", symbol: context.hostID), id: id)
    }
}

/// A timer that always fails: what the host does about a plugin whose periodic work is not done.
public final class Broken: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(name: "broken", version: "1.0.0", timers: [TimerSpec("work", intervalMs: 200, singleton: false)]),
        make: { _ in Broken() })

    public func handle(_ input: Input, context: HandlerContext) async throws {
        throw PluginError.permanent("broken has no inputs")
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        throw PluginError.transient("the exchange is unreachable (test)")
    }
}

/// Acts only on a fully specified calibrated proposal; anything else is a permanent failure.
public final class Strict: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: "strict", version: "1.0.0",
            inputs: [InputSpec("calibrated", subject: "qt.harvest.calibrated.*", type: CalibratedProposal.self)],
            outputs: [OutputSpec("plans", subject: "qt.plan.sized.*", type: Plan.self)],
            kvReads: ["qt_control"]),
        make: { _ in Strict() })

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let calibrated = input.message(as: CalibratedProposal.self) else { throw PluginError.permanent("wrong type") }
        guard calibrated.calibratedAction != .unspecified else {
            throw PluginError.permanent("calibrated_action is HARVEST_ACTION_UNSPECIFIED")
        }
        var plan = Plan()
        plan.symbol = calibrated.proposal.symbol
        plan.kind = calibrated.calibratedAction == .fullClose ? .close : .reduce
        plan.origin = calibrated.proposal.proposalID
        try context.emit("plans", plan, subject: Subjects.planSized(plan.symbol))
    }
}

/// Counts klines in its `qt_state` entry by compare-and-set: shared by every host running it.
public final class Counter: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: "counter", version: "1.0.0",
            inputs: [InputSpec("klines", subject: "qt.market.kline.*", type: Kline.self, ackWaitMs: 2_000, fetchBatch: 8)],
            kvReads: ["qt_state"], kvWrites: ["qt_state"]),
        make: { _ in Counter() })

    public func handle(_ input: Input, context: HandlerContext) async throws {
        let current = try await context.loadState("klines")
        var state = current?.state ?? PluginState()
        let seen = Int(state.values["count"] ?? "0") ?? 0
        state.values["count"] = String(seen + 1)
        state.values["last_by"] = context.hostID
        // A conflict (the other host wrote first) throws: transient, the kline comes back.
        try await context.saveState("klines", state, expectedRevision: current?.revision ?? 0)
    }
}

/// Per-symbol state in `qt_state/sequencer.<SYM>`, like market-state's window: the bar index last
/// seen (the kline's `close`) and how many times a bar arrived that was not the next one (a "gap":
/// the window would restart). With klines published in order, a gap means a symbol's bar n+1 was
/// handled before bar n, which partition ownership must make impossible across a move.
public final class Sequencer: Plugin {
    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: "sequencer", version: "1.0.0",
            inputs: [InputSpec("klines", subject: "qt.market.kline.*", type: Kline.self, ackWaitMs: 2_000, fetchBatch: 16)],
            outputs: [OutputSpec("decisions", subject: "qt.decision.sequencer.*", type: Decision.self)],
            kvReads: ["qt_state"], kvWrites: ["qt_state"],
            config: [ConfigKey("delay_ms", .int, default: .int(0), help: "simulated work per message"),
                     ConfigKey("fail_every", .int, default: .int(0),
                               help: "bar n with n % fail_every == fail_every - 1 fails (transient) on its first delivery; 0: never")]),
        make: { Sequencer(delayMs: try $0.settings.int("delay_ms"), failEvery: try $0.settings.int("fail_every")) })

    let delayMs: Int
    let failEvery: Int
    init(delayMs: Int, failEvery: Int) {
        self.delayMs = delayMs
        self.failEvery = failEvery
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let bar = input.message(as: Kline.self), let index = Int(bar.close) else { throw PluginError.permanent("not an indexed kline") }
        if delayMs > 0 { try await Task.sleep(nanoseconds: UInt64(delayMs) * 1_000_000) }
        if failEvery > 0, index % failEvery == failEvery - 1, input.deliveryCount == 1 {
            throw PluginError.transient("bar \(index) of \(bar.symbol) fails on its first delivery")
        }
        let current = try await context.loadState(bar.symbol)
        var state = current?.state ?? PluginState()
        let last = Int(state.values["last"] ?? "-1") ?? -1
        guard index > last else { return }  // a redelivery of a bar already counted
        if index != last + 1 { state.values["gaps"] = String((Int(state.values["gaps"] ?? "0") ?? 0) + 1) }
        state.values["last"] = String(index)
        state.values["last_by"] = context.hostID
        state.symbols = [bar.symbol]
        try await context.saveState(bar.symbol, state, expectedRevision: current?.revision ?? 0)
        try context.decide(.pass, reason: .passed, about: bar.meta.id, kind: .intent, symbol: bar.symbol, detail: context.hostID)
    }
}
