import Bus
import Exchange
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// The apply layer and the heat gate on a real bus, fed calibrated proposals the test writes.
final class ApplyLayerTests: ExitLayerTestCase {
    /// A minute boundary in event time, so +0…59 s fall in one plan bucket.
    let minute: Int64 = 1_800_000_000_000 - 1_800_000_000_000 % 60_000
    var symbol: String { simulator.exchange.symbols[3] }

    func proposal(_ action: HarvestAction, amount: Decimal, revision: UInt64 = 7, eventTimeMs: Int64,
                  reasons: [ReasonCode] = [.harvestTranche]) throws -> HarvestProposal {
        var proposal = HarvestProposal()
        proposal.symbol = symbol
        proposal.proposalID = ContentID.hash("test-proposal", symbol, String(eventTimeMs), String(revision))
        proposal.ledgerRevision = revision
        proposal.action = action
        proposal.killScore = 0.3
        proposal.reasons = reasons
        proposal.side = amount > 0 ? .long : .short
        proposal.positionAmt = amount.plainString
        proposal.markPrice = try XCTUnwrap(simulator.exchange.mark(symbol)).plainString
        proposal.meta.eventTimeMs = eventTimeMs
        return proposal
    }

    func publish(_ proposal: HarvestProposal, calibrated: HarvestAction? = nil, mode: CalibrationMode = .enforce, id: String) async throws {
        var message = CalibratedProposal()
        message.proposal = proposal
        message.calibratedAction = calibrated ?? proposal.action
        message.bucket = .cold
        message.mode = mode
        message.meta.eventTimeMs = proposal.meta.eventTimeMs
        _ = try await bus.publish(OutgoingMessage(message, subject: Subjects.harvestCalibrated(symbol), id: id, producer: "test@heat-gate"))
    }

    func decisions(_ expected: Int) async throws -> [Decision] {
        let read = try await readAll(Decision.self, subject: "qt.decision.apply-layer.\(symbol)", expected: expected)
        XCTAssertEqual(read.count, expected, "decisions: \(read.map { "\($0.verdict) \($0.reason)" })")
        return read
    }

    func setTradingState(_ state: TradingState) async throws {
        var control = Control()
        control.tradingState = state
        control.setBy = "test"
        try await bus.keyValue("qt_control").put("trading_state", message: control)
    }

    /// One amount worth about `notional` USDT, on the symbol's step.
    func amount(notional: Decimal) async throws -> Decimal {
        let filters = try await client.symbolFilters()
        let mark = try XCTUnwrap(simulator.exchange.mark(symbol))
        return try XCTUnwrap(filters[symbol]).roundQuantityDown(notional / mark)
    }

    func testTheSameProposalFiveTimesInAMinuteMakesOnePlanAndTheNextMinuteAnother() async throws {
        _ = try await startPipeline(["apply-layer": [:]])
        let size = try await amount(notional: 1_000)
        for copy in 0..<5 {
            try await publish(try proposal(.fullClose, amount: size, eventTimeMs: minute + Int64(copy) * 10_000), id: "copy-\(copy)")
        }
        let first = try await decisions(5)
        XCTAssertEqual(first.filter { $0.verdict == .pass }.count, 1)
        XCTAssertEqual(first.filter { $0.verdict == .skip && $0.reason == .duplicate }.count, 4)
        var plans = try await readAll(Plan.self, subject: Subjects.planSized(symbol), expected: 1)
        let stored = try await count(Subjects.planSized(symbol))
        XCTAssertEqual(stored, 1, "five repeats within a minute make one plan")
        XCTAssertEqual(plans.first?.kind, .close)
        XCTAssertEqual(plans.first?.quantity, size.plainString)
        XCTAssertEqual(plans.first?.side, .sell)

        // The plan did not execute (the ledger revision is still 7): the next minute plans again.
        try await publish(try proposal(.fullClose, amount: size, eventTimeMs: minute + 61_000), id: "next-minute")
        _ = try await decisions(6)
        plans = try await readAll(Plan.self, subject: Subjects.planSized(symbol), expected: 2)
        XCTAssertEqual(plans.count, 2)
        XCTAssertNotEqual(plans[0].planID, plans[1].planID)
        XCTAssertEqual(plans[1].ledgerRevision, 7)
    }

