import Bus
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Host
import Messages
import XCTest

final class HostPipelineTests: HostTestCase {
    func testTwoPluginPipelineDeliversEveryMessageAndMetricsMove() async throws {
        let host = try await startHost("node-a", plugins: ["relay-a": [:], "relay-b": [:]])
        let port = try XCTUnwrap(host.httpPort)
        let before = try await httpGet(port: port, path: "/metrics")
        XCTAssertTrue(before.body.contains("qt_messages_in_total{host=\"node-a\",plugin=\"relay-a\"} 0"), before.body)
        let health = try await httpGet(port: port, path: "/healthz")
        XCTAssertEqual(health.status, 200)
        let ready = try await httpGet(port: port, path: "/readyz")
        XCTAssertEqual(ready.status, 200)

        let ids = try await publishKlines(200)
        try await waitUntil("200 decisions", seconds: 20) { try await self.messages(in: "QT_AUDIT") >= 200 }
        let decisions = try await readAll(Decision.self, subject: "qt.decision.relay-b.*", expected: 200)
        XCTAssertEqual(Set(decisions.map(\.subjectID)), Set(ids))
        XCTAssertTrue(decisions.allSatisfy { $0.verdict == .pass && $0.plugin == "relay-b" })
        // Trace and cause follow the chain: kline → state → decision.
        let first = try XCTUnwrap(decisions.first { $0.subjectID == "k-0" })
        XCTAssertEqual(first.meta.traceID, "k-0")
        XCTAssertEqual(first.meta.producer, "relay-b@node-a")

        let after = try await httpGet(port: port, path: "/metrics")
        XCTAssertTrue(after.body.contains("qt_messages_in_total{host=\"node-a\",plugin=\"relay-a\"} 200"), after.body)
        XCTAssertTrue(after.body.contains("qt_messages_out_total{host=\"node-a\",plugin=\"relay-b\"} 200"), after.body)
        XCTAssertTrue(after.body.contains("qt_handler_latency_ms_count{host=\"node-a\",plugin=\"relay-a\"} 200"), after.body)

        let hosts = try await FleetReader.read(bus)
        XCTAssertEqual(hosts.map(\.hostID), ["node-a"])
        XCTAssertEqual(Set(hosts[0].plugins.map(\.name)), ["relay-a", "relay-b"])
    }

    /// A timer that keeps failing is not only a log line and a counter: the third failure in a
    /// row raises a CRITICAL alert (and every third after it).
    func testATimerFailingThreeTimesInARowRaisesAnAlert() async throws {
        let host = try await startHost("node-a", plugins: ["broken": [:]])
        try await waitUntil("a timer alert", seconds: 15) { try await self.count("qt.alert.timer") >= 1 }
        let alerts = try await readAll(Alert.self, subject: "qt.alert.timer", expected: 1)
        XCTAssertEqual(alerts.first?.kind, .timer)
        XCTAssertEqual(alerts.first?.severity, .critical)
        XCTAssertEqual(alerts.first?.details["failures"], "3")
        XCTAssertTrue(alerts.first?.message.contains("the exchange is unreachable") == true, alerts.first?.message ?? "")
        XCTAssertGreaterThanOrEqual(host.metrics.plugin("broken").errors.value, 3)
    }

