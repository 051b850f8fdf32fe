import Bus
import FakeSinks
import Foundation
import Messages
import Plugins
import XCTest

/// Issue 21: alert-relay on two host processes sharing its durable; one is SIGKILLed in the
/// middle of a burst and started again, and the webhook still gets every alert.
final class AlertRelayCrashTests: HostTestCase {
    private var webhook: FakeSink?

    override func tearDown() async throws {
        await webhook?.stop()
        webhook = nil
        try await super.tearDown()
    }

    func testARelaySIGKILLedMidBurstLosesNoAlertAfterItsRestart() async throws {
        let sink = try await FakeSink.start()
        webhook = sink
        // Slow answers, so the burst is still going when the kill comes.
        sink.answerAfter(ms: 40)
        let relay = ["alert-relay": ["webhook_url": "\"\(sink.baseURL)/hook\"", "limit_per_window": "1000", "ack_wait_s": "2"]]
        let nodeA = try await spawnQTHost("relay-a", plugins: relay, exchange: nil)
        let nodeB = try await spawnQTHost("relay-b", plugins: relay, exchange: nil)
        defer {
            for node in [nodeA, nodeB] where node.isRunning { node.terminate(); node.waitUntilExit() }
        }

        let kinds: [AlertKind] = [.consumerLag, .deadLetter, .heatHot, .redelivery, .timer]
        let messages = (0..<60).map { "burst alert \($0)" }
        let batch = try messages.enumerated().map { index, text in
            var alert = Alert()
            alert.kind = kinds[index % kinds.count]
            alert.severity = .warning
            alert.plugin = "tests"
            alert.message = text
            return try OutgoingMessage(alert, subject: Subjects.alert(alert.kind), id: "burst-\(index)", producer: "tests@host-tests")
        }
        _ = try await bus.publishBatch(batch)

        try await waitUntil("the webhook got 10 alerts", seconds: 60) { sink.accepted.count >= 10 }
        kill(nodeA.processIdentifier, SIGKILL)
        nodeA.waitUntilExit()
        XCTAssertEqual(nodeA.terminationReason, .uncaughtSignal)
        let killedAt = sink.accepted.count
        let restarted = try await spawnQTHost("relay-a", plugins: relay, exchange: nil)
        defer { if restarted.isRunning { restarted.terminate(); restarted.waitUntilExit() } }

        try await waitUntil("every alert reached the webhook", seconds: 90) {
            Set(sink.accepted.compactMap { $0.json["message"] as? String }).isSuperset(of: messages)
        }
        // The hosts raise alerts of their own (the kill shows up as a lease or redelivery alert): only the burst is counted.
        let burst = sink.accepted.map(\.json).filter { messages.contains($0["message"] as? String ?? "") }
        let received = burst.compactMap { $0["message"] as? String }
        let repeated = received.count - Set(received).count
        XCTAssertLessThanOrEqual(repeated, 4, "only alerts in flight at the kill may come twice (at least once): \(repeated)")
        XCTAssertEqual(Set(burst.compactMap { $0["id"] as? String }), Set((0..<messages.count).map { "burst-\($0)" }),
                       "each alert's id is the one it was published with")
        let others = sink.accepted.map(\.json).filter { !messages.contains($0["message"] as? String ?? "") }
        print("alert-relay SIGKILL test: other alerts relayed: \(others.map { "\($0["kind"] ?? "?"): \($0["message"] ?? "?")" })")
        print("alert-relay SIGKILL test: killed after \(killedAt) of \(messages.count) accepted; \(received.count) received, \(repeated) twice")
    }
}
