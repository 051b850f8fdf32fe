import Bus
import Exchange
import Foundation
import Host
import Identity
import Messages
import NatsServerKit
import Plugins
import XCTest

/// The incident of `../shared/seed/000_4b08f705db6294c1.txt` (DESIGN.md §1), one test per
/// failure, each on a real nats-server with the real plugins and the simulator. Each test would
/// fail on the old system: there a drifted field became UPDATE_SL, a switched-off producer went
/// unnoticed, a configured symbol list hid positions from the exit side, and a risk gate blocked
/// the close the exit kernel proposed. `IncidentSymbolListTests` holds R4/R5 (566 symbols).
final class IncidentTests: ExecutionTestCase {
    var symbol: String { simulator.exchange.symbols[2] }

    /// R1 + R2. The seed's heat gate read `action` while the producer wrote `harvest_action`:
    /// the read got nothing, which became UNKNOWN and then UPDATE_SL. Here a producer of another
    /// schema (the action under field 17 instead of 5) and an action value no schema knows both
    /// end in the dead-letter stream with an alert, and nothing downstream moves.
    func testFieldDriftAndAnUnknownActionAreDeadLetteredAndNeverBecomeUpdateSL() async throws {
        try await openPosition(symbol, long: true)
        _ = try await startPipeline(["heat-gate": [:], "apply-layer": [:]])

        var proposal = HarvestProposal()
        proposal.proposalID = ContentID.hash("drifted", symbol)
        proposal.symbol = symbol
        proposal.killScore = 0.756
        proposal.positionAmt = "1"
        proposal.meta.eventTimeMs = simulator.exchange.simulatedNowMs
        // The other schema's `harvest_action = 17` holding FULL_CLOSE (6): field 17, varint 6.
        let drifted = try HarvestProposal(serializedBytes: try proposal.serializedBytes() + [0x88, 0x01, 0x06])
        XCTAssertEqual(drifted.action, .unspecified, "field 5 was never written")
        var unknown = proposal
        unknown.proposalID = ContentID.hash("unknown", symbol)
        unknown.action = HarvestAction(rawValue: 42)!
        for (message, id) in [(drifted, "drifted"), (unknown, "unknown")] {
            _ = try await bus.publish(OutgoingMessage(message, subject: Subjects.harvestProposed(symbol), id: id, producer: "other-schema@old"))
        }

        let letters = try await readAll(DeadLetter.self, subject: "qt.dlq.*", expected: 2)
        let durable = "heat-gate__proposals__p\(try Partitioning(count: Partitioning.defaultCount).partition(of: symbol))"
        XCTAssertEqual(letters.map(\.consumer), [durable, durable], "the durable of the symbol's partition")
        // Either order: the unknown value is refused when the batch is decoded, the drifted one by
        // the handler, so in one batch the second message is dead-lettered first.
        let errors = letters.map(\.error)
        XCTAssertEqual(errors.filter { $0.contains("HARVEST_ACTION_UNSPECIFIED") }.count, 1, "\(errors)")
        XCTAssertEqual(errors.filter { $0.contains("value 42 is not a member of enum HarvestAction") }.count, 1, "\(errors)")
        XCTAssertEqual(letters.map(\.originalSubject), [Subjects.harvestProposed(symbol), Subjects.harvestProposed(symbol)])
        let alerts = try await readAll(Alert.self, subject: Subjects.alert(.deadLetter), expected: 2)
        XCTAssertEqual(alerts.count, 2)
        // Let anything that would follow arrive, then check nothing did.
        try await Task.sleep(nanoseconds: 1_000_000_000)
        check(try await count("qt.harvest.calibrated.*"), 0)
        check(try await count("qt.plan.sized.*"), 0)
        check(try await count("qt.decision.*.*"), 0)
    }

    /// R3. The seed's fix never ran because its producer had `ENABLE_STREAM=false`. A host
    /// configured without harvest-proposer leaves `qt.harvest.proposed.*` without a producer:
    /// `qt topology check` fails naming it, and the sentinel raises a topology alert.
    func testADarkProducerFailsTheTopologyCheckAndRaisesAnAlert() async throws {
        _ = try await startPipeline([
            "market-feed": ["interval_s": "1"], "market-state": [:], "position-brain": ["interval_s": "1"],
            "heat-gate": [:], "apply-layer": [:], "sentinel": ["interval_s": "0.3"],
        ])
        let check = try ChildProcess.run(try binary("qt"), ["topology", "check", "--server", server.url])
        XCTAssertNotEqual(check.status, 0)
        XCTAssertTrue(check.stdout.contains("no producer: qt.harvest.proposed.*: consumed by heat-gate@exit-a"), check.stdout)
        // The host's own start-up check alerts too; the sentinel keeps watching after start.
        let alerts = try await read(Alert.self, subject: Subjects.alert(.topology), seconds: 30) { $0.contains { $0.plugin == "sentinel" } }
        let alert = alerts.first { $0.plugin == "sentinel" }
        XCTAssertEqual(alert?.severity, .critical)
        XCTAssertTrue(alert?.message.contains("qt.harvest.proposed.*") == true, alert?.message ?? "no alert")
    }