    func testUnknownEnumValueIsDeadLetteredAndProducesNoOutput() async throws {
        _ = try await startHost("node-a", plugins: ["strict": [:]])
        var unknown = CalibratedProposal()
        unknown.proposal.symbol = "BTCUSDT"
        unknown.proposal.proposalID = "p-unknown"
        unknown.calibratedAction = HarvestAction(rawValue: 42)!
        var unspecified = CalibratedProposal()
        unspecified.proposal.symbol = "BTCUSDT"
        unspecified.proposal.proposalID = "p-unspecified"
        var valid = CalibratedProposal()
        valid.proposal.symbol = "BTCUSDT"
        valid.proposal.proposalID = "p-valid"
        valid.calibratedAction = .fullClose
        for (index, proposal) in [unknown, unspecified, valid].enumerated() {
            _ = try await bus.publish(OutgoingMessage(proposal, subject: Subjects.harvestCalibrated("BTCUSDT"),
                                                      id: "cal-\(index)", producer: "heat-gate@test"))
        }
        try await waitUntil("two dead letters and one plan", seconds: 15) {
            let dlq = try await self.messages(in: "QT_DLQ")
            let plans = try await self.messages(in: "QT_PLAN")
            return dlq == 2 && plans == 1
        }
        let partition = try Partitioning(count: Partitioning.defaultCount).partition(of: "BTCUSDT")
        let letters = try await readAll(DeadLetter.self, subject: "qt.dlq.strict__calibrated__p\(partition)", expected: 2)
        XCTAssertEqual(letters.count, 2)
        XCTAssertTrue(letters.contains { $0.error.contains("value 42 is not a member of enum HarvestAction") }, "\(letters.map(\.error))")
        XCTAssertTrue(letters.contains { $0.error.contains("calibrated_action is HARVEST_ACTION_UNSPECIFIED") }, "\(letters.map(\.error))")
        let plans = try await readAll(Plan.self, subject: "qt.plan.sized.*", expected: 1)
        XCTAssertEqual(plans.map(\.origin), ["p-valid"])
        XCTAssertEqual(plans.first?.kind, .close)
        // Settle, then make sure nothing else appeared (no output for the rejected ones).
        try await Task.sleep(nanoseconds: 500_000_000)
        let totalPlans = try await messages(in: "QT_PLAN")
        XCTAssertEqual(totalPlans, 1)
        let alerts = try await readAll(Alert.self, subject: "qt.alert.dead_letter", expected: 2)
        XCTAssertEqual(alerts.count, 2)
    }

    func testShadowPluginPublishesToShadowSubjects() async throws {
        _ = try await startHost("node-a", plugins: ["relay-a": ["shadow": "true"]])
        _ = try await publishKlines(5)
        try await waitUntil("5 shadow states", seconds: 15) { try await self.messages(in: "QT_SHADOW") == 5 }
        let live = try await bus.streamInfo("QT_MARKET")
        XCTAssertEqual(live.messages, 5, "only the 5 klines: no live market state was published")
        let states = try await readAll(MarketState.self, subject: "qt.shadow.qt.market.state.*", expected: 5)
        XCTAssertEqual(states.count, 5)
    }

    /// Two hosts split the partitions of relay-a; each symbol is handled by one host, each message once.
    func testTwoHostsSplitThePartitionsAndHandleEachMessageOnce() async throws {
        let first = try await startHost("node-a", plugins: ["relay-a": [:]])
        let second = try await startHost("node-b", plugins: ["relay-a": [:]])
        try await waitUntilBalanced("relay-a", hosts: ["node-a", "node-b"])
        let symbols = (0..<30).map { "SYM\($0)USDT" }
        let ids = try await publishKlines(100, symbols: symbols)
        try await waitUntil("3000 states", seconds: 30) {
            first.metrics.plugin("relay-a").messagesIn.value + second.metrics.plugin("relay-a").messagesIn.value >= 3_000
        }
        try await waitUntil("states stored", seconds: 10) { try await self.messages(in: "QT_MARKET") == 6_000 }
        let handledA = first.metrics.plugin("relay-a").messagesIn.value
        let handledB = second.metrics.plugin("relay-a").messagesIn.value
        XCTAssertEqual(handledA + handledB, 3_000, "each message handled exactly once")
        XCTAssertGreaterThan(handledA, 0, "node-a took part")
        XCTAssertGreaterThan(handledB, 0, "node-b took part")
        let states = try await readAll(MarketState.self, subject: "qt.market.state.*", expected: 3_000)
        XCTAssertEqual(Set(states.map(\.meta.causeID)), Set(ids))
        XCTAssertEqual(Set(states.map(\.meta.producer)), ["relay-a@node-a", "relay-a@node-b"])
        for (symbol, ofSymbol) in Dictionary(grouping: states, by: \.symbol) {
            XCTAssertEqual(Set(ofSymbol.map(\.meta.producer)).count, 1, "\(symbol) is handled by one host")
        }
    }

