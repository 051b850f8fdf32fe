import Host
import Messages
@testable import Plugins
import XCTest

/// The sentinel's pure findings.
final class SentinelRuleTests: XCTestCase {
    /// The ledger and order buckets refuse writes at their byte limit (never discard): the
    /// sentinel raises a CRITICAL alert from 80 % on, and nothing below it or without a limit.
    func testABucketAtEightyPercentOfItsLimitRaisesACriticalAlert() throws {
        let findings = SentinelPlugin.storageFindings([
            .init(stream: "KV_qt_ledger", bytes: 799, maxBytes: 1_000),
            .init(stream: "KV_qt_orders", bytes: 800, maxBytes: 1_000),
            .init(stream: "KV_qt_other", bytes: 5_000, maxBytes: -1),
        ])
        XCTAssertEqual(findings.map(\.key), ["storage:KV_qt_orders"])
        let alert = try XCTUnwrap(findings.first?.alert)
        XCTAssertEqual(alert.kind, .limit)
        XCTAssertEqual(alert.severity, .critical)
        XCTAssertTrue(alert.message.contains("80 %"), alert.message)
    }

    func testEntrySlotsThatDoNotReadAreNamed() {
        XCTAssertNil(EntrySlots.problem(["BTCUSDT": "1800000000000"]))
        XCTAssertEqual(EntrySlots.problem(["BTCUSDT": "soon"]),
                       "slot \"BTCUSDT\" holds \"soon\", expected a symbol and a permit expiry in epoch milliseconds")
        XCTAssertNotNil(EntrySlots.problem(["BTC USDT": "1"]))
        XCTAssertNotNil(EntrySlots.problem(["BTCUSDT": "-5"]))
    }
}
