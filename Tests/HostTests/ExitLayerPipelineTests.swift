import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Messages
import Plugins
import XCTest

/// The exit layer end to end: simulator → market-feed → market-state → harvest-proposer (with
/// position-brain's snapshots) → heat-gate → apply-layer, in one host on a real nats-server.
final class ExitLayerPipelineTests: ExitLayerTestCase {
    override func configure(_ config: inout SimulatorConfig) {
        config.barMs = 300
    }

    /// R4 and the seed's incident chain: 45 ledger positions all get proposals, and the one whose
    /// market flips regime gets FULL_CLOSE (K ≥ 0.6, KILL_SCORE + REGIME_FLIP) that the heat gate
    /// carries unchanged and the apply layer turns into a CLOSE plan.
    func testEveryLedgerPositionGetsProposalsAndARegimeFlipEndsInAClosePlan() async throws {
        let symbols = Array(simulator.exchange.symbols.prefix(45))
        let flipped = symbols[7]
        simulator.exchange.force(symbol: flipped, regime: .meanReverting, bars: 5_000)
        var ledger: [String: LedgerEntry] = [:]
        for (index, symbol) in symbols.enumerated() {
            ledger[symbol] = try await openPosition(symbol, long: index % 2 == 0)
        }
        _ = try await startPipeline([
            "market-feed": ["interval_s": "0.3"],
            "market-state": [:],
            "position-brain": ["interval_s": "0.5"],
            "harvest-proposer": [:],
            "heat-gate": [:],
            "apply-layer": [:],
        ])

        let proposals = try await read(HarvestProposal.self, subject: "qt.harvest.proposed.*", seconds: 150) { read in
            Set(read.map(\.symbol)).count == symbols.count
                && read.contains { $0.symbol == flipped && $0.action == .fullClose }
        }
        let covered = Set(proposals.map(\.symbol))
        XCTAssertEqual(covered, Set(symbols), "positions without a proposal: \(Set(symbols).subtracting(covered).sorted())")
        for proposal in proposals {
            let entry = try XCTUnwrap(ledger[proposal.symbol])
            XCTAssertEqual(proposal.positionAmt, Decimal.parse(entry.positionAmt)?.plainString)
            XCTAssertGreaterThan(proposal.ledgerRevision, 0)
        }

        let close = try XCTUnwrap(proposals.first { $0.symbol == flipped && $0.action == .fullClose },
                                  "no FULL_CLOSE for \(flipped); its actions: \(proposals.filter { $0.symbol == flipped }.map(\.action))")
        XCTAssertGreaterThanOrEqual(close.killScore, 0.6)
        XCTAssertEqual(close.killComponents.regimeFlip, 1)
        XCTAssertTrue(close.reasons.contains(.killScore) && close.reasons.contains(.regimeFlip), "\(close.reasons)")

        let calibrated = try await read(CalibratedProposal.self, subject: Subjects.harvestCalibrated(flipped), seconds: 30) {
            $0.contains { $0.proposal.proposalID == close.proposalID }
        }
        let carried = try XCTUnwrap(calibrated.first { $0.proposal.proposalID == close.proposalID })
        var original = close
        original.meta = carried.proposal.meta
        XCTAssertEqual(carried.proposal, original, "the heat gate must carry the proposal unchanged (R1)")
        XCTAssertEqual(carried.proposal.meta.id, close.meta.id)
        XCTAssertEqual(carried.calibratedAction, .fullClose, "a KILL_SCORE exit is never calibrated (R6)")
        XCTAssertEqual(carried.mode, .enforce)

        let plans = try await read(Plan.self, subject: Subjects.planSized(flipped), seconds: 30) {
            $0.contains { $0.origin == close.proposalID }
        }
        let plan = try XCTUnwrap(plans.first { $0.origin == close.proposalID }, "no plan from the FULL_CLOSE proposal")
        XCTAssertEqual(plan.kind, .close)
        XCTAssertTrue(plan.reduceOnly)
        XCTAssertEqual(plan.quantity, Decimal.parse(close.positionAmt).map { abs($0).plainString })
        XCTAssertEqual(plan.side, close.side == .long ? .sell : .buy)
        XCTAssertEqual(plan.ledgerRevision, close.ledgerRevision)
        XCTAssertEqual(plan.permitKind, .p26)
        XCTAssertGreaterThanOrEqual(plan.killScore, 0.6, "the kill score travels with the exit; nothing gates on it (R6)")
        print("exit pipeline: \(proposals.count) proposals for \(covered.count) positions; close plan \(plan.planID)")
    }
}
