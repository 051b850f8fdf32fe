import Foundation
import Host
import Kernels
import Messages

/// On each closed bar: appends the close to the symbol's window (the last 301 closes, kept in
/// `qt_state` so a restart or another host continues where this one stopped), runs §6.1, and
/// publishes `qt.market.state.<SYM>` and writes `qt_marketstate/<SYM>`. Fewer than 257 closes:
/// no state at all. A bar that does not follow the window's last one (a gap) is retried until an
/// earlier bar still in flight could have come back, then starts the window again rather than
/// compute slopes across missing minutes.
public final class MarketStatePlugin: Plugin {
    public static let name = "market-state"
    public static let windowCloses = 301
    /// Retries back off 1, 2, 4, 8, 16, 30 s: the 7th delivery comes about 61 s after the first,
    /// past the default AckWait (30 s) in which an unacknowledged earlier bar is redelivered.
    static let gapPatienceDeliveries: UInt64 = 7

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
        guard let close = Double(bar.close), close.isFinite, close > 0 else {
            throw PluginError.permanent("\(input.subject): close is \"\(bar.close)\", expected a positive decimal string")
        }
        let stateName = "window-\(bar.symbol)"
        let stored = try await windows.load(stateName, context: context)
        var window = stored.value
        switch BarSequence.place(openTimeMs: bar.openTimeMs, after: window.lastOpenTimeMs, windowIsEmpty: window.closes.isEmpty) {
        case .next:
            window.symbol = bar.symbol
            window.closes.append(close)
            if window.closes.count > Self.windowCloses { window.closes.removeFirst(window.closes.count - Self.windowCloses) }
            window.lastOpenTimeMs = bar.openTimeMs
        case .afterGap:
            // A bar out of order looks like a gap: one delivered earlier and not acknowledged (its
            // host died, its fetch reply was lost in a server failover) comes back within AckWait,
            // after fresh ones. Wait for it through the retries; a gap still there is real.
            if input.deliveryCount < Self.gapPatienceDeliveries {
                let missing = (bar.openTimeMs - window.lastOpenTimeMs) / MarketFeedPlugin.barIntervalMs - 1
                throw PluginError.transient("\(input.subject): the bar opening at \(bar.openTimeMs) follows \(window.lastOpenTimeMs) with "
                    + "\(missing) bar(s) missing; waiting for them to be redelivered before starting the window again "
                    + "(delivery \(input.deliveryCount) of \(Self.gapPatienceDeliveries))")
            }
            window = CloseWindow()
            window.symbol = bar.symbol
            window.closes = [close]
            window.lastOpenTimeMs = bar.openTimeMs
        case .older:
            return
        case .newestAgain:
            break
        }

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
        let state = Self.message(values, symbol: bar.symbol, asOfMs: bar.closeTimeMs)
        try await context.kv("qt_marketstate").put(bar.symbol, state)
        try await windowSaved
        slides.keep(bar.symbol, slide)
        try context.emit("states", state, subject: Subjects.marketState(bar.symbol))
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