    func testDrainUnderLoadHandsTheRestToTheOtherHostExactlyOnce() async throws {
        let first = try await startHost("node-a", plugins: ["relay-a": ["delay_ms": "2"]])
        let second = try await startHost("node-b", plugins: ["relay-a": ["delay_ms": "2"]])
        try await waitUntilBalanced("relay-a", hosts: ["node-a", "node-b"])
        let ids = try await publishKlines(100, symbols: (0..<20).map { "SYM\($0)USDT" })
        try await waitUntil("node-a is busy", seconds: 10) { first.metrics.plugin("relay-a").messagesIn.value >= 100 }
        await stopHost(first)  // what SIGTERM runs: stop fetching, finish, NAK the unstarted, release the partitions
        try await waitUntil("all handled", seconds: 60) {
            first.metrics.plugin("relay-a").messagesIn.value + second.metrics.plugin("relay-a").messagesIn.value >= 2_000
        }
        try await waitUntil("states stored", seconds: 10) { try await self.messages(in: "QT_MARKET") == 4_000 }
        try await Task.sleep(nanoseconds: 2_500_000_000)  // past AckWait (2 s): nothing comes back
        let handledA = first.metrics.plugin("relay-a").messagesIn.value
        let handledB = second.metrics.plugin("relay-a").messagesIn.value
        XCTAssertEqual(handledA + handledB, 2_000, "none lost, none handled twice (a: \(handledA), b: \(handledB))")
        XCTAssertLessThan(handledA, 2_000)
        let states = try await readAll(MarketState.self, subject: "qt.market.state.*", expected: 2_000)
        XCTAssertEqual(Set(states.map(\.meta.causeID)), Set(ids))
        let owners = try await partitionOwners("relay-a")
        XCTAssertEqual(Set(owners.values), ["node-b"], "node-b took every partition node-a handed over")
        for partition in 0..<Partitioning.defaultCount {
            let info = try await bus.consumerInfo(stream: "QT_MARKET", durable: "relay-a__klines__p\(partition)")
            XCTAssertEqual(info.numAckPending, 0, "p\(partition)")
            XCTAssertEqual(info.numPending, 0, "p\(partition)")
        }
    }

    func testPluginStateIsSharedByCompareAndSetAcrossHosts() async throws {
        let first = try await startHost("node-a", plugins: ["counter": [:]])
        let second = try await startHost("node-b", plugins: ["counter": [:]])
        _ = try await publishKlines(60)
        let states = try await bus.keyValue("qt_state")
        try await waitUntil("60 counted", seconds: 60) {
            try await states.get(PluginState.self, "counter.klines")?.value.values["count"] == "60"
        }
        let state = try await XCTUnwrapAsync(try await states.get(PluginState.self, "counter.klines"))
        XCTAssertEqual(state.value.plugin, "counter")
        XCTAssertEqual(state.value.name, "klines")
        let conflicts = first.metrics.plugin("counter").errors.value + second.metrics.plugin("counter").errors.value
        let handled = first.metrics.plugin("counter").messagesIn.value + second.metrics.plugin("counter").messagesIn.value
        XCTAssertEqual(handled - conflicts, 60, "every kline counted once; conflicts were retried")
        print("state CAS test: \(Int(conflicts)) conflicts retried")
    }

}

func XCTUnwrapAsync<T>(_ value: T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    try XCTUnwrap(value, file: file, line: line)
}
