import Bus
import Foundation
import Messages
import XCTest

/// Issue 20: a consumer's pull request stays open while its messages are handled. What the open
/// request brings after a stop must go back at once (clean hand-off) or be left for the new owner
/// (lost partition), and a request that expired is followed by the next.
final class StandingPullTests: BusTestCase {
    private func publishBars(_ symbol: String, _ minutes: Range<Int>) async throws {
        for minute in minutes {
            _ = try await bus.publish(outgoing(kline(symbol, close: "10.\(minute)", at: Int64(minute)), id: "\(symbol)-\(minute)"))
        }
    }

    /// A consumer whose pull request (open 1 s) brought one bar, handled and acked: the request is
    /// still open when the test goes on.
    private func consumerWithOneBarHandled(_ plugin: String, symbol: String, ackWaitMs: Int64) async throws -> (ConsumerSpec, Consumer<Kline>) {
        var spec = try ConsumerSpec(plugin: plugin, input: "klines", filterSubject: "qt.market.kline.\(symbol)")
        spec.ackWaitMs = ackWaitMs
        spec.fetchTimeoutMs = 1_000
        try await bus.ensureConsumer(spec)
        let consumer = try bus.consume(Kline.self, spec: spec, producer: "\(plugin)@a")
        try await publishBars(symbol, 0..<1)
        let handled = try await take(1, from: consumer)
        try XCTUnwrap(handled.first).ack()
        return (spec, consumer)
    }

    func testMessagesStoredAfterARequestExpiredStillArriveOnOneRequestEach() async throws {
        let counter = BusOperationCounter()
        var spec = try ConsumerSpec(plugin: "patient", input: "klines", filterSubject: "qt.market.kline.ADAUSDT")
        spec.fetchTimeoutMs = 200
        try await bus.ensureConsumer(spec)
        let consumer = try bus.consume(Kline.self, spec: spec, producer: "patient@test", countingIn: counter)
        let bars = try (0..<2).map { try outgoing(kline("ADAUSDT", close: "10.\($0)", at: Int64($0)), id: "ADAUSDT-\($0)") }
        let publisher = Task { [bus] in
            // Several requests expire unanswered before each bar is stored: none of them counts.
            for bar in bars {
                try await Task.sleep(nanoseconds: 600_000_000)
                _ = try await bus!.publish(bar)
            }
        }
        let received = try await take(2, from: consumer)
        try await publisher.value
        for delivery in received { try delivery.ack() }
        consumer.stop()
        XCTAssertEqual(received.map(\.message.close), ["10.0", "10.1"])
        XCTAssertEqual(counter.count(.fetch), 2, "each bar came on a request of its own, the expired empty ones are not counted")
    }

    func testAStoppedConsumerNaksWhatItsOpenRequestBringsSoTheNextOwnerGetsItAtOnce() async throws {
        let (spec, first) = try await consumerWithOneBarHandled("handing-over", symbol: "XRPUSDT", ackWaitMs: 30_000)
        // The request is still open (1 s): these three arrive after the stop, on this host.
        first.stopFetching()
        try await publishBars("XRPUSDT", 1..<4)
        let started = Date()
        await first.nakLeftovers()
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the hand-off waits for the open request's end, not AckWait")

        let other = try BusConnection(options(for: server))
        defer { other.close() }
        let second = try other.consume(Kline.self, spec: spec, producer: "handing-over@b")
        let redelivered = try await take(3, from: second, seconds: 5)
        second.stop()
        XCTAssertEqual(redelivered.map(\.message.close), ["10.1", "10.2", "10.3"], "NAKed back at once, in stream order, long before AckWait")
        XCTAssertEqual(redelivered.map(\.deliveryCount), [2, 2, 2])
    }

    func testAnAbandonedConsumerLeavesWhatItsOpenRequestBringsUnacked() async throws {
        let (spec, first) = try await consumerWithOneBarHandled("abandoning", symbol: "DOTUSDT", ackWaitMs: 2_000)
        first.abandon()
        try await publishBars("DOTUSDT", 1..<3)
        try await eventually("the open request delivered both to the abandoned consumer") {
            try await self.bus.consumerInfo(stream: "QT_MARKET", durable: "abandoning__klines").numAckPending == 2
        }
        let other = try BusConnection(options(for: server))
        defer { other.close() }
        let second = try other.consume(Kline.self, spec: spec, producer: "abandoning@b")
        let started = Date()
        let redelivered = try await take(2, from: second, seconds: 10)
        second.stop()
        XCTAssertEqual(redelivered.map(\.message.close), ["10.1", "10.2"])
        XCTAssertEqual(redelivered.map(\.deliveryCount), [2, 2], "neither acked nor NAKed: back after AckWait")
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.5)
    }

    func testAWidenedFirstFetchHandsOverWhatIsStoredInOneBatch() async throws {
        var spec = try ConsumerSpec(plugin: "taking-over", input: "klines", filterSubject: "qt.market.kline.LTCUSDT")
        spec.fetchBatch = 4
        try await bus.ensureConsumer(spec)
        try await publishBars("LTCUSDT", 0..<10)
        let consumer = try bus.consume(Kline.self, spec: spec, producer: "taking-over@test")
        consumer.widenFirstFetch(to: 16)
        let batch = try await consumer.nextBatch()
        XCTAssertEqual(batch.map(\.message.close), (0..<10).map { "10.\($0)" }, "one no_wait request: everything stored, together")
        for delivery in batch { try delivery.ack() }
        consumer.stop()
    }
}

/// An ack can come from a handler task that outlives its connection: it must be refused, and
/// the message redelivered, not published on a destroyed connection.
final class AckAfterCloseTests: BusTestCase {
    func testAnAckAfterItsConnectionClosedIsRefusedAndTheMessageComesBack() async throws {
        var spec = try ConsumerSpec(plugin: "outliving", input: "klines", filterSubject: "qt.market.kline.AVAXUSDT")
        spec.ackWaitMs = 1_000
        try await bus.ensureConsumer(spec)
        let closing = try BusConnection(options(for: server))
        let first = try closing.consume(Kline.self, spec: spec, producer: "outliving@a")
        _ = try await bus.publish(outgoing(kline("AVAXUSDT", close: "20.5", at: 0), id: "AVAXUSDT-0"))
        let taken = try await take(1, from: first, ack: false)
        let held = try XCTUnwrap(taken.first)
        closing.close()

        XCTAssertThrowsError(try held.ack()) { error in
            guard case BusError.closed(let what) = error else { return XCTFail("expected BusError.closed, got \(error)") }
            XCTAssertTrue(what.contains("ack qt.market.kline.AVAXUSDT"), what)
        }
        XCTAssertThrowsError(try held.nak(delayMs: 0))

        let second = try bus.consume(Kline.self, spec: spec, producer: "outliving@b")
        let redelivered = try await take(1, from: second, seconds: 10)
        second.stop()
        XCTAssertEqual(redelivered.map(\.message.close), ["20.5"])
        XCTAssertEqual(redelivered.map(\.deliveryCount), [2], "the refused ack left it unacked: back after AckWait")
        try redelivered.first?.ack()
    }
}
