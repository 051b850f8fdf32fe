import Foundation
import Messages
@testable import Plugins
import XCTest

/// `LedgerReading.update`: a reading kept up to date entry by entry, by revision or by the keys the
/// view's journal names, must equal one built from the same view at once, whatever happened in
/// between (opened, resized, closed, claimed, deleted, unreadable, gone after a reload).
final class LedgerReadingTests: XCTestCase {
    typealias Held = BucketView<LedgerEntry>.Held

    func entry(_ amount: String, price: String = "100", claim: String = "") -> LedgerEntry {
        var entry = LedgerEntry()
        entry.positionAmt = amount
        entry.entryPrice = price
        entry.pendingClientOrderID = claim
        return entry
    }

    func assertSame(_ kept: LedgerReading, _ values: [String: Held], _ step: String, file: StaticString = #filePath, line: UInt = #line) {
        var fresh = LedgerReading()
        fresh.update(from: values)
        XCTAssertEqual(kept.openNotional, fresh.openNotional, "\(step): open notional", file: file, line: line)
        XCTAssertEqual(Set(kept.open.keys), Set(fresh.open.keys), "\(step): open", file: file, line: line)
        XCTAssertEqual(kept.claimed, fresh.claimed, "\(step): claimed", file: file, line: line)
        XCTAssertEqual(kept.unreadable, fresh.unreadable, "\(step): unreadable", file: file, line: line)
        XCTAssertEqual(kept.occupied, fresh.occupied, "\(step): occupied", file: file, line: line)
    }

    func testAReadingKeptUpToDateEqualsOneBuiltAtOnce() {
        var kept = LedgerReading()
        var journaled = LedgerReading()
        func step(_ values: [String: Held], changed: [String], _ name: String, line: UInt = #line) {
            kept.update(from: values)
            journaled.update(from: values, changed: changed)
            assertSame(kept, values, name, line: line)
            assertSame(journaled, values, name + " (journal)", line: line)
        }
        var values: [String: Held] = ["AAAUSDT": .value(entry("2", price: "10"), revision: 1),
                                      "BBBUSDT": .value(entry("-3", price: "5"), revision: 2),
                                      "CCCUSDT": .value(entry("0"), revision: 3)]
        step(values, changed: Array(values.keys), "first read")
        XCTAssertEqual(kept.openNotional, 35, "|2| × 10 + |−3| × 5; a flat entry counts nothing")
        XCTAssertEqual(kept.occupied, ["AAAUSDT", "BBBUSDT"])

        values["AAAUSDT"] = .value(entry("4", price: "10"), revision: 4)
        values["CCCUSDT"] = .value(entry("0", claim: "qt-1"), revision: 5)
        step(values, changed: ["AAAUSDT", "CCCUSDT", "AAAUSDT"], "resized and claimed")
        XCTAssertEqual(kept.openNotional, 55, "AAA resized to 4")
        XCTAssertEqual(kept.claimed, ["CCCUSDT"])
        XCTAssertTrue(kept.occupied.contains("CCCUSDT"), "a claim occupies its symbol")

        values["BBBUSDT"] = .value(entry("0"), revision: 6)
        values["CCCUSDT"] = .value(entry("1", price: "7"), revision: 7)
        values["DDDUSDT"] = .value(entry("x1"), revision: 8)
        values["EEEUSDT"] = .unreadable("not a LedgerEntry", revision: 9)
        step(values, changed: ["BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"], "closed, filled, unreadable")
        XCTAssertEqual(kept.openNotional, 47, "BBB closed, CCC filled at 7")
        XCTAssertEqual(Set(kept.unreadable.keys), ["DDDUSDT", "EEEUSDT"], "a field that does not parse and a value that does not decode")
        XCTAssertEqual(kept.claimed, [], "CCC's claim was cleared by its settle")

        values["AAAUSDT"] = .deleted(revision: 10)
        values["EEEUSDT"] = nil
        step(values, changed: ["AAAUSDT", "EEEUSDT"], "deleted and gone")
        XCTAssertEqual(kept.openNotional, 7, "AAA deleted")
        XCTAssertEqual(Set(kept.unreadable.keys), ["DDDUSDT"], "EEE gone from the view after a reload")
        step(values, changed: [], "the same values again")
        XCTAssertEqual(journaled.openNotional, 7)
    }
}
