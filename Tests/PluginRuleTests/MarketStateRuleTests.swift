import Foundation
import Host
import Messages
@testable import Plugins
import XCTest

/// market-state on the in-memory host: a bar that does not follow the window's last one is
/// retried (a bar delivered earlier and not acknowledged comes back within AckWait, after fresh
/// ones, when its host dies or a server fails over); only a gap still there after the retries
/// starts the window again (the chaos test once saw a window restart from such a reordering).
final class MarketStateRuleTests: RuleTestCase {
    let symbol = "AAAUSDT"
    let startMs: Int64 = 1_800_000_000_000

    private func bar(_ minute: Int64, close: Double) -> Kline {
        var bar = Kline()
        bar.symbol = symbol
        bar.openTimeMs = startMs + minute * MarketFeedPlugin.barIntervalMs
        bar.closeTimeMs = bar.openTimeMs + MarketFeedPlugin.barIntervalMs - 1
        bar.open = String(close)
        bar.high = String(close)
        bar.low = String(close)
        bar.close = String(close)
        bar.volume = "1"
        bar.meta.eventTimeMs = bar.closeTimeMs
        return bar
    }

    private func window() async throws -> CloseWindow {
        let stored = try await host.kv("qt_state").get(PluginState.self, "\(MarketStatePlugin.name).window-\(symbol)")
        return try CloseWindow(serializedBytes: try XCTUnwrap(stored?.value).payload)
    }

    func testAGapIsRetriedUntilAnEarlierBarCouldHaveComeBackThenStartsTheWindowAgain() async throws {
        try await host.start(MarketStatePlugin.registration)
        for minute in 0..<10 { try await send(bar(Int64(minute), close: 100 + Double(minute)), on: Subjects.kline(symbol)) }
        let before = try await window()
        XCTAssertEqual(before.closes.count, 10)

        // Minutes 10 and 11 missing; minute 12 arrives, then minute 13 behind it on the same subject.
        try await send(bar(12, close: 112), on: Subjects.kline(symbol))
        try await send(bar(13, close: 113), on: Subjects.kline(symbol))
        var retried = 0
        for _ in 0..<Int(MarketStatePlugin.gapPatienceDeliveries) - 2 {
            await host.advance(byMs: 30_000)
            let now = try await window()
            XCTAssertEqual(now, before, "the window waits while the gap may still close")
            retried = await host.retries[MarketStatePlugin.name] ?? 0
        }
        XCTAssertEqual(retried, Int(MarketStatePlugin.gapPatienceDeliveries) - 1, "deliveries 1 to 6 of minute 12 were retried")
        let waiting = await host.pending
        XCTAssertEqual(waiting, 2, "minute 12 and minute 13 behind it")

        // Past the patience, the gap is real: the window starts again at minute 12, then 13 follows.
        await host.advance(byMs: 30_000)
        let after = try await window()
        XCTAssertEqual(after.closes, [112, 113])
        XCTAssertEqual(after.lastOpenTimeMs, startMs + 13 * MarketFeedPlugin.barIntervalMs)
        let retries = await host.retries[MarketStatePlugin.name] ?? 0
        XCTAssertEqual(retries, Int(MarketStatePlugin.gapPatienceDeliveries) - 1, "the 7th delivery was handled")
        let deadLetters = await host.deadLetters
        XCTAssertTrue(deadLetters.isEmpty, "\(deadLetters)")
    }
}
