import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// heat-gate: one test per rule (DESIGN.md §6.3). Heat = Σ|notional|·σ·√1440 / equity; with
/// equity 1,000 and σ 0.01, 2,000 USDT of exposure is HOT (0.76) and 100 USDT is COLD (0.04).
final class HeatGateRuleTests: RuleTestCase {
    let symbol = "AAAUSDT"

    func startGate(calibration: String = "enforce", exposure amount: String?) async throws {
        if let amount {
            var account = AccountSnapshot()
            account.totalMarginBalance = "1000"
            account.asOfMs = host.clock.nowMs()
            _ = try await host.kv("qt_snapshot").put("_account", account)
            var snapshot = PositionSnapshot()
            snapshot.symbol = symbol
            snapshot.positionAmt = amount
            snapshot.markPrice = "100"
            _ = try await host.kv("qt_snapshot").put(symbol, snapshot)
            var state = MarketState()
            state.symbol = symbol
            state.sigma = 0.01
            _ = try await host.kv("qt_marketstate").put(symbol, state)
        }
        try await host.start(HeatGatePlugin.registration, settings: ["calibration": calibration])
    }

    func propose(_ action: HarvestAction, reasons: [ReasonCode] = []) async throws {
        var proposal = HarvestProposal()
        proposal.meta.eventTimeMs = nextEventTime()
        proposal.symbol = symbol
        proposal.proposalID = ContentID.hash("rule-harvest", symbol, String(eventTimeMs))
        proposal.action = action
        proposal.reasons = reasons
        try await send(proposal, on: Subjects.harvestProposed(symbol), id: proposal.proposalID)
    }

    func calibrated() async -> [CalibratedProposal] { await host.messages(CalibratedProposal.self, on: Subjects.harvestCalibrated(symbol)) }

    func testHotHeatTakesMoreOffTheTable() async throws {
        try await startGate(exposure: "20")
        try await propose(.partial25)
        let out = await calibrated().first
        XCTAssertEqual(out?.bucket, .hot)
        XCTAssertEqual(out?.calibratedAction, .partial75)
        XCTAssertEqual(out?.proposal.action, .partial25, "the proposal travels unchanged beside the calibrated action")
        let decided = await decisions("heat-gate", symbol)
        XCTAssertEqual(decided.map(\.verdict), [.modify], summary(decided))
        XCTAssertEqual(decided.map(\.reason), [.heatCalibrated])
    }

    func testColdHeatLeavesTheProposal() async throws {
        try await startGate(exposure: "1")
        try await propose(.partial25)
        let out = await calibrated().first
        XCTAssertEqual(out?.bucket, .cold)
        XCTAssertEqual(out?.calibratedAction, .partial25)
        let reasons = await reasons("heat-gate", symbol)
        XCTAssertEqual(reasons, [.passed])
    }

    func testAKillScoreExitIsNeverCalibrated() async throws {
        try await startGate(exposure: "20")
        try await propose(.partial25, reasons: [.killScore])
        let out = await calibrated().first
        XCTAssertEqual(out?.bucket, .hot)
        XCTAssertEqual(out?.calibratedAction, .partial25, "R6")
    }

    func testUnknownHeatPassesTheProposalThrough() async throws {
        try await startGate(exposure: nil)
        try await propose(.partial50)
        let out = await calibrated().first
        XCTAssertEqual(out?.bucket, .unknown)
        XCTAssertEqual(out?.calibratedAction, .partial50, "an exit is never held back for want of heat")
        let reasons = await reasons("heat-gate", symbol)
        XCTAssertEqual(reasons, [.heatUnknown])
    }

    func testShadowModeIsRecordedOnTheCalibratedProposal() async throws {
        try await startGate(calibration: "shadow", exposure: "20")
        try await propose(.partial25)
        let out = await calibrated().first
        XCTAssertEqual(out?.mode, .shadow)
        XCTAssertEqual(out?.calibratedAction, .partial75)
    }

    func testHeatIsReusedForRefreshMsThenReadAgain() async throws {
        try await startGate(exposure: "1")
        try await propose(.partial25)
        var snapshot = PositionSnapshot()
        snapshot.symbol = symbol
        snapshot.positionAmt = "20"
        snapshot.markPrice = "100"
        _ = try await host.kv("qt_snapshot").put(symbol, snapshot)
        try await propose(.partial25)
        host.clock.advance(byMs: 1_001)
        try await propose(.partial25)
        let buckets = await calibrated().map(\.bucket)
        XCTAssertEqual(buckets, [.cold, .cold, .hot], "refresh_ms 1000 by default")
    }

    func testAProposalWithoutAnActionIsDeadLettered() async throws {
        try await startGate(exposure: "1")
        try await propose(.unspecified)
        let dead = await host.deadLetters
        XCTAssertEqual(dead.count, 1)
        let out = await calibrated()
        XCTAssertTrue(out.isEmpty)
    }
}
