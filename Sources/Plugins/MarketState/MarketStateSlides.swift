import Foundation
import Kernels
import Messages
import Synchronization

/// Each symbol's §6.1 state kept sliding (`SlidingMarketState`, equal bit for bit to the full
/// recompute) beside the window it was built from. A bar that extends that window by one close
/// costs one slide; anything else (a restart, a moved partition, a gap, held bars released at once,
/// a failed write, which drops the slide) rebuilds it from the window's closes. A full recompute on every bar was the
/// plugin's bottleneck: the market state fell behind ai-agent's intents and the governor
/// refused them as stale.
final class MarketStateSlides: Sendable {
    struct Slide {
        var state: SlidingMarketState
        /// The window the slide equals: its last bar and its length.
        var lastOpenTimeMs: Int64
        var closes: Int
        var values: MarketStateKernel.Values?
    }

    private let slides = Mutex<[String: Slide]>([:])

    /// Takes the symbol's slide out while its bar is handled (a slide that is not put back, because
    /// a write failed, is rebuilt next time).
    func take(_ symbol: String) -> Slide? { slides.withLock { $0.removeValue(forKey: symbol) } }

    func keep(_ symbol: String, _ slide: Slide) { slides.withLock { $0[symbol] = slide } }

    func forget(symbolsWhere isGone: (String) -> Bool) {
        slides.withLock { $0 = $0.filter { !isGone($0.key) } }
    }

    /// The slide for `window`, which is `previous` with at most one close appended.
    static func advance(_ slide: Slide?, previous: CloseWindow, to window: CloseWindow) -> Slide {
        if let slide, slide.lastOpenTimeMs == window.lastOpenTimeMs, slide.closes == window.closes.count { return slide }
        if var slide, slide.lastOpenTimeMs == previous.lastOpenTimeMs, slide.closes == previous.closes.count,
           window.lastOpenTimeMs == previous.lastOpenTimeMs + MarketFeedPlugin.barIntervalMs, let close = window.closes.last,
           !previous.closes.isEmpty,
           window.closes.count == min(previous.closes.count + 1, MarketStatePlugin.windowCloses) {
            slide.values = slide.state.append(close)
            slide.lastOpenTimeMs = window.lastOpenTimeMs
            slide.closes = window.closes.count
            return slide
        }
        var state = SlidingMarketState(capacity: MarketStatePlugin.windowCloses)
        var values: MarketStateKernel.Values?
        for close in window.closes { values = state.append(close) }
        return Slide(state: state, lastOpenTimeMs: window.lastOpenTimeMs, closes: window.closes.count, values: values)
    }
}
