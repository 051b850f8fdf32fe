import Bus
import Identity
import Messages
import XCTest

final class PublishConsumeTests: BusTestCase {
    func testPublishDurableConsumeAck() async throws {
        let spec = try ConsumerSpec(plugin: "market-state", input: "klines", filterSubject: "qt.market.kline.*")
        let created = try await bus.ensureConsumer(spec)
        XCTAssertEqual(created, .created)
        let again = try await bus.ensureConsumer(spec)
        XCTAssertEqual(again, .unchanged)

        let cause = Cause(id: "intent-1", traceID: "trace-7")
        var sent: [OutgoingMessage] = []
        for minute in 0..<3 {
            let bar = kline("BTCUSDT", close: "100.\(minute)", at: Int64(minute))
            sent.append(try OutgoingMessage(bar, subject: Subjects.kline("BTCUSDT"), id: "k-\(minute)",
                                            producer: "market-feed@node-a", cause: cause))
        }
        for message in sent {
            let ack = try await bus.publish(message)
            XCTAssertEqual(ack.stream, "QT_MARKET")
            XCTAssertFalse(ack.duplicate)
        }

        let consumer = try bus.consume(Kline.self, spec: spec, producer: "market-state@node-a")
        let deliveries = try await take(3, from: consumer)
        consumer.stop()
        XCTAssertEqual(deliveries.map(\.message.close), ["100.0", "100.1", "100.2"])
        XCTAssertEqual(deliveries.map(\.deliveryCount), [1, 1, 1])
        let first = try XCTUnwrap(deliveries.first)
        XCTAssertEqual(first.message.meta.id, "k-0")
        XCTAssertEqual(first.message.meta.traceID, "trace-7")
        XCTAssertEqual(first.message.meta.causeID, "intent-1")
        XCTAssertEqual(first.message.meta.producer, "market-feed@node-a")
        XCTAssertEqual(first.raw.header("Nats-Msg-Id"), "k-0")
        XCTAssertEqual(first.raw.header("Qt-Type"), "qt.v1.Kline")
        XCTAssertEqual(first.raw.header("Qt-Trace"), "trace-7")
        XCTAssertEqual(first.raw.header("Qt-Cause"), "intent-1")
        XCTAssertEqual(first.raw.header("Qt-Producer"), "market-feed@node-a")
        XCTAssertEqual(first.cause, Cause(id: "k-0", traceID: "trace-7"))

        try await eventually("acks reach the server") {
            let info = try await self.bus.consumerInfo(stream: "QT_MARKET", durable: "market-state__klines")
            return info.numAckPending == 0 && info.numPending == 0 && info.ackFloorStreamSequence == 3
        }
    }

    /// Issue 17: a new durable for intents or plans must not act on old history. Created with
    /// `replayWithinMs`, it starts at messages stored within that window; an update keeps its start.
    func testANewDurableWithAReplayLimitSkipsOlderMessages() async throws {
        _ = try await bus.publish(outgoing(kline("SOLUSDT", close: "150", at: 1), id: "sol-old"))
        try await Task.sleep(nanoseconds: 1_500_000_000)
        _ = try await bus.publish(outgoing(kline("SOLUSDT", close: "151", at: 2), id: "sol-new"))
        var spec = try ConsumerSpec(plugin: "replay", input: "klines", filterSubject: "qt.market.kline.SOLUSDT")
        spec.replayWithinMs = 1_000
        let created = try await bus.ensureConsumer(spec)
        XCTAssertEqual(created, .created)
        spec.ackWaitMs = 20_000
        let updated = try await bus.ensureConsumer(spec)
        XCTAssertEqual(updated, .updated, "JetStream refuses a changed start policy; the update must keep it")

        let consumer = try bus.consume(Kline.self, spec: spec, producer: "replay@test")
        let deliveries = try await take(1, from: consumer)
        consumer.stop()
        XCTAssertEqual(deliveries.map(\.message.meta.id), ["sol-new"])
        let info = try await bus.consumerInfo(stream: "QT_MARKET", durable: spec.durable)
        XCTAssertEqual(info.numPending, 0, "the older message is not waiting behind it")
    }