    func testAnExitBlockedWhileHaltedIsPlannedTheMinuteAfterResume() async throws {
        try await setTradingState(.halted)
        _ = try await startPipeline(["apply-layer": [:]])
        let size = try await amount(notional: 1_000)
        try await publish(try proposal(.fullClose, amount: size, eventTimeMs: minute), id: "halted")
        let blocked = try await decisions(1)
        XCTAssertEqual(blocked.first?.verdict, .block)
        XCTAssertEqual(blocked.first?.reason, .tradingHalted)
        let stored = try await count(Subjects.planSized(symbol))
        XCTAssertEqual(stored, 0, "HALTED blocks exits too (the kill switch)")

        try await setTradingState(.reducing)
        try await publish(try proposal(.fullClose, amount: size, eventTimeMs: minute + 60_000), id: "reducing")
        let passed = try await decisions(2)
        XCTAssertEqual(passed.last?.verdict, .pass, "REDUCING lets exits through")
        let plans = try await readAll(Plan.self, subject: Subjects.planSized(symbol), expected: 1)
        XCTAssertEqual(plans.first?.kind, .close)
        XCTAssertEqual(plans.first?.reduceOnly, true)
    }

    func testPartialsReduceByTheTrancheAndDustBecomesAClose() async throws {
        _ = try await startPipeline(["apply-layer": [:]])
        let allFilters = try await client.symbolFilters()
        let filters = try XCTUnwrap(allFilters[symbol])
        let size = try await amount(notional: 1_000)
        try await publish(try proposal(.partial25, amount: size, eventTimeMs: minute), id: "p25")
        // Just above the minimum notional: half of it would leave dust.
        let mark = try XCTUnwrap(simulator.exchange.mark(symbol))
        let small = filters.roundQuantityDown(filters.minNotional * 3 / 2 / mark + filters.stepSize)
        try await publish(try proposal(.partial50, amount: -small, revision: 8, eventTimeMs: minute), id: "p50-dust")
        try await publish(try proposal(.hold, amount: size, revision: 9, eventTimeMs: minute), id: "hold")
        let made = try await decisions(3)
        XCTAssertEqual(made.map(\.verdict), [.pass, .modify, .skip])
        XCTAssertEqual(made.map(\.reason), [.passed, .dust, .hold])
        let plans = try await readAll(Plan.self, subject: Subjects.planSized(symbol), expected: 2)
        XCTAssertEqual(plans.first?.kind, .reduce)
        XCTAssertEqual(plans.first?.reducePercent, 25)
        XCTAssertEqual(plans.first?.quantity, filters.roundQuantityDown(size / 4).plainString)
        XCTAssertEqual(plans.last?.kind, .close)
        XCTAssertEqual(plans.last?.quantity, small.plainString)
        XCTAssertEqual(plans.last?.side, .buy, "a short is closed by buying")
    }

    func testAnUnspecifiedActionIsDeadLetteredNotPlanned() async throws {
        _ = try await startPipeline(["apply-layer": [:]])
        let size = try await amount(notional: 1_000)
        var bad = try proposal(.fullClose, amount: size, eventTimeMs: minute)
        bad.action = .unspecified
        try await publish(bad, calibrated: .fullClose, id: "unspecified")
        let letters = try await readAll(DeadLetter.self, subject: "qt.dlq.>", expected: 1)
        let partition = try Partitioning(count: Partitioning.defaultCount).partition(of: symbol)
        XCTAssertEqual(letters.first?.consumer, "apply-layer__calibrated__p\(partition)", "the durable of the symbol's partition")
        XCTAssertTrue(letters.first?.error.contains("UNSPECIFIED") ?? false, letters.first?.error ?? "")
        let stored = try await count(Subjects.planSized(symbol))
        XCTAssertEqual(stored, 0)
    }

    // MARK: heat gate + apply layer

