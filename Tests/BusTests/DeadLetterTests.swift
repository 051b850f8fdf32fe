import Bus
import Identity
import Messages
import SwiftProtobuf
import XCTest

final class DeadLetterTests: BusTestCase {
    private func deadLetters(_ consumer: String, count: Int) async throws -> [DeadLetter] {
        let spec = try ConsumerSpec(plugin: "dlq-reader", input: consumer, filterSubject: Subjects.deadLetter(consumer: consumer))
        try await bus.ensureConsumer(spec)
        let reader = try bus.consume(DeadLetter.self, spec: spec, producer: "dlq-reader@test")
        defer { reader.stop() }
        return try await take(count, from: reader).map(\.message)
    }

    func testGarbageAndWrongTypePayloadsLandInTheDeadLetterStream() async throws {
        let spec = try ConsumerSpec(plugin: "market-state", input: "klines", filterSubject: "qt.market.kline.*")
        try await bus.ensureConsumer(spec)

        // 1. bytes that are no protobuf at all, labelled as a Kline
        let garbage: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x42]
        _ = try await bus.publish(OutgoingMessage(unchecked: "qt.market.kline.BTCUSDT", typeName: "qt.v1.Kline",
                                                  id: "garbage-1", payload: garbage))
        // 2. a well-formed message of another type on the kline subject
        var state = MarketState()
        state.symbol = "BTCUSDT"
        state.sigma = 0.01
        _ = try await bus.publish(OutgoingMessage(unchecked: "qt.market.kline.BTCUSDT", typeName: "qt.v1.MarketState",
                                                  id: "wrong-type-1", payload: try state.serializedBytes()))
        // 3. a valid kline after them: the only thing the handler may see
        _ = try await bus.publish(outgoing(kline("BTCUSDT", close: "101", at: 3), id: "good-1"))

        let consumer = try bus.consume(Kline.self, spec: spec, producer: "market-state@node-a")
        let delivered = try await take(1, from: consumer)
        XCTAssertEqual(delivered.map(\.message.meta.id), ["good-1"])
        XCTAssertEqual(consumer.deadLettered, 2)
        consumer.stop()

        let letters = try await deadLetters("market-state__klines", count: 2)
        XCTAssertEqual(letters.count, 2)
        let garbageLetter = try XCTUnwrap(letters.first { $0.originalType == "qt.v1.Kline" })
        XCTAssertEqual(Array(garbageLetter.payload), garbage)
        XCTAssertEqual(garbageLetter.originalSubject, "qt.market.kline.BTCUSDT")
        XCTAssertEqual(garbageLetter.expectedType, "qt.v1.Kline")
        XCTAssertEqual(garbageLetter.consumer, "market-state__klines")
        XCTAssertEqual(garbageLetter.stream, "QT_MARKET")
        XCTAssertTrue(garbageLetter.error.contains("does not decode as qt.v1.Kline"), garbageLetter.error)
        XCTAssertEqual(garbageLetter.headers["Nats-Msg-Id"], "garbage-1")
        XCTAssertEqual(garbageLetter.meta.causeID, "garbage-1")

        let wrongType = try XCTUnwrap(letters.first { $0.originalType == "qt.v1.MarketState" })
        XCTAssertTrue(wrongType.error.contains("Qt-Type is qt.v1.MarketState"), wrongType.error)
        XCTAssertEqual(try MarketState(serializedBytes: Array(wrongType.payload)).symbol, "BTCUSDT")

        // Terminated, not pending: nothing comes back to the consumer.
        try await eventually("terminated messages are no longer pending") {
            let info = try await self.bus.consumerInfo(stream: "QT_MARKET", durable: "market-state__klines")
            return info.numAckPending == 0 && info.numPending == 0
        }
        let alerts = try await bus.streamInfo("QT_AUDIT")
        XCTAssertEqual(alerts.messages, 2, "one alert per dead letter")
    }

    /// A payload near the server's 1 MB limit: the dead letter keeps 64 KiB of it, its size and
    /// its SHA-256, so it fits and the message is terminated instead of retried forever.
    func testAnOversizedPayloadIsDeadLetteredTruncatedWithItsSizeAndHash() async throws {
        let spec = try ConsumerSpec(plugin: "market-state", input: "klines", filterSubject: "qt.market.kline.*")
        try await bus.ensureConsumer(spec)
        let huge = (0..<(900 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 0xff) }
        _ = try await bus.publish(OutgoingMessage(unchecked: "qt.market.kline.BTCUSDT", typeName: "qt.v1.Kline", id: "huge-1", payload: huge))
        _ = try await bus.publish(outgoing(kline("BTCUSDT", close: "101", at: 3), id: "good-1"))

        let consumer = try bus.consume(Kline.self, spec: spec, producer: "market-state@node-a")
        let delivered = try await take(1, from: consumer)
        XCTAssertEqual(delivered.map(\.message.meta.id), ["good-1"])
        consumer.stop()

        let letters = try await deadLetters("market-state__klines", count: 1)
        let letter = try XCTUnwrap(letters.first)
        XCTAssertEqual(letter.payload.count, DeadLetterLimits.payloadBytes)
        XCTAssertEqual(Array(letter.payload), Array(huge.prefix(DeadLetterLimits.payloadBytes)))
        XCTAssertEqual(letter.payloadSize, UInt64(huge.count))
        XCTAssertTrue(letter.payloadTruncated)
        XCTAssertEqual(letter.payloadSha256, ContentID.sha256Hex(bytes: huge))
        XCTAssertEqual(letter.payloadSha256.count, 64)
    }

    func testUnknownEnumValueIsDeadLetteredNeverDefaulted() async throws {
        let spec = try ConsumerSpec(plugin: "apply-layer", input: "calibrated", filterSubject: "qt.harvest.calibrated.*")
        try await bus.ensureConsumer(spec)

        // A newer or foreign producer's action value 42: the old system turned it into UPDATE_SL (R2).
        var calibrated = CalibratedProposal()
        calibrated.proposal.symbol = "ETHUSDT"
        calibrated.proposal.action = .fullClose
        calibrated.calibratedAction = HarvestAction(rawValue: 42)!
        calibrated.mode = .enforce
        calibrated.bucket = .hot
        _ = try await bus.publish(OutgoingMessage(calibrated, subject: Subjects.harvestCalibrated("ETHUSDT"),
                                                  id: "cal-42", producer: "heat-gate@node-b"))

        let consumer = try bus.consume(CalibratedProposal.self, spec: spec, producer: "apply-layer@node-a")
        var iterator = consumer.makeAsyncIterator()
        let fetchTask = Task { try await iterator.next() }
        let letters = try await deadLetters("apply-layer__calibrated", count: 1)
        consumer.stop()
        let handed = try await fetchTask.value
        XCTAssertNil(handed, "the handler never sees a message with an unknown enum value")
        let letter = try XCTUnwrap(letters.first)
        XCTAssertTrue(letter.error.contains("value 42 is not a member of enum HarvestAction"), letter.error)
    }
}
