import Bus
import Exchange
import Foundation
import Host
import Messages
import Plugins
import XCTest

final class SentinelTests: ExecutionTestCase {
    func testAlertsOnceWhenAConditionBeginsAndReducesOnTheMarginTrigger() async throws {
        let symbols = Array(simulator.exchange.symbols[20..<23])
        for symbol in symbols { try await openPosition(symbol, long: true) }
        try await freshAccount(marginRatio: 0.7)
        _ = try await startPipeline(["sentinel": ["interval_s": "0.3", "max_positions": "2"]], host: "watch")

        let overLimit = try await readAll(Alert.self, subject: Subjects.alert(.maxPositions), expected: 1)
        XCTAssertEqual(overLimit.first?.details["open"], "3")
        let margin = try await readAll(Alert.self, subject: Subjects.alert(.marginRatio), expected: 1)
        XCTAssertEqual(margin.first?.severity, .critical)
        try await waitUntil("the sentinel sets REDUCING", seconds: 10) {
            try await bus.keyValue("qt_control").get(Control.self, "trading_state")?.value.tradingState == .reducing
        }
        let control = try await bus.keyValue("qt_control").get(Control.self, "trading_state")?.value
        XCTAssertTrue(control?.setBy.hasPrefix("sentinel@") == true, control?.setBy ?? "")

        // While the conditions last, no repeat; once one clears and comes back, a new alert.
        try await Task.sleep(nanoseconds: 1_500_000_000)
        check(try await count(Subjects.alert(.maxPositions)), 1)
        try await bus.keyValue("qt_ledger").delete(symbols[0])
        try await Task.sleep(nanoseconds: 1_000_000_000)
        try await openPosition(symbols[0], long: false)
        let again = try await readAll(Alert.self, subject: Subjects.alert(.maxPositions), expected: 2)
        XCTAssertEqual(again.count, 2)
    }
}
