import Bus
import Messages
import XCTest

/// Issue 20: what a trade costs is counted where the round trips happen, in the Bus handles a
/// counter was given to, and nowhere else.
final class BusOperationCountTests: BusTestCase {
    func testKeyValueHandlesCountTheirReadsAndWrites() async throws {
        let counter = BusOperationCounter()
        let ledger = try await bus.keyValue("qt_ledger", countingIn: counter)
        var entry = LedgerEntry()
        entry.symbol = "BTCUSDT"
        entry.positionAmt = "0.01"
        let revision = try await ledger.create("BTCUSDT", message: entry)
        entry.positionAmt = "0.02"
        try await ledger.update("BTCUSDT", message: entry, expectedRevision: revision)
        _ = try await ledger.get(LedgerEntry.self, "BTCUSDT")
        _ = try await ledger.get("ETHUSDT")
        _ = try await ledger.keys()
        try await ledger.delete("BTCUSDT")
        XCTAssertEqual(counter.count(.kvWrite), 3, "create, update, delete")
        XCTAssertEqual(counter.count(.kvRead), 3, "two gets (one missing) and keys")

        let uncounted = try await bus.keyValue("qt_ledger")
        _ = try await uncounted.get("BTCUSDT")
        XCTAssertEqual(counter.count(.kvRead), 3, "another handle counts elsewhere")
    }

    func testABatchPublishIsOneRoundTripAndAFetchThatBringsMessagesIsOne() async throws {
        let counter = BusOperationCounter()
        let bars = try (0..<5).map { try outgoing(kline("SOLUSDT", close: "150.\($0)", at: Int64($0)), id: "count-\($0)") }
        _ = try await bus.publishBatch(bars, countingIn: counter)
        XCTAssertEqual(counter.count(.publish), 1, "five messages sent together, their acks awaited together")
        _ = try await bus.publish(try outgoing(kline("SOLUSDT", close: "151", at: 9), id: "count-9"), countingIn: counter)
        XCTAssertEqual(counter.count(.publish), 2)

        var spec = try ConsumerSpec(plugin: "counting", input: "klines", filterSubject: "qt.market.kline.SOLUSDT")
        spec.fetchBatch = 10
        _ = try await bus.ensureConsumer(spec)
        let consumer = try bus.consume(Kline.self, spec: spec, producer: "counting@bus-tests", countingIn: counter)
        // The request stays open: the six arrive one after another and are handed out as they come.
        var received: [Delivery<Kline>] = []
        while received.count < 6 { received += try await consumer.nextBatch() }
        consumer.stop()
        XCTAssertEqual(received.map(\.streamSequence), received.map(\.streamSequence).sorted())
        XCTAssertEqual(received.count, 6)
        XCTAssertEqual(counter.count(.fetch), 1, "one pull request brought all six")
        XCTAssertEqual(counter.roundTrips, 3)
    }
}
