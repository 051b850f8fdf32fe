import Exchange
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// apply-layer: one test per rule (DESIGN.md §5): calibrated exit proposals become reduce-only
/// plans on `qt.plan.sized.<SYM>`, rounded to the simulator's filters.
final class ApplyLayerRuleTests: RuleTestCase {
    var symbol: String { symbols[0] }

    override func setUp() async throws {
        try await super.setUp()
        let exchanges = try await startSimulator()
        try await host.start(ApplyLayerPlugin.registration(exchanges: exchanges), exchange: ExchangeSettings(baseURL: simulator!.baseURL))
    }

    /// A proposal for a long position of `amount` at the simulator's mark, enforced as calibrated.
    func calibrated(_ action: HarvestAction, proposed: HarvestAction? = nil, mode: CalibrationMode = .enforce, amount: String = "10",
                    newStop: String = "") throws -> CalibratedProposal {
        var proposal = HarvestProposal()
        proposal.meta.eventTimeMs = nextEventTime()
        proposal.symbol = symbol
        proposal.proposalID = ContentID.hash("rule-proposal", symbol, String(eventTimeMs))
        proposal.ledgerRevision = 7
        proposal.action = proposed ?? action
        proposal.positionAmt = amount
        proposal.markPrice = try mark(symbol).plainString
        proposal.newStopPrice = newStop
        var calibrated = CalibratedProposal()
        calibrated.meta.eventTimeMs = proposal.meta.eventTimeMs
        calibrated.proposal = proposal
        calibrated.calibratedAction = action
        calibrated.mode = mode
        return calibrated
    }

    func apply(_ calibrated: CalibratedProposal) async throws {
        try await send(calibrated, on: Subjects.harvestCalibrated(symbol), id: calibrated.proposal.proposalID)
    }

    func made() async -> [Plan] { await plans(Subjects.planSized(symbol)) }

    func testAFullCloseIsAReduceOnlyCloseOfTheWholePosition() async throws {
        try await apply(try calibrated(.fullClose, amount: "-10"))
        let plan = await made().first
        XCTAssertEqual(plan?.kind, .close)
        XCTAssertEqual(plan?.side, .buy)
        XCTAssertEqual(plan?.quantity, "10")
        XCTAssertEqual(plan?.reduceOnly, true)
        XCTAssertEqual(plan?.permitKind, .p26)
        XCTAssertEqual(plan?.ledgerRevision, 7)
        XCTAssertEqual(plan?.expiresAtMs, host.clock.nowMs() + 60_000, "plan_ttl_s 60 by default, wall clock")
    }

    func testAPartialIsThatShareRoundedDownToTheStep() async throws {
        try await apply(try calibrated(.partial25, amount: "101"))
        let plan = await made().first
        XCTAssertEqual(plan?.kind, .reduce)
        let quantity = try XCTUnwrap(Decimal.parse(plan?.quantity ?? ""))
        XCTAssertLessThanOrEqual(quantity, Decimal(string: "25.25")!)
        XCTAssertGreaterThan(quantity, 24, "rounded down to the step, not to zero or the whole")
        let reasons = await reasons("apply-layer", symbol)
        XCTAssertEqual(reasons, [.passed])
    }

    func testAPartialThatWouldLeaveDustClosesTheWholePosition() async throws {
        let filters = try await XCTUnwrapAsync(try await BinanceFutures(config: ExchangeConfig(baseURL: simulator!.baseURL), credentials: nil)
            .symbolFilters()[symbol])
        let tiny = (filters.minQty * 3).plainString
        try await apply(try calibrated(.partial75, amount: tiny))
        let decided = await decisions("apply-layer", symbol)
        XCTAssertEqual(decided.map(\.verdict), [.modify], summary(decided))
        XCTAssertEqual(decided.map(\.reason), [.dust])
        let plan = await made().first
        XCTAssertEqual(plan?.kind, .close)
        XCTAssertEqual(plan?.quantity, tiny)
    }

    func testAStopUpdateIsRoundedToTheTickAwayFromThePrice() async throws {
        let stop = try mark(symbol) * Decimal(0.97) + Decimal(string: "0.0000001")!
        try await apply(try calibrated(.updateSl, newStop: stop.plainString))
        let plan = await made().first
        XCTAssertEqual(plan?.kind, .updateStop)
        let rounded = try XCTUnwrap(Decimal.parse(plan?.stopPrice ?? ""))
        XCTAssertLessThanOrEqual(rounded, stop, "a long's stop rounds down")
        XCTAssertGreaterThan(rounded, stop * Decimal(0.999))
    }

    func testHoldMakesNoPlan() async throws {
        try await apply(try calibrated(.hold, proposed: .fullClose))
        let reasons = await reasons("apply-layer", symbol)
        XCTAssertEqual(reasons, [.hold], "enforce mode acts on the calibrated action")
        let plans = await made()
        XCTAssertTrue(plans.isEmpty)
    }

    func testShadowCalibrationActsOnTheProposedAction() async throws {
        try await apply(try calibrated(.hold, proposed: .fullClose, mode: .shadow))
        let plan = await made().first
        XCTAssertEqual(plan?.kind, .close)
    }

    func testTheSameExitTwiceInAMinuteMakesOnePlan() async throws {
        let first = try calibrated(.fullClose)
        var again = first
        again.proposal.proposalID += "-again"
        try await apply(first)
        try await apply(again)
        let reasons = await reasons("apply-layer", symbol)
        XCTAssertEqual(reasons, [.passed, .duplicate])
        let plans = await made()
        XCTAssertEqual(plans.count, 1)
    }

    func testHaltedBlocksAnExit() async throws {
        try await tradingState(.halted)
        try await apply(try calibrated(.fullClose))
        let reasons = await reasons("apply-layer", symbol)
        XCTAssertEqual(reasons, [.tradingHalted])
    }

    func testReducingLetsAnExitThrough() async throws {
        try await tradingState(.reducing)
        try await apply(try calibrated(.fullClose))
        let reasons = await reasons("apply-layer", symbol)
        XCTAssertEqual(reasons, [.passed], "R6: only HALTED stops an exit")
    }
}

func XCTUnwrapAsync<T>(_ expression: @autoclosure () async throws -> T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    let value = try await expression()
    return try XCTUnwrap(value, file: file, line: line)
}