    /// R6 + R8. The seed's BTCUSDT close (K = 0.756: regime flip 1.0, ts drop 0.24, age 52 min)
    /// was proposed because K was high and then blocked because K ≥ 0.65. Here the real
    /// harvest-proposer gets the seed's market state for a position the executor opened; the
    /// close passes every gate, executes, and the ledger goes flat. `qt trace` of the proposal
    /// then shows the chain from proposal to the ledger revision.
    func testTheSeedsKillScoreCloseExecutesAndQtTraceShowsItsChain() async throws {
        try await activeUniverse([symbol])
        try await freshAccount()
        _ = try await startPipeline([
            "position-brain": ["interval_s": "0.3"], "harvest-proposer": [:], "heat-gate": [:], "apply-layer": [:],
            "portfolio-gate": [:], "executor": [:],
        ])
        try await submit(try await entryPlan(symbol, long: true, notional: 200))
        try await waitUntil("the entry fills and reaches the ledger", seconds: 30) {
            (Decimal.parse(try await ledger(symbol)?.positionAmt ?? "") ?? 0) != 0
        }
        let opened = try await XCTUnwrapAsync(try await ledger(symbol))
        try await waitUntil("position-brain snapshots the position", seconds: 30) {
            try await bus.keyValue("qt_snapshot").get(PositionSnapshot.self, symbol)?.value.markPrice.isEmpty == false
        }

        var seed = MarketState()
        seed.symbol = symbol
        (seed.sigma, seed.ts, seed.pTrend, seed.pMr, seed.pChop) = (0.004, 0.06, 0.2, 0.3, 0.5)
        seed.barsUsed = 300
        seed.asOfMs = opened.openedAtMs + 3_120_000
        seed.meta.eventTimeMs = seed.asOfMs
        _ = try await bus.publish(OutgoingMessage(seed, subject: Subjects.marketState(symbol), id: "seed-state", producer: "test@market-state"))

        let proposal = try await XCTUnwrapAsync(try await readAll(HarvestProposal.self, subject: Subjects.harvestProposed(symbol), expected: 1).first)
        XCTAssertEqual(proposal.action, .fullClose)
        XCTAssertEqual(proposal.killScore, 0.7559926550200352, accuracy: 1e-9, "the seed's K")
        XCTAssertEqual(proposal.killComponents.regimeFlip, 1)
        try await waitUntil("the close executes on the exchange", seconds: 30) { simulator.exchange.positionAmount(symbol) == 0 }
        try await waitUntil("the ledger goes flat", seconds: 30) { Decimal.parse(try await ledger(symbol)?.positionAmt ?? "") == 0 }
        let blocked = try await readAll(Decision.self, subject: "qt.decision.*.\(symbol)", expected: 6).filter { $0.verdict == .block }
        XCTAssertEqual(blocked.map(\.reason), [], "no gate blocks a kill-score exit")

        let trace = try ChildProcess.run(try binary("qt"), ["trace", proposal.proposalID, "--server", server.url])
        XCTAssertEqual(trace.status, 0, trace.stderr)
        let text = trace.stdout
        let steps = ["proposal   qt.harvest.proposed.\(symbol)", "calibrated  qt.harvest.calibrated.\(symbol)",
                     "plan       qt.plan.sized.\(symbol)", "decision   qt.decision.portfolio-gate.\(symbol)",
                     "plan       qt.plan.approved.\(symbol)", "result     qt.exec.result.\(symbol)", "permit     qt_permits/",
                     "order      qt_orders/qt-", "ledger     qt_ledger/\(symbol)"]
        for step in steps { XCTAssertTrue(text.contains(step), "qt trace lacks \"\(step)\":\n\(text)") }
        let order = steps.compactMap { text.range(of: $0)?.lowerBound }
        XCTAssertTrue(order[0] < order[2] && order[2] < order[5] && order[5] < order[8], "proposal → plan → result → ledger:\n\(text)")
        XCTAssertTrue(text.contains("FULL_CLOSE K=0.756"), text)
        XCTAssertTrue(text.contains("portfolio-gate: PASS PASSED"), text)
        XCTAssertTrue(text.contains("(committed): position 0 "), text)
        XCTAssertTrue(text.contains("used and deleted"), text)
    }
}
