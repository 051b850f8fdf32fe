import Bus
import Exchange
import Foundation
import Host
import Messages
import Plugins
import XCTest

final class SentinelTests: ExecutionTestCase {
    func testAlertsOnceWhenAConditionBeginsAndReducesOnTheMarginTrigger() async throws {
        let symbols = Array(simulator.exchange.symbols[20..<23])
        for symbol in symbols { try await openPosition(symbol, long: true) }
        try await freshAccount(marginRatio: 0.7)
        _ = try await startPipeline(["sentinel": ["interval_s": "0.3", "max_positions": "2"]], host: "watch")

        let overLimit = try await readAll(Alert.self, subject: Subjects.alert(.maxPositions), expected: 1)
        XCTAssertEqual(overLimit.first?.details["open"], "3")
        let margin = try await readAll(Alert.self, subject: Subjects.alert(.marginRatio), expected: 1)
        XCTAssertEqual(margin.first?.severity, .critical)
        try await waitUntil("the sentinel sets REDUCING", seconds: 10) {
            try await bus.keyValue("qt_control").get(Control.self, "trading_state")?.value.tradingState == .reducing
        }
        let control = try await bus.keyValue("qt_control").get(Control.self, "trading_state")?.value
        XCTAssertTrue(control?.setBy.hasPrefix("sentinel@") == true, control?.setBy ?? "")

        // While the conditions last, no repeat; once one clears and comes back, a new alert.
        try await Task.sleep(nanoseconds: 1_500_000_000)
        check(try await count(Subjects.alert(.maxPositions)), 1)
        try await bus.keyValue("qt_ledger").delete(symbols[0])
        try await Task.sleep(nanoseconds: 1_000_000_000)
        try await openPosition(symbols[0], long: false)
        let again = try await readAll(Alert.self, subject: Subjects.alert(.maxPositions), expected: 2)
        XCTAssertEqual(again.count, 2)
    }

    func testHeatHotDeadLetterGrowthConsumerLagAndTopologyRaiseAlerts() async throws {
        var account = AccountSnapshot()
        account.totalMarginBalance = "100"
        account.marginRatio = 0.1
        account.asOfMs = Int64(Date().timeIntervalSince1970 * 1000)
        try await bus.keyValue("qt_snapshot").put("_account", message: account)
        var snapshot = PositionSnapshot()
        snapshot.symbol = "AAAUSDT"
        snapshot.positionAmt = "10"
        snapshot.markPrice = "100"
        try await bus.keyValue("qt_snapshot").put("AAAUSDT", message: snapshot)
        var state = MarketState()
        state.symbol = "AAAUSDT"
        state.sigma = 0.01
        try await bus.keyValue("qt_marketstate").put("AAAUSDT", message: state)
        // A consumer that reads nothing while three bars wait for it.
        try await bus.ensureConsumer(try ConsumerSpec(durable: "slow_reader", filterSubject: "qt.market.kline.*"))
        _ = try await publishKlines(3)
        _ = try await startPipeline(["sentinel": ["interval_s": "0.3", "reduce_on_heat": "false", "consumer_lag": "2"]], host: "watch")

        // 1000 USDT at 1 % a minute over 100 USDT of equity: heat 3.8, HOT.
        let hot = try await readAll(Alert.self, subject: Subjects.alert(.heatHot), expected: 1)
        XCTAssertEqual(Double(hot.first?.details["heat"] ?? "") ?? 0, 1_000 * 0.01 * 1_440.0.squareRoot() / 100, accuracy: 1e-9)

        var letter = DeadLetter()
        letter.consumer = "test__input"
        letter.error = "undecodable"
        _ = try await bus.publish(OutgoingMessage(letter, subject: Subjects.deadLetter(consumer: "test__input"), id: "dlq-1", producer: "test@host"))
        let grown = try await readAll(Alert.self, subject: Subjects.alert(.deadLetter), expected: 1)
        XCTAssertEqual(grown.first?.details["now"], "1")
        let lag = try await readAll(Alert.self, subject: Subjects.alert(.consumerLag), expected: 1)
        XCTAssertEqual(lag.first?.subject, "slow_reader")
        XCTAssertEqual(lag.first?.details["pending"], "3")
        // A sentinel alone reads buckets nobody writes: the fleet's topology check fails.
        let topology = try await readAll(Alert.self, subject: Subjects.alert(.topology), expected: 1)
        XCTAssertTrue(topology.first?.message.contains("bucket not written") == true, topology.first?.message ?? "")
        let control = try await bus.keyValue("qt_control").get(Control.self, "trading_state")
        XCTAssertNil(control, "reduce_on_heat: false leaves the trading state alone")
    }

    /// A plugin a live host runs whose partition nobody owns: CRITICAL after `unowned_partition_s`;
    /// that host leaving the fleet: a WARNING, once.
    func testAnUnownedPartitionAndALeavingHostRaiseAlerts() async throws {
        // A host that declares relay-a (keyed) but holds none of its leases.
        var ghost = HostInfo()
        ghost.hostID = "ghost"
        var relay = PluginManifestInfo()
        relay.name = "relay-a"
        var input = SubjectBinding()
        input.name = "klines"
        input.subject = "qt.market.kline.*"
        input.type = Kline.protoMessageName
        relay.inputs = [input]
        ghost.plugins = [relay]
        ghost.heartbeatAtMs = Int64(Date().timeIntervalSince1970 * 1000)
        try await bus.keyValue("qt_hosts").put("ghost", message: ghost)
        _ = try await startPipeline(["sentinel": ["interval_s": "0.3", "unowned_partition_s": "1"]], host: "watch")

        let unowned = try await readAll(Alert.self, subject: Subjects.alert(.lease), expected: Partitioning.defaultCount)
        XCTAssertEqual(unowned.count, Partitioning.defaultCount, "one alert per unowned partition")
        XCTAssertTrue(unowned.allSatisfy { $0.severity == .critical }, unowned.map(\.message).joined(separator: "; "))
        XCTAssertEqual(Set(unowned.map(\.subject)), Set((0..<Partitioning.defaultCount).map { "qt_leases/relay-a.p\($0)" }))

        try await bus.keyValue("qt_hosts").delete("ghost")
        let all = try await readAll(Alert.self, subject: Subjects.alert(.lease), expected: Partitioning.defaultCount + 1)
        let left = all.filter { $0.severity == .warning }
        XCTAssertEqual(left.map(\.subject), ["qt_hosts/ghost"], all.map(\.message).joined(separator: "; "))
        try await Task.sleep(nanoseconds: 1_000_000_000)
        check(try await count(Subjects.alert(.lease)), UInt64(Partitioning.defaultCount + 1))
    }
}
