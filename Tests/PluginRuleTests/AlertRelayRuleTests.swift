import FakeSinks
import Foundation
import Host
import InMemoryHost
import Messages
@testable import Plugins
import XCTest

/// alert-relay on the in-memory host against local fake sinks (issue 21): the rate limit and its
/// digest, at-least-once delivery through a failing sink, routing by severity and kind, and
/// settings that are refused by name.
final class AlertRelayRuleTests: XCTestCase {
    private var host: InMemoryHost!
    private var sinks: [FakeSink] = []
    private var scratch: URL!

    override func setUp() async throws {
        host = InMemoryHost()
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qt-relay-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        for sink in sinks { await sink.stop() }
        sinks = []
        host = nil
        try? FileManager.default.removeItem(at: scratch)
    }

    private func sink() async throws -> FakeSink {
        let sink = try await FakeSink.start()
        sinks.append(sink)
        return sink
    }

    private func alert(_ kind: AlertKind, _ severity: AlertSeverity, _ message: String) -> Alert {
        var alert = Alert()
        alert.kind = kind
        alert.severity = severity
        alert.plugin = "sentinel"
        alert.subject = "test"
        alert.message = message
        return alert
    }

    private func publish(_ alerts: [Alert]) async throws {
        for alert in alerts { try await host.publish(alert, subject: Subjects.alert(alert.kind)) }
        await host.run()
    }

    func testABurstOfAHundredAlertsGivesTheLimitThenOneDigestWhenTheWindowIsOver() async throws {
        let webhook = try await sink()
        try await host.start(AlertRelayPlugin.registration, settings: ["webhook_url": "\"\(webhook.baseURL)/hook\"",
                                                                        "limit_per_window": "5", "window_s": "60"])
        let kinds: [AlertKind] = [.consumerLag, .deadLetter, .heatHot, .redelivery]
        try await publish((0..<100).map { alert(kinds[$0 % kinds.count], .warning, "burst \($0)") })

        XCTAssertEqual(webhook.accepted.count, 5, "the limit, and nothing more until the window is over")
        try await host.tick(AlertRelayPlugin.name, "check")
        XCTAssertEqual(webhook.accepted.count, 5, "no digest inside the window")

        await host.advance(byMs: 60_000)
        try await host.tick(AlertRelayPlugin.name, "check")
        try await host.tick(AlertRelayPlugin.name, "check")
        let received = webhook.accepted.map(\.json)
        XCTAssertEqual(received.count, 6, "five alerts and one digest: \(received)")
        let digest = try XCTUnwrap(received.last)
        XCTAssertEqual(digest["digest"] as? Bool, true)
        XCTAssertEqual(digest["held_back"] as? Int, 95)
        XCTAssertEqual((digest["by_kind"] as? [String: Int])?.values.reduce(0, +), 95)
        XCTAssertEqual(Set(received.prefix(5).compactMap { $0["message"] as? String }).count, 5)
        let held = await host.deadLetters
        XCTAssertEqual(held.count, 0)
    }

    func testASinkThatFailsTwiceThenSucceedsGetsEveryAlertOnceAndTheHealthySinkIsNotAskedAgain() async throws {
        let healthy = try await sink()
        let failing = try await sink()
        failing.refuseNext(2)
        // The webhook is asked first, Slack second: the webhook accepts each alert on its first try.
        try await host.start(AlertRelayPlugin.registration, settings: ["webhook_url": "\"\(healthy.baseURL)/hook\"",
                                                                        "slack_url": "\"\(failing.baseURL)/services/T0/B0/secret\""])
        let alerts = (0..<6).map { alert(.deadLetter, .critical, "dead letter \($0)") }
        try await publish(alerts)
        // The host's back-off on the manual clock: 1 s, then 2 s.
        await host.advance(byMs: 1_000)
        await host.advance(byMs: 2_000)
        await host.advance(byMs: 4_000)

        XCTAssertEqual(failing.refused, 2)
        XCTAssertEqual(failing.accepted.compactMap { ($0.json["text"] as? String)?.components(separatedBy: "\n").last }, alerts.map(\.message),
                       "every alert once, in order, after two refusals")
        XCTAssertEqual(failing.accepted.map(\.path), Array(repeating: "/services/T0/B0/secret", count: 6))
        XCTAssertEqual(healthy.accepted.compactMap { $0.json["message"] as? String }, alerts.map(\.message),
                       "the first alert came back twice, and the webhook that had accepted it was not asked again")
        let retries = await host.retries[AlertRelayPlugin.name]
        XCTAssertEqual(retries, 2, "Slack's two refusals sent the first alert back twice")
    }

