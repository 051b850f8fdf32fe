import Bus
import Exchange
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// Issue 6: the executor killed (SIGKILL, `QT_CRASH_AT`) at each of its steps, in a host child
/// process (`qt-test-host --catalog`: the built-in plugins with the crash hook installed); a second host finishes the plan once the dead host's partition leases expired. For every point: exactly one exchange order,
/// the ledger equal to the simulator's position, the permit gone and the plan not executable
/// again. And two hosts running the executor never place two orders for one symbol's revision.
final class ExecutorCrashTests: ExecutionTestCase {
    /// A short AckWait so the surviving host gets the dead host's message within seconds.
    let crashVariable = "QT_CRASH_AT"
    let plugins = ["portfolio-gate": ["max_positions": "50", "ack_wait_s": "2"], "executor": ["ack_wait_s": "2"]]

    func waitForExit(_ process: Process, seconds: Double) async throws {
        try await waitUntil("the host exits", seconds: seconds) { !process.isRunning }
    }

    func testACrashAtEveryExecutorStepStillGivesExactlyOneOrder() async throws {
        let exchange = try exchangeSection()
        try await freshAccount()
        let points = CrashPoint.allCases
        let symbols = Array(simulator.exchange.symbols[10..<(10 + points.count)])
        try await activeUniverse(symbols)
        for (point, symbol) in zip(points, symbols) {
            try await freshAccount()
            let ordersBefore = simulator.exchange.acceptedOrders
            let journal = scratch.appendingPathComponent("\(point.rawValue).journal").path
            let crashing = try await spawnQTHost("crash-\(point.rawValue)", plugins: plugins, exchange: exchange,
                                           environment: [crashVariable: point.rawValue, "QT_JOURNAL": journal])
            // A wide stop: the simulator moves a minute of prices every 250 ms, and a 2 % stop placed
            // before the crash can trigger during the takeover (ledger ≠ exchange without position-brain).
            let plan = try await entryPlan(symbol, long: point.rawValue.count % 2 == 0, stopDistPct: 0.3)
            try await submit(plan)
            try await waitForExit(crashing, seconds: 30)
            XCTAssertEqual(crashing.terminationReason, .uncaughtSignal, "\(point): \(log(of: "crash-\(point.rawValue)"))")
            XCTAssertEqual(crashing.terminationStatus, SIGKILL, "\(point)")
            XCTAssertTrue(log(of: "crash-\(point.rawValue)").contains("\(crashVariable)=\(point.rawValue)"), "\(point)")

            let survivor = try await spawnQTHost("survivor-\(point.rawValue)", plugins: plugins, exchange: exchange,
                                                 environment: ["QT_JOURNAL": journal])
            // The survivor owns the crashed host's partitions once their leases expire (TTL 15 s plus one step).
            let results = try await readAll(OrderResult.self, subject: Subjects.execResult(symbol), expected: 1, seconds: 60)
            var ownership = ""
            if results.isEmpty {
                let partition = try Partitioning(count: Partitioning.defaultCount).partition(of: symbol)
                let info = try await bus.consumerInfo(stream: "QT_PLAN", durable: "executor__approved__p\(partition)")
                let trail = ((try? String(contentsOfFile: journal, encoding: .utf8)) ?? "").split(separator: "\n")
                    .filter { $0.contains(symbol) || ($0.contains("\"partition\":\(partition),") && !$0.contains("\"kind\":\"kv\"")) }
                ownership = "executor owners \(try await partitionOwners("executor")), p\(partition): pending \(info.numPending), "
                    + "ack pending \(info.numAckPending), redelivered \(info.numRedelivered); journals:\n"
                    + trail.suffix(60).joined(separator: "\n") + "\n"
            }
            XCTAssertEqual(results.map(\.status), [.applied], "\(point): \(ownership)\(log(of: "survivor-\(point.rawValue)"))")
            XCTAssertEqual(simulator.exchange.acceptedOrders - ordersBefore, 1, "\(point): exactly one exchange order")
            let entry = try await ledger(symbol)
            XCTAssertEqual(Decimal.parse(entry?.positionAmt ?? ""), simulator.exchange.positionAmount(symbol), "\(point): ledger = exchange")
            XCTAssertNotEqual(simulator.exchange.positionAmount(symbol), 0, "\(point)")
            XCTAssertEqual(entry?.pendingClientOrderID, "", "\(point): the claim is cleared")
            let permit = try await bus.keyValue("qt_permits").get(Permit.self, plan.planID)
            XCTAssertNil(permit, "\(point): the permit is used up")

            // The plan again, as an approved plan: resumed from its APPLIED record, no second order.
            var again = plan
            again.expiresAtMs = Int64(Date().timeIntervalSince1970 * 1000) + 60_000
            _ = try await bus.publish(OutgoingMessage(again, subject: Subjects.planApproved(symbol), id: "again-\(plan.planID)",
                                                      producer: "test@portfolio-gate"))
            let executed = try await decisions("executor", symbol, expected: 2)
            XCTAssertEqual(executed.count, 2, "\(point)")
            XCTAssertEqual(simulator.exchange.acceptedOrders - ordersBefore, 1, "\(point): the plan cannot run twice")
            survivor.terminate()
            try await waitForExit(survivor, seconds: 15)
        }
    }

    func testTwoExecutorsNeverPlaceTwoOrdersForOneRevision() async throws {
        let symbols = Array(simulator.exchange.symbols[20..<30])
        for symbol in symbols { try await openPosition(symbol, long: true) }
        _ = try await startPipeline(["executor": [:]], host: "exec-a")
        _ = try await startPipeline(["executor": [:]], host: "exec-b")
        let ordersBefore = simulator.exchange.acceptedOrders

        // Per symbol: two different exit plans made at the same ledger revision, each with a
        // permit, each delivered twice (a replay): one order per symbol, the rest STALE or resumed.
        for symbol in symbols {
            var first = try await closePlan(symbol)
            var second = first
            second.planID = ContentID.hash("test-other-close", symbol, String(first.ledgerRevision))
            for plan in [first, second] {
                var permit = Permit()
                permit.planID = plan.planID
                permit.kind = .p26
                permit.symbol = symbol
                permit.planDigest = PlanDigest.of(plan)
                try await bus.keyValue("qt_permits").put(plan.planID, message: permit)
            }
            first.expiresAtMs = Int64(Date().timeIntervalSince1970 * 1000) + 60_000
            second.expiresAtMs = first.expiresAtMs
            for plan in [first, second, first, second] {
                _ = try await bus.publish(OutgoingMessage(plan, subject: Subjects.planApproved(symbol), id: UUID().uuidString,
                                                          producer: "test@portfolio-gate"))
            }
        }
        for symbol in symbols {
            let decided = try await decisions("executor", symbol, expected: 4)
            XCTAssertEqual(decided.count, 4, symbol)
            XCTAssertEqual(simulator.exchange.positionAmount(symbol), 0, symbol)
            let entry = try await ledger(symbol)
            XCTAssertEqual(Decimal.parse(entry?.positionAmt ?? ""), 0, symbol)
        }
        XCTAssertEqual(simulator.exchange.acceptedOrders - ordersBefore, symbols.count, "one order per symbol's revision over two hosts")
    }
}
