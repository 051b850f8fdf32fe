import Foundation
import Host
import Identity
import Kernels
import Messages

/// On each closed bar: appends it to the symbol's window (the last `windowBars` bars in
/// `qt_state/ai-agent.bars-<SYM>`, kept for every symbol so one that enters the universe is warm),
/// computes the §6.5 features and asks the model. For a symbol active in `qt_universe` it
/// publishes OPEN_LONG / OPEN_SHORT when flat, CLOSE when the ledger holds the other side; a flat
/// signal (HOLD) only counts in metrics. The ledger is read only to say CLOSE instead of a flip;
/// intent-bridge gates on it again. `intent_id = H(ai-agent, symbol, bar close time, model)`.
public final class AIAgentPlugin: Plugin {
    public static let name = "ai-agent"
    static let windowBars = 100

    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: name, version: "1.0.0",
            inputs: [InputSpec("klines", subject: "qt.market.kline.*", type: Kline.self, fetchBatch: 128)],
            outputs: [OutputSpec("intents", subject: "qt.signal.intent.*", type: TradeIntent.self)],
            kvReads: ["qt_universe", "qt_ledger", "qt_state"],
            kvWrites: ["qt_state"],
            config: [ConfigKey("leverage", .int, default: .int(3), range: 1...125, help: "leverage asked for in OPEN intents (the governor caps it)")]),
        make: { setup in AIAgentPlugin(model: TechnicalEnsemble(), leverage: Int32(try setup.settings.int("leverage"))) })

    private let model: any SignalModel
    private let leverage: Int32
    private let windows = CachedState<BarWindow>()

    public func forget(symbolsWhere isGone: @escaping @Sendable (String) -> Bool) {
        windows.forget(symbolsWhere: isGone)
    }

    init(model: any SignalModel, leverage: Int32) {
        self.model = model
        self.leverage = leverage
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let bar = input.message(as: Kline.self) else { throw PluginError.permanent("expected a Kline") }
        guard !bar.symbol.isEmpty, input.subject == Subjects.kline(bar.symbol) else {
            throw PluginError.permanent("kline for \"\(bar.symbol)\" arrived on \(input.subject)")
        }
        func number(_ field: String, _ text: String) throws -> Double {
            guard let value = Double(text), value.isFinite, value >= 0 else {
                throw PluginError.permanent("\(input.subject): \(field) is \"\(text)\", expected a non-negative decimal string")
            }
            return value
        }
        for (field, text) in [("high", bar.high), ("low", bar.low), ("volume", bar.volume)] { _ = try number(field, text) }
        guard try number("close", bar.close) > 0 else { throw PluginError.permanent("\(input.subject): close is \(bar.close), expected a positive price") }

        let name = "bars-\(bar.symbol)"
        let stored = try await windows.load(name, context: context)
        var window = stored.value
        var held = window.held
        let placed = BarSequence.place(bar, lastOpenTimeMs: window.lastOpenTimeMs, movedByOpenTimeMs: window.movedByOpenTimeMs,
                                       windowIsEmpty: window.closes.isEmpty, held: &held, limit: Self.windowBars)
        switch placed {
        case .known: return
        case .movedAgain: break
        case .held:
            window.held = held
            return try await windows.save(name, window, over: stored.revision, symbol: bar.symbol, context: context)
        case .append(let bars), .restart(let bars):
            if case .restart = placed { window = BarWindow() }
            window.symbol = bar.symbol
            for next in bars {
                window.highs.append(try number("high", next.high))
                window.lows.append(try number("low", next.low))
                window.closes.append(try number("close", next.close))
                window.volumes.append(try number("volume", next.volume))
            }
            let excess = window.closes.count - Self.windowBars
            if excess > 0 {
                window.highs.removeFirst(excess)
                window.lows.removeFirst(excess)
                window.closes.removeFirst(excess)
                window.volumes.removeFirst(excess)
            }
            window.lastOpenTimeMs = bars.last!.openTimeMs
            window.lastCloseTimeMs = bars.last!.closeTimeMs
            window.movedByOpenTimeMs = bar.openTimeMs
            window.held = held
            try await windows.save(name, window, over: stored.revision, symbol: bar.symbol, context: context)
        }
        // The newest bar in the window: the bar itself, or the newest of the held bars it released.
        let asOfMs = window.lastCloseTimeMs != 0 ? window.lastCloseTimeMs : bar.closeTimeMs

        guard let features = SignalFeatures.compute(highs: window.highs, lows: window.lows, closes: window.closes, volumes: window.volumes)
        else { return }
        let signal = model.signal(features)
        guard signal.direction != .flat else { return context.count("hold") }
        let universe: ActiveUniverse
        do {
            universe = try await ActiveUniverse.read(context)
        } catch is GateRefusal {
            return context.count("held")  // an unreadable universe: no intents until it is rewritten
        }
        guard universe.contains(bar.symbol) else { return }

        let position: LedgerPosition?
        do {
            position = try await LedgerPosition.read(bar.symbol, from: try await context.kv("qt_ledger"))
        } catch is GateRefusal {
            return context.count("held")  // an unreadable ledger entry: no intent for the symbol
        }
        let action: IntentAction
        switch (signal.direction, position?.side) {
        case (.long, .short?), (.short, .long?): action = .close
        case (_, .long?), (_, .short?): return  // already on the signal's side: no pyramiding
        case (.long, _): action = .openLong
        default: action = .openShort
        }
        var intent = TradeIntent()
        intent.intentID = ContentID.hash(Self.name, bar.symbol, String(asOfMs), model.name)
        intent.symbol = bar.symbol
        intent.action = action
        intent.confidence = signal.confidence
        intent.leverage = leverage
        intent.model = model.name
        intent.reasonText = signal.reason
        intent.features = features.named
        intent.meta.eventTimeMs = asOfMs
        try context.emit("intents", intent, subject: Subjects.intent(bar.symbol), id: intent.intentID)
    }
}
