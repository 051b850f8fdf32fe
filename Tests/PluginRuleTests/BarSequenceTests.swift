import Messages
@testable import Plugins
import XCTest

/// The placement rules market-state and ai-agent share, bar by bar: holes with more than one
/// missing bar, filled out of order, a second hole behind the first, redeliveries.
final class BarSequenceTests: XCTestCase {
    private let interval = MarketFeedPlugin.barIntervalMs

    private func bar(_ minute: Int64) -> Kline {
        var bar = Kline()
        bar.openTimeMs = minute * interval
        bar.closeTimeMs = bar.openTimeMs + interval - 1
        return bar
    }

    private struct Window {
        var last: Int64 = -1
        var movedBy: Int64 = -1
        var held: [Kline] = []
    }

    /// Places `minute` in `window` and applies the outcome as the plugins do; returns the outcome.
    private func place(_ minute: Int64, in window: inout Window, limit: Int = 10) -> BarSequence {
        let placed = BarSequence.place(bar(minute), lastOpenTimeMs: window.last * interval,
                                       movedByOpenTimeMs: window.movedBy * interval, windowIsEmpty: window.last < 0,
                                       held: &window.held, limit: limit)
        if case .append(let bars) = placed { window.last = bars.last!.openTimeMs / interval; window.movedBy = minute }
        if case .restart(let bars) = placed { window.last = bars.last!.openTimeMs / interval; window.movedBy = minute }
        return placed
    }

    private func minutes(_ bars: [Kline]) -> [Int64] { bars.map { $0.openTimeMs / interval } }

    func testHolesFillInAnyOrderAndReleaseOnlyTheBarsThatFollowWithoutAHole() {
        var window = Window()
        XCTAssertEqual(place(1, in: &window), .append([bar(1)]))
        XCTAssertEqual(place(2, in: &window), .append([bar(2)]))
        // Minutes 3, 4 and 7 missing.
        for minute: Int64 in [5, 6, 8, 9] { XCTAssertEqual(place(minute, in: &window), .held, "minute \(minute)") }
        XCTAssertEqual(place(6, in: &window), .known, "a held bar again")
        XCTAssertEqual(minutes(window.held), [5, 6, 8, 9])
        XCTAssertEqual(place(4, in: &window), .held, "4 does not follow 2 either")
        XCTAssertEqual(place(3, in: &window), .append([3, 4, 5, 6].map(bar)), "3 releases 4 to 6; 7 is still missing")
        XCTAssertEqual(minutes(window.held), [8, 9])
        XCTAssertEqual(place(3, in: &window), .movedAgain, "the bar that moved the window, again")
        XCTAssertEqual(place(5, in: &window), .known)
        XCTAssertEqual(place(7, in: &window), .append([7, 8, 9].map(bar)))
        XCTAssertEqual(window.held, [])
        XCTAssertEqual(window.last, 9)
        XCTAssertEqual(place(10, in: &window), .append([bar(10)]))
    }

    func testAHoleStillOpenAtTheLimitStartsAgainFromTheFirstRunOfHeldBars() {
        var window = Window()
        _ = place(1, in: &window)
        // Minute 2 never comes; 3 to 5, then a second hole at 6, then 7 and 8.
        for minute: Int64 in [3, 4, 5, 7] { XCTAssertEqual(place(minute, in: &window, limit: 5), .held) }
        XCTAssertEqual(place(8, in: &window, limit: 5), .restart([3, 4, 5].map(bar)), "the fifth held bar")
        XCTAssertEqual(window.last, 5)
        XCTAssertEqual(minutes(window.held), [7, 8], "held behind the second hole")
        XCTAssertEqual(place(8, in: &window, limit: 5), .movedAgain)
        XCTAssertEqual(place(2, in: &window, limit: 5), .known, "the missing bar after the restart is older than the window")
        XCTAssertEqual(place(6, in: &window, limit: 5), .append([6, 7, 8].map(bar)))
    }

    func testAWindowSavedBeforeHoldingTreatsItsNewestBarAsTheOneThatMovedIt() {
        var held: [Kline] = []
        let placed = BarSequence.place(bar(5), lastOpenTimeMs: 5 * interval, movedByOpenTimeMs: 0, windowIsEmpty: false,
                                       held: &held, limit: 10)
        XCTAssertEqual(placed, .movedAgain)
    }
}