    func testUnackedMessageIsRedeliveredAfterAckWait() async throws {
        var spec = try ConsumerSpec(plugin: "slow", input: "klines", filterSubject: "qt.market.kline.ETHUSDT")
        spec.ackWaitMs = 1_000
        try await bus.ensureConsumer(spec)
        _ = try await bus.publish(outgoing(kline("ETHUSDT", close: "2000", at: 1), id: "eth-1"))

        let consumer = try bus.consume(Kline.self, spec: spec, producer: "slow@test")
        var iterator = consumer.makeAsyncIterator()
        let first = try await XCTUnwrapAsync(try await iterator.next())
        XCTAssertEqual(first.deliveryCount, 1)
        // Not acked: after AckWait (1 s) the server hands it out again.
        let second = try await XCTUnwrapAsync(try await iterator.next())
        XCTAssertEqual(second.streamSequence, first.streamSequence)
        XCTAssertEqual(second.deliveryCount, 2)
        XCTAssertEqual(second.message.meta.id, "eth-1")
        try second.ack()
        consumer.stop()
    }

    func testNakWithDelayRedeliversWithIncreasedCount() async throws {
        let spec = try ConsumerSpec(plugin: "naker", input: "klines", filterSubject: "qt.market.kline.*")
        try await bus.ensureConsumer(spec)
        _ = try await bus.publish(outgoing(kline("SOLUSDT", close: "150", at: 1), id: "sol-1"))
        let consumer = try bus.consume(Kline.self, spec: spec, producer: "naker@test")
        var iterator = consumer.makeAsyncIterator()
        let first = try await XCTUnwrapAsync(try await iterator.next())
        try first.nak(delayMs: 200)
        let second = try await XCTUnwrapAsync(try await iterator.next())
        XCTAssertEqual(second.deliveryCount, 2)
        try second.term()
        consumer.stop()
    }

    func testDuplicateMessageIDInsideTheWindowIsDropped() async throws {
        let message = try outgoing(kline("BTCUSDT", close: "1", at: 5), id: "same-id")
        let first = try await bus.publish(message)
        let second = try await bus.publish(message)
        XCTAssertFalse(first.duplicate)
        XCTAssertTrue(second.duplicate)
        XCTAssertEqual(second.sequence, first.sequence)
        let batch = try await bus.publishBatch([message, try outgoing(kline("BTCUSDT", close: "2", at: 6), id: "other-id")])
        XCTAssertEqual(batch.map(\.duplicate), [true, false])
        let info = try await bus.streamInfo("QT_MARKET")
        XCTAssertEqual(info.messages, 2)
    }

    func testBatchPublishAcksEveryMessageInOrder() async throws {
        let messages = try (0..<500).map { try outgoing(kline("BNBUSDT", close: "\($0)", at: Int64($0)), id: "b-\($0)") }
        let acks = try await bus.publishBatch(messages)
        XCTAssertEqual(acks.count, 500)
        XCTAssertEqual(acks.map(\.sequence), Array(1...500))
        let info = try await bus.streamInfo("QT_MARKET")
        XCTAssertEqual(info.messages, 500)
    }

    func testPublishingTheWrongTypeOnASubjectIsRefused() throws {
        var state = MarketState()
        state.symbol = "BTCUSDT"
        XCTAssertThrowsError(try OutgoingMessage(state, subject: Subjects.kline("BTCUSDT"), id: "x", producer: "p")) { error in
            XCTAssertEqual(error as? BusError,
                           .wrongType(subject: "qt.market.kline.BTCUSDT", expected: "qt.v1.Kline", actual: "qt.v1.MarketState"))
        }
        XCTAssertThrowsError(try OutgoingMessage(state, subject: "qt.nowhere.BTCUSDT", id: "x", producer: "p")) { error in
            XCTAssertEqual(error as? BusError, .unknownSubject("qt.nowhere.BTCUSDT"))
        }
    }

    func testConsumerOfTheWrongTypeIsRefused() async throws {
        let spec = try ConsumerSpec(plugin: "confused", input: "klines", filterSubject: "qt.market.kline.*")
        XCTAssertThrowsError(try bus.consume(MarketState.self, spec: spec, producer: "p")) { error in
            XCTAssertEqual(error as? BusError,
                           .wrongType(subject: "qt.market.kline.*", expected: "qt.v1.Kline", actual: "qt.v1.MarketState"))
        }
    }

    func testPublishToASubjectNoStreamOwnsIsNamed() async throws {
        let message = OutgoingMessage(unchecked: "nobody.owns.this", typeName: "qt.v1.Kline", id: "n-1", payload: [1, 2])
        do {
            _ = try await bus.publish(message)
            XCTFail("expected noStream")
        } catch let error as BusError {
            XCTAssertEqual(error, .noStream(subject: "nobody.owns.this"))
        }
    }
}

func XCTUnwrapAsync<T>(_ value: T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    try XCTUnwrap(value, file: file, line: line)
}

/// Polls `condition` until it holds or `seconds` pass (for state the server updates a little later).
func eventually(_ what: String, seconds: Double = 5, _ condition: @escaping () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
    XCTFail("not reached within \(seconds) s: \(what)")
}
