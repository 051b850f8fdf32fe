import Foundation
import Host
import Messages
@testable import Plugins
import XCTest

/// market-state on the in-memory host: a bar after a hole is held in the window, acknowledged, and
/// the window waits for the missing bar however late it is stored (the chaos test saw one stored
/// 21 bars late, after its publish failed in a server failover and was repeated); the bar that
/// fills the hole releases the held ones. A hole that lasts 257 bars starts the window again.
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

    private func send(minutes: [Int64]) async throws {
        for minute in minutes { try await send(bar(minute, close: 100 + Double(minute)), on: Subjects.kline(symbol)) }
    }

    private func states() async -> [MarketState] { await host.messages(MarketState.self, on: "qt.market.state.*") }

    func testABarStoredLateFillsItsHoleAndReleasesTheBarsHeldBehindIt() async throws {
        try await host.start(MarketStatePlugin.registration)
        try await send(minutes: Array(0..<260))
        let warm = await states()
        XCTAssertEqual(warm.count, 4, "minutes 256 to 259 have 257 closes or more")

        // Minutes 260 and 261 missing; 262 and 263 arrive first and are held, acknowledged, not retried.
        try await send(minutes: [262, 263])
        var window = try await self.window()
        XCTAssertEqual(window.closes.count, 260)
        XCTAssertEqual(window.held.map(\.openTimeMs), [262, 263].map { startMs + $0 * MarketFeedPlugin.barIntervalMs })
        let whileHeld = await states()
        XCTAssertEqual(whileHeld.count, 4, "no state is computed across the hole")
        let retries = await host.retries[MarketStatePlugin.name] ?? 0
        let pending = await host.pending
        XCTAssertEqual(retries, 0)
        XCTAssertEqual(pending, 0, "held bars are acknowledged: the missing one behind them can be delivered")

        // 260 comes: it follows the window, 261 is still missing. Then 261 releases 262 and 263.
        try await send(minutes: [260])
        window = try await self.window()
        XCTAssertEqual(window.closes.count, 261)
        XCTAssertEqual(window.held.count, 2)
        try await send(minutes: [261])
        window = try await self.window()
        XCTAssertEqual(window.closes, (0..<264).map { 100 + Double($0) })
        XCTAssertEqual(window.held, [])
        XCTAssertEqual(window.lastOpenTimeMs, startMs + 263 * MarketFeedPlugin.barIntervalMs)

        let caughtUp = await states()
        XCTAssertEqual(caughtUp.count, 6, "one state for 260, one for 261 with the bars it released")
        XCTAssertEqual(caughtUp.last?.barsUsed, 264)
        XCTAssertEqual(caughtUp.last?.asOfMs, startMs + 264 * MarketFeedPlugin.barIntervalMs - 1, "as of the newest bar, 263")
        XCTAssertEqual(caughtUp.map(\.barsUsed), caughtUp.map(\.barsUsed).sorted(), "the window never restarted")

        // Bars the window already holds, delivered again, change nothing and publish nothing.
        try await send(minutes: [262, 255])
        let after = try await self.window()
        XCTAssertEqual(after, window)
        let finally = await states()
        XCTAssertEqual(finally.count, 6)
        let deadLetters = await host.deadLetters
        XCTAssertTrue(deadLetters.isEmpty, "\(deadLetters)")
    }

    func testAHoleThatLasts257BarsStartsTheWindowAgainFromTheHeldBars() async throws {
        try await host.start(MarketStatePlugin.registration)
        try await send(minutes: Array(0..<10))
        // Minute 10 never comes: 256 bars after it are held, the 257th starts the window again with all of them.
        try await send(minutes: Array(11..<267))
        var window = try await self.window()
        XCTAssertEqual(window.closes.count, 10)
        XCTAssertEqual(window.held.count, 256)
        try await send(minutes: [267])
        window = try await self.window()
        XCTAssertEqual(window.closes, (11..<268).map { 100 + Double($0) })
        XCTAssertEqual(window.held, [])
        let states = await states()
        XCTAssertEqual(states.map(\.barsUsed), [257], "257 closes after the hole: a state at once")

        // The missing bar stored after all that is older than the window: skipped.
        try await send(minutes: [10])
        let after = try await self.window()
        XCTAssertEqual(after, window)
    }
}
