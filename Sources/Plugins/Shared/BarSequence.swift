import Messages

/// Where a closed 1-minute bar goes in a window of consecutive bars.
///
/// A bar after a hole is held, not computed across the hole and not a reason to start the window
/// again: a publish lost in a server failover is repeated after later bars, so the missing bar is
/// stored behind them (the chaos test saw one stored 21 bars late). Its subject's later bars must
/// be acknowledged for it to be delivered at all, so they are held in the window, not retried.
/// The bar that fills the hole releases the held bars after it. A hole still open after `limit`
/// held bars is real (the exchange has no bar there): the window starts again from the held bars,
/// which loses no more than starting again at once would have.
enum BarSequence: Equatable {
    /// Append these bars, oldest first: the bar, then the held bars it released.
    case append([Kline])
    /// The hole lasted `limit` bars: start the window again with these bars.
    case restart([Kline])
    /// The bar follows a hole; it is now among the held bars.
    case held
    /// The bar that last moved the window, again: a redelivery after the window was saved but
    /// before the outputs went out, so the outputs are made again from the saved window.
    case movedAgain
    /// A bar the window already holds, or holds back.
    case known

    /// `movedBy`: the open time of the bar that last moved the window (0 in a window saved before
    /// holes were held: its newest bar).
    static func place(_ bar: Kline, lastOpenTimeMs: Int64, movedByOpenTimeMs movedBy: Int64, windowIsEmpty: Bool,
                      held: inout [Kline], limit: Int) -> BarSequence {
        let interval = MarketFeedPlugin.barIntervalMs
        if windowIsEmpty { return .append([bar]) }
        if bar.openTimeMs == (movedBy != 0 ? movedBy : lastOpenTimeMs) { return .movedAgain }
        if bar.openTimeMs <= lastOpenTimeMs { return .known }
        if bar.openTimeMs == lastOpenTimeMs + interval {
            held.removeAll { $0.openTimeMs <= bar.openTimeMs }
            return .append([bar] + releaseRun(after: bar.openTimeMs, from: &held))
        }
        guard !held.contains(where: { $0.openTimeMs == bar.openTimeMs }) else { return .known }
        held.insert(bar, at: held.firstIndex { $0.openTimeMs > bar.openTimeMs } ?? held.endIndex)
        guard held.count >= limit else { return .held }
        let first = held.removeFirst()
        return .restart([first] + releaseRun(after: first.openTimeMs, from: &held))
    }

    /// The held bars that follow `openTimeMs` without a hole, taken out of `held`.
    private static func releaseRun(after openTimeMs: Int64, from held: inout [Kline]) -> [Kline] {
        var run: [Kline] = []
        var last = openTimeMs
        while let next = held.first, next.openTimeMs == last + MarketFeedPlugin.barIntervalMs {
            run.append(held.removeFirst())
            last = next.openTimeMs
        }
        return run
    }
}
