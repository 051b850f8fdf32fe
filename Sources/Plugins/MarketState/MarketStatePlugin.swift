import Foundation
import Host
import Kernels
import Messages

/// On each closed bar: appends the close to the symbol's window (the last 301 closes, kept in
/// `qt_state` so a restart or another host continues where this one stopped), runs §6.1, and
/// publishes `qt.market.state.<SYM>` and writes `qt_marketstate/<SYM>`. Fewer than 257 closes:
/// no state at all. Bars after a hole are held in the window until the missing bar comes
/// (`BarSequence`); a hole that lasts 257 bars starts the window again from them.
public final class MarketStatePlugin: Plugin {
    public static let name = "market-state"
    public static let windowCloses = 301

    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: name, version: "1.0.0",
            inputs: [InputSpec("klines", subject: "qt.market.kline.*", type: Kline.self, fetchBatch: 128)],
            outputs: [OutputSpec("states", subject: "qt.market.state.*", type: MarketState.self)],
            kvReads: ["qt_state"],
            kvWrites: ["qt_marketstate", "qt_state"]),
        make: { _ in MarketStatePlugin() })

    private let windows = CachedState<CloseWindow>()
    private let slides = MarketStateSlides()

    public func forget(symbolsWhere isGone: @escaping @Sendable (String) -> Bool) {
        windows.forget(symbolsWhere: isGone)
        slides.forget(symbolsWhere: isGone)
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let bar = input.message(as: Kline.self) else { throw PluginError.permanent("expected a Kline") }
        guard !bar.symbol.isEmpty, input.subject == Subjects.kline(bar.symbol) else {
            throw PluginError.permanent("kline for \"\(bar.symbol)\" arrived on \(input.subject)")
        }
        _ = try Self.close(of: bar, subject: input.subject)
        let stateName = "window-\(bar.symbol)"
        let stored = try await windows.load(stateName, context: context)
        var window = stored.value
        var held = window.held
        let placed = BarSequence.place(bar, lastOpenTimeMs: window.lastOpenTimeMs, movedByOpenTimeMs: window.movedByOpenTimeMs,
                                       windowIsEmpty: window.closes.isEmpty, held: &held, limit: MarketStateKernel.minimumCloses)
        switch placed {
        case .known:
            return
        case .movedAgain:
            break
        case .held:
            window.held = held
            return try await windows.save(stateName, window, over: stored.revision, symbol: bar.symbol, context: context)
        case .append(let bars), .restart(let bars):
            if case .restart = placed { window = CloseWindow() }
            window.symbol = bar.symbol
            for next in bars { window.closes.append(try Self.close(of: next, subject: input.subject)) }
            if window.closes.count > Self.windowCloses { window.closes.removeFirst(window.closes.count - Self.windowCloses) }
            window.lastOpenTimeMs = bars.last!.openTimeMs
            window.lastCloseTimeMs = bars.last!.closeTimeMs
            window.movedByOpenTimeMs = bar.openTimeMs
            window.held = held
        }

        // Held bars were saved above; past here the window moved exactly when its newest bar did.
        let windowMoved = window.lastOpenTimeMs != stored.value.lastOpenTimeMs || stored.revision == 0
        let finalWindow = window
        // The window and the state are written side by side (one replicated round trip per bar, not
        // two): the state is a pure function of the bars, so whichever host writes it writes the same
        // value, and a window write refused by compare-and-set fails the message all the same.
        async let windowSaved: Void = windowMoved
            ? windows.save(stateName, finalWindow, over: stored.revision, symbol: bar.symbol, context: context) : ()
        let slide = MarketStateSlides.advance(slides.take(bar.symbol), previous: stored.value, to: window)
        guard let values = slide.values else {
            try await windowSaved
            return slides.keep(bar.symbol, slide)
        }
        let state = Self.message(values, symbol: bar.symbol, asOfMs: window.lastCloseTimeMs != 0 ? window.lastCloseTimeMs : bar.closeTimeMs)
        try await context.kv("qt_marketstate").put(bar.symbol, state)
        try await windowSaved
        slides.keep(bar.symbol, slide)
        try context.emit("states", state, subject: Subjects.marketState(bar.symbol))
    }

    static func close(of bar: Kline, subject: String) throws -> Double {
        guard let close = Double(bar.close), close.isFinite, close > 0 else {
            throw PluginError.permanent("\(subject): close of the bar opening at \(bar.openTimeMs) is \"\(bar.close)\", expected a positive decimal string")
        }
        return close
    }

    static func message(_ values: MarketStateKernel.Values, symbol: String, asOfMs: Int64) -> MarketState {
        var state = MarketState()
        state.symbol = symbol
        state.sigma = values.sigma
        state.sigmaEwma = values.sigmaEwma
        state.sigmaMad = values.sigmaMad
        state.spikeProxy = values.spikeProxy
        state.mu = values.mu
        state.ts = values.ts
        state.dp = values.dp
        state.vr = values.vr
        state.pTrend = values.pTrend
        state.pMr = values.pMr
        state.pChop = values.pChop
        state.barsUsed = Int32(values.barsUsed)
        state.asOfMs = asOfMs
        state.meta.eventTimeMs = asOfMs
        return state
    }
}
