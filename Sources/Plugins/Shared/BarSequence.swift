/// Where a closed 1-minute bar goes in a window of consecutive bars.
enum BarSequence: Equatable {
    /// The next bar (or the first): append it.
    case next
    /// A gap: start the window again rather than compute across missing minutes.
    case afterGap
    /// The newest bar again: a redelivery after the window was saved but before the outputs went
    /// out, so the outputs are made again from the saved window.
    case newestAgain
    /// An older bar: the window already holds it.
    case older

    static func place(openTimeMs: Int64, after lastOpenTimeMs: Int64, windowIsEmpty: Bool) -> BarSequence {
        if windowIsEmpty || openTimeMs == lastOpenTimeMs + MarketFeedPlugin.barIntervalMs { return .next }
        if openTimeMs > lastOpenTimeMs + MarketFeedPlugin.barIntervalMs { return .afterGap }
        return openTimeMs == lastOpenTimeMs ? .newestAgain : .older
    }
}
