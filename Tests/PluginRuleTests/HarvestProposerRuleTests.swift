import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// harvest-proposer: one test per rule. The ledger is the only list of positions (R4); a
/// proposal is published when something changed or a minute of event time passed.
final class HarvestProposerRuleTests: RuleTestCase {
    let symbol = "AAAUSDT"
    var openedAtMs: Int64 = 0

    override func setUp() async throws {
        try await super.setUp()
        openedAtMs = eventTimeMs
        try await host.start(HarvestProposerPlugin.registration)
    }

    func openPosition() async throws {
        var entry = LedgerEntry()
        entry.symbol = symbol
        entry.positionAmt = "2"
        entry.entryPrice = "100"
        entry.stopPrice = "98"
        entry.stopDistPct = 0.02
        entry.openedAtMs = openedAtMs
        _ = try await host.kv("qt_ledger").put(symbol, entry)
    }

    func snapshot(mark: String = "101", ageMs: Int64 = 0) async throws {
        var snapshot = PositionSnapshot()
        snapshot.symbol = symbol
        snapshot.positionAmt = "2"
        snapshot.markPrice = mark
        snapshot.asOfMs = host.clock.nowMs() - ageMs
        _ = try await host.kv("qt_snapshot").put(symbol, snapshot)
    }

    /// A market state `afterMs` of event time after the last (a bar by default).
    func bar(afterMs: Int64 = 60_000) async throws {
        eventTimeMs += afterMs
        var state = MarketState()
        state.symbol = symbol
        state.asOfMs = eventTimeMs
        state.sigma = 0.002
        state.ts = 0.5
        (state.pTrend, state.pMr, state.pChop) = (0.6, 0.2, 0.2)
        try await send(state, on: Subjects.marketState(symbol))
    }

    func proposals() async -> [HarvestProposal] { await host.messages(HarvestProposal.self, on: Subjects.harvestProposed(symbol)) }

    func alerts() async -> [Alert] { await host.messages(Alert.self, on: "qt.alert.*") }

    func testNoPositionInTheLedgerNoProposal() async throws {
        try await snapshot()
        try await bar()
        let proposed = await proposals()
        XCTAssertTrue(proposed.isEmpty, "a snapshot alone is not a position (R4)")
    }

    func testAPositionGetsAProposalWithAReplayableID() async throws {
        try await openPosition()
        try await snapshot()
        try await bar()
        let proposed = await proposals()
        let proposal = try XCTUnwrap(proposed.first)
        let revision = try await XCTUnwrapAsync(try await host.kv("qt_ledger").get(LedgerEntry.self, symbol)?.revision)
        XCTAssertEqual(proposal.proposalID, ContentID.content(plugin: "harvest-proposer", kind: "proposal", symbol: symbol,
                                                              eventTimeMs: eventTimeMs, revision: revision))
        XCTAssertEqual(proposal.positionAmt, "2")
        XCTAssertEqual(proposal.markPrice, "101")
        XCTAssertNotEqual(proposal.action, .unspecified)
    }

    func testAnUnchangedProposalWaitsAMinuteOfEventTime() async throws {
        try await openPosition()
        try await snapshot()
        try await bar()
        try await bar(afterMs: 10_000)
        let early = await proposals()
        XCTAssertEqual(early.count, 1, "the same action, K and stop 10 s later: nothing new")
        try await bar(afterMs: 50_000)
        let later = await proposals()
        XCTAssertEqual(later.count, 2, "60 s of event time after the last one")
    }

    func testANewLedgerRevisionIsProposedAtOnce() async throws {
        try await openPosition()
        try await snapshot()
        try await bar()
        try await openPosition()
        try await bar()
        let proposed = await proposals()
        XCTAssertEqual(proposed.count, 2)
        XCTAssertNotEqual(proposed.first?.ledgerRevision, proposed.last?.ledgerRevision)
    }

    func testAMissingSnapshotIsAnAlertOnlyAfterTheGrace() async throws {
        try await openPosition()
        try await bar()
        let early = await alerts()
        XCTAssertTrue(early.isEmpty, "a poll or two after the fill is normal")
        try await bar(afterMs: 180_000)
        let late = await alerts()
        XCTAssertEqual(late.map(\.kind), [.staleInput], "snapshot_grace_s 180 by default")
        let proposed = await proposals()
        XCTAssertTrue(proposed.isEmpty, "no mark, no proposal")
    }

    func testAStaleSnapshotRaisesAnAlertAndStillProposes() async throws {
        try await openPosition()
        try await snapshot(ageMs: 16_000)
        try await bar()
        let raised = await alerts()
        XCTAssertEqual(raised.map(\.kind), [.staleInput], "snapshot_stale_s 15 by default")
        let proposed = await proposals()
        XCTAssertEqual(proposed.count, 1, "an exit with the last known mark beats none")
    }

    func testAMarketStateOnAnotherSymbolsSubjectIsDeadLettered() async throws {
        var state = MarketState()
        state.symbol = "BBBUSDT"
        state.asOfMs = nextEventTime()
        try await send(state, on: Subjects.marketState(symbol))
        let dead = await host.deadLetters
        XCTAssertEqual(dead.map(\.plugin), ["harvest-proposer"])
    }
}
