import Messages
import XCTest

/// The symbol → partition function is fixed and documented (DESIGN.md §3.3): FNV-1a 32 of the
/// symbol, modulo P. Changing it would silently move every symbol to another owner.
final class PartitioningTests: XCTestCase {
    func testFNV1aMatchesTheReferenceValues() {
        // Published FNV-1a 32 test values (the empty string is the offset basis).
        XCTAssertEqual(Partitioning.fnv1a32(""), 0x811C_9DC5)
        XCTAssertEqual(Partitioning.fnv1a32("a"), 0xE40C_292C)
        XCTAssertEqual(Partitioning.fnv1a32("foobar"), 0xBF9C_F968)
    }

    func testASymbolAlwaysLandsInTheSamePartition() throws {
        let eight = try Partitioning(count: 8)
        XCTAssertEqual(eight.partition(of: "BTCUSDT"), Int(Partitioning.fnv1a32("BTCUSDT") % 8))
        XCTAssertEqual(eight.partition(of: "BTCUSDT"), try Partitioning(count: 8).partition(of: "BTCUSDT"))
        XCTAssertEqual(try Partitioning(count: 1).partition(of: "ETHUSDT"), 0)
        XCTAssertThrowsError(try Partitioning(count: 0))
        XCTAssertThrowsError(try Partitioning(count: Partitioning.maximumCount + 1))
    }

    func testSymbolsSpreadOverEveryPartition() throws {
        let eight = try Partitioning(count: 8)
        let symbols = (0..<566).map { "ALT\($0)USDT" }
        let sizes = Dictionary(grouping: symbols, by: eight.partition(of:)).mapValues(\.count)
        XCTAssertEqual(Set(sizes.keys), Set(0..<8))
        XCTAssertLessThan(sizes.values.max()! - sizes.values.min()!, 40, "566 symbols spread within ±20 of 71 each: \(sizes)")
    }

    func testKeyedSubjectsCarryTheirPartitionOnTheWire() throws {
        let eight = try Partitioning(count: 8)
        let partition = eight.partition(of: "BTCUSDT")
        XCTAssertEqual(eight.wireSubject("qt.market.kline.BTCUSDT"), "qt.market.kline.BTCUSDT.p\(partition)")
        XCTAssertEqual(eight.wireSubject("qt.shadow.qt.plan.sized.BTCUSDT"), "qt.shadow.qt.plan.sized.BTCUSDT.p\(partition)")
        // Not keyed: audit, alerts and dead letters travel as they are.
        XCTAssertEqual(eight.wireSubject("qt.decision.governor.BTCUSDT"), "qt.decision.governor.BTCUSDT")
        XCTAssertEqual(eight.wireSubject("qt.alert.dead_letter"), "qt.alert.dead_letter")
        XCTAssertEqual(Partitioning.logicalSubject("qt.market.kline.BTCUSDT.p\(partition)"), "qt.market.kline.BTCUSDT")
        XCTAssertEqual(Partitioning.partition(ofWireSubject: "qt.market.kline.BTCUSDT.p\(partition)"), partition)
        XCTAssertEqual(Partitioning.logicalSubject("qt.decision.governor.BTCUSDT"), "qt.decision.governor.BTCUSDT")
        XCTAssertNil(Partitioning.partition(ofWireSubject: "qt.decision.governor.BTCUSDT"))
    }

    func testFiltersByPartitionBySymbolAndForEverything() {
        XCTAssertEqual(Partitioning.wireFilter("qt.market.kline.*", partition: 3), "qt.market.kline.*.p3")
        XCTAssertEqual(Partitioning.wireFilter("qt.market.kline.*"), "qt.market.kline.*.*")
        XCTAssertEqual(Partitioning.wireFilter("qt.market.kline.BTCUSDT"), "qt.market.kline.BTCUSDT.*")
        XCTAssertEqual(Partitioning.wireFilter("qt.market.>"), "qt.market.>")
        XCTAssertEqual(Partitioning.wireFilter("qt.decision.*.*"), "qt.decision.*.*")
        XCTAssertEqual(Partitioning.wireFilter("qt.shadow.qt.plan.sized.*", partition: 0), "qt.shadow.qt.plan.sized.*.p0")
    }
}