    func testRoutingBySeverityAndByKindWithSilentAlertsToTelegram() async throws {
        let telegram = try await sink()
        let tokenFile = scratch.appendingPathComponent("bot-token")
        try "123456:ABC-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        try await host.start(AlertRelayPlugin.registration, settings: [
            "telegram_base_url": "\"\(telegram.baseURL)\"", "telegram_token_file": "\"\(tokenFile.path)\"", "telegram_chat_id": "\"-1001\"",
            "telegram_route": "\"critical=on, warning=silent, info=off, consumer_lag=off\"",
        ])
        try await publish([alert(.marginRatio, .critical, "margin"), alert(.heatHot, .warning, "heat"), alert(.timer, .info, "timer"),
                           alert(.consumerLag, .critical, "lag")])
        let received = telegram.accepted
        XCTAssertEqual(received.map(\.path), ["/bot123456:ABC-token/sendMessage", "/bot123456:ABC-token/sendMessage"])
        XCTAssertEqual(received.map { $0.json["chat_id"] as? String }, ["-1001", "-1001"])
        XCTAssertEqual(received.map { $0.json["disable_notification"] as? Bool }, [false, true], "warning is silent")
        let texts = received.compactMap { $0.json["text"] as? String }
        XCTAssertEqual(texts.count, 2)
        XCTAssertTrue(texts[0].hasPrefix("[CRITICAL] MARGIN_RATIO · sentinel"), texts[0])
        XCTAssertTrue(texts[1].hasSuffix("heat"), texts[1])
    }

    private func heartbeat(_ hostID: String) async throws {
        var info = HostInfo()
        info.hostID = hostID
        info.heartbeatAtMs = host.clock.nowMs()
        _ = try await host.kv("qt_hosts").put(hostID, info)
    }

    func testAHostSilentForLongerThanTheLimitRaisesOneCriticalAlertAndAnInfoOneWhenItIsBack() async throws {
        let webhook = try await sink()
        try await host.start(AlertRelayPlugin.registration, settings: ["webhook_url": "\"\(webhook.baseURL)/hook\"", "host_silence_s": "60"])
        try await heartbeat("node-a")
        try await heartbeat("node-b")
        try await host.tick(AlertRelayPlugin.name, "check")
        XCTAssertEqual(webhook.accepted.count, 0, "both heartbeat")

        // node-b goes on heartbeating; node-a stops, and its key leaves qt_hosts with the bucket's TTL.
        for _ in 0..<7 {
            await host.advance(byMs: 10_000)
            try await heartbeat("node-b")
            try await host.tick(AlertRelayPlugin.name, "check")
        }
        let keys = try await host.kv("qt_hosts").keys()
        XCTAssertEqual(keys, ["node-b"], "node-a's heartbeat expired from qt_hosts")
        try await host.tick(AlertRelayPlugin.name, "check")
        var received = webhook.accepted.map(\.json)
        XCTAssertEqual(received.count, 1, "one alert for one silence: \(received)")
        XCTAssertEqual(received.first?["kind"] as? String, "host_silent")
        XCTAssertEqual(received.first?["severity"] as? String, "critical")
        XCTAssertEqual(received.first?["subject"] as? String, "qt_hosts/node-a")
        XCTAssertTrue((received.first?["message"] as? String)?.contains("no heartbeat for 60 s") == true, "\(received)")
        let published = await host.messages(Alert.self, on: "qt.alert.host_silent")
        XCTAssertEqual(published.count, 1, "published on the bus, so every reader of alerts sees it")

        try await heartbeat("node-a")
        try await host.tick(AlertRelayPlugin.name, "check")
        received = webhook.accepted.map(\.json)
        XCTAssertEqual(received.count, 2)
        XCTAssertEqual(received.last?["severity"] as? String, "info")
        XCTAssertEqual(received.last?["silent"] as? Bool, true, "info is silent by default")
        XCTAssertEqual(received.last?["message"] as? String, "host node-a heartbeats again")
    }

    /// The sink's record, as data: a digest takes off only what it reported, and a storm cannot
    /// grow the record without end.
    func testTheSinkRecordKeepsWhatWasHeldBackAfterTheDigestWasReadAndCapsItsIDs() {
        var ledger = SinkLedger()
        XCTAssertEqual(ledger.admit("a", kind: "timer", limit: 1, windowMs: 1_000, nowMs: 0), .send)
        XCTAssertEqual(ledger.admit("b", kind: "timer", limit: 1, windowMs: 1_000, nowMs: 10), .holdBack)
        XCTAssertEqual(ledger.admit("b", kind: "timer", limit: 1, windowMs: 1_000, nowMs: 20), .done, "a redelivery is not counted twice")
        XCTAssertNil(ledger.digestDue(windowMs: 1_000, nowMs: 999))
        let due = ledger.digestDue(windowMs: 1_000, nowMs: 1_000)
        XCTAssertEqual(due, ["timer": 1])
        XCTAssertEqual(ledger.admit("c", kind: "lease", limit: 0, windowMs: 1_000, nowMs: 1_001), .holdBack, "held back after the digest was read")
        ledger.digestSent(due ?? [:])
        XCTAssertEqual(ledger.heldBackByKind, ["lease": 1])
        XCTAssertEqual(SinkLedger(ledger.state(sink: "webhook")), ledger, "the record survives its round trip through qt_state")

        for index in 0..<(SinkLedger.heldBackIDLimit + 50) {
            _ = ledger.admit("storm-\(index)", kind: "consumer_lag", limit: 0, windowMs: 1_000, nowMs: 2_000)
        }
        XCTAssertEqual(ledger.heldBackIDs.count, SinkLedger.heldBackIDLimit)
        XCTAssertEqual(ledger.heldBackByKind["consumer_lag"], SinkLedger.heldBackIDLimit + 50, "every one is counted")
    }

    func testASummaryAfterEachPeriodCountsTradesRealizedPnLAndAlertsOnce() async throws {
        let webhook = try await sink()
        try await host.start(AlertRelayPlugin.registration, settings: ["webhook_url": "\"\(webhook.baseURL)/hook\"", "summary_every_s": "3600",
                                                                        "host_silence_s": "0"])
        try await host.tick(AlertRelayPlugin.name, "check")
        for (index, (status, pnl)) in [(OrderStatus.applied, "1.5"), (.applied, "-0.25"), (.rejected, "")].enumerated() {
            var result = OrderResult()
            result.planID = "plan-\(index)"
            result.clientOrderID = "qt-plan-\(index)"
            result.symbol = "BTCUSDT"
            result.status = status
            result.realizedPnl = pnl
            try await host.publish(result, subject: Subjects.execResult("BTCUSDT"), id: "result-\(index)")
        }
        try await publish([alert(.consumerLag, .warning, "lag"), alert(.heatHot, .warning, "heat")])
        try await host.tick(AlertRelayPlugin.name, "check")
        XCTAssertEqual(webhook.accepted.filter { $0.json["summary"] != nil }.count, 0, "no summary before the hour is over")

        await host.advance(byMs: 3_600_000)
        try await host.tick(AlertRelayPlugin.name, "check")
        try await host.tick(AlertRelayPlugin.name, "check")
        let summaries = webhook.accepted.map(\.json).filter { $0["summary"] as? Bool == true }
        XCTAssertEqual(summaries.count, 1, "one summary per period")
        let summary = try XCTUnwrap(summaries.first)
        XCTAssertEqual(summary["filled"] as? Int, 2)
        XCTAssertEqual(summary["rejected"] as? Int, 1)
        XCTAssertEqual(summary["realized_pnl"] as? String, "1.25")
        XCTAssertEqual(summary["alerts_by_severity"] as? [String: Int], ["warning": 2])
        XCTAssertTrue((summary["text"] as? String)?.contains("2 trade(s) filled, 1 rejected; realized PnL +1.25 USDT; 2 alert(s) (2 warning)") == true,
                      "\(summary)")
    }

    func testSettingsThatCannotWorkAreRefusedByName() async throws {
        try await assertRefused([:], naming: ["no sink"])
        try await assertRefused(["webhook_url": "\"http://127.0.0.1:9/hook\"", "webhook_route": "\"critical=loud\""],
                                naming: ["webhook_route", "critical=loud"])
        try await assertRefused(["webhook_url": "\"http://127.0.0.1:9/hook\"", "webhook_route": "\"critical=on, lag=on\""],
                                naming: ["\"lag\" is neither a severity", "consumer_lag"])
        try await assertRefused(["telegram_token_file": "\"\(scratch.path)/missing\"", "telegram_chat_id": "\"1\""],
                                naming: ["telegram_token_file", "missing"])
    }

    private func assertRefused(_ settings: [String: String], naming parts: [String], line: UInt = #line) async throws {
        do {
            try await InMemoryHost().start(AlertRelayPlugin.registration, settings: settings)
            XCTFail("started with \(settings)", line: line)
        } catch {
            for part in parts { XCTAssertTrue("\(error)".contains(part), "\(error) names \(part)", line: line) }
        }
    }
}