    /// A hot portfolio: the symbol's snapshot and market state make heat ≫ 0.65.
    func writeHotPortfolio(size: Decimal) async throws {
        let snapshots = try await bus.keyValue("qt_snapshot")
        var position = PositionSnapshot()
        position.symbol = symbol
        position.positionAmt = size.plainString
        position.markPrice = try XCTUnwrap(simulator.exchange.mark(symbol)).plainString
        try await snapshots.put(symbol, message: position)
        var account = AccountSnapshot()
        account.totalMarginBalance = "100"
        try await snapshots.put("_account", message: account)
        var state = MarketState()
        state.symbol = symbol
        state.sigma = 0.01
        try await bus.keyValue("qt_marketstate").put(symbol, message: state)
    }

    func publishProposal(_ proposal: HarvestProposal, id: String) async throws {
        _ = try await bus.publish(OutgoingMessage(proposal, subject: Subjects.harvestProposed(symbol), id: id, producer: "test@harvest"))
    }

    func testEnforcedCalibrationTakesMoreOffAHotPortfolioButNeverTouchesAKillScoreExit() async throws {
        let size = try await amount(notional: 1_000)
        try await writeHotPortfolio(size: size)
        _ = try await startPipeline(["heat-gate": [:], "apply-layer": [:]])
        let partial = try proposal(.partial25, amount: size, revision: 1, eventTimeMs: minute)
        try await publishProposal(partial, id: "partial")
        let kill = try proposal(.fullClose, amount: size, revision: 2, eventTimeMs: minute, reasons: [.killScore, .regimeFlip])
        try await publishProposal(kill, id: "kill")

        let calibrated = try await readAll(CalibratedProposal.self, subject: Subjects.harvestCalibrated(symbol), expected: 2)
        XCTAssertEqual(calibrated.map(\.bucket), [.hot, .hot])
        XCTAssertGreaterThan(calibrated.first?.heat ?? 0, 0.65)
        XCTAssertEqual(calibrated.map(\.calibratedAction), [.partial75, .fullClose])
        XCTAssertEqual(calibrated.map(\.proposal.action), [.partial25, .fullClose], "the original action stays beside the calibrated one")
        let plans = try await readAll(Plan.self, subject: Subjects.planSized(symbol), expected: 2)
        XCTAssertEqual(plans.map(\.reducePercent), [75, 100])
    }

    func testShadowCalibrationLetsTheProposedActionFlowOn() async throws {
        let size = try await amount(notional: 1_000)
        try await writeHotPortfolio(size: size)
        _ = try await startPipeline(["heat-gate": ["calibration": "shadow"], "apply-layer": [:]])
        try await publishProposal(try proposal(.partial25, amount: size, revision: 1, eventTimeMs: minute), id: "partial")
        let calibrated = try await readAll(CalibratedProposal.self, subject: Subjects.harvestCalibrated(symbol), expected: 1)
        XCTAssertEqual(calibrated.first?.mode, .shadow)
        XCTAssertEqual(calibrated.first?.calibratedAction, .partial75, "shadow still records what enforce would do")
        let plans = try await readAll(Plan.self, subject: Subjects.planSized(symbol), expected: 1)
        XCTAssertEqual(plans.first?.kind, .reduce)
        XCTAssertEqual(plans.first?.reducePercent, 25, "in shadow mode the proposed PARTIAL_25 flows on")
    }

    func testMissingMarketStateMakesHeatUnknownAndPassesTheProposalUnchanged() async throws {
        let size = try await amount(notional: 1_000)
        try await writeHotPortfolio(size: size)
        try await bus.keyValue("qt_marketstate").delete(symbol)
        _ = try await startPipeline(["heat-gate": [:]])
        try await publishProposal(try proposal(.partial25, amount: size, revision: 1, eventTimeMs: minute), id: "partial")
        let calibrated = try await readAll(CalibratedProposal.self, subject: Subjects.harvestCalibrated(symbol), expected: 1)
        XCTAssertEqual(calibrated.first?.bucket, .unknown)
        XCTAssertEqual(calibrated.first?.reasons, [.heatUnknown])
        XCTAssertEqual(calibrated.first?.calibratedAction, .partial25)
    }
}
