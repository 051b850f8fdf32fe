import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// portfolio-gate: one test per rule (DESIGN.md §5). Entries (P33) and exits (P26).
final class PortfolioGateRuleTests: RuleTestCase {
    let symbol = "AAAUSDT"
    let held = "BBBUSDT"

    /// A universe of both symbols, a long position in `held` and a fresh, calm account; tests change one fact.
    func startGate(_ settings: [String: String] = [:]) async throws {
        try await activeUniverse([symbol, held, "CCCUSDT"])
        try await position(held, amount: "4")
        try await account()
        try await host.start(PortfolioGatePlugin.registration, settings: settings)
    }

    func entry(_ symbol: String? = nil) -> Plan {
        var plan = Plan()
        plan.meta.eventTimeMs = nextEventTime()
        plan.symbol = symbol ?? self.symbol
        plan.planID = ContentID.hash("rule-entry", plan.symbol, String(eventTimeMs))
        plan.kind = .open
        plan.side = .buy
        plan.quantity = "1"
        plan.leverage = 3
        plan.stopDistPct = 0.02
        plan.permitKind = .p33
        return plan
    }

    func exit(_ kind: PlanKind = .close, side: Messages.OrderSide = .sell, quantity: String = "4", symbol: String? = nil) -> Plan {
        var plan = Plan()
        plan.meta.eventTimeMs = nextEventTime()
        plan.symbol = symbol ?? held
        plan.planID = ContentID.hash("rule-exit", plan.symbol, String(eventTimeMs))
        plan.kind = kind
        plan.side = side
        plan.quantity = quantity
        plan.reduceOnly = true
        plan.permitKind = .p26
        return plan
    }

    func submit(_ plan: Plan) async throws { try await send(plan, on: Subjects.planSized(plan.symbol), id: plan.planID) }

    func approved(_ symbol: String) async -> [Plan] { await plans(Subjects.planApproved(symbol)) }

    func testAnEntryPassesWithAPermitThatExpiresAfterTheTTL() async throws {
        try await startGate()
        let plan = entry()
        try await submit(plan)
        let decided = await decisions("portfolio-gate", symbol)
        XCTAssertEqual(decided.map(\.verdict), [.pass], summary(decided))
        let permit = try await host.kv("qt_permits").get(Permit.self, plan.planID)?.value
        XCTAssertEqual(permit?.kind, .p33)
        XCTAssertEqual(permit?.expiresAtMs, host.clock.nowMs() + 60_000, "permit_ttl_s 60 by default, wall clock")
        let out = await approved(symbol)
        XCTAssertEqual(out.first?.expiresAtMs, permit?.expiresAtMs)
    }

    func testAnEntryWithoutAFreshAccountSnapshotIsBlocked() async throws {
        try await startGate()
        try await account(ageMs: 16_000)
        try await submit(entry())
        let reasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(reasons, [.staleInput], "snapshot_max_age_s 15 by default")
    }

    func testAnEntryAtTheMaximumMarginRatioIsBlocked() async throws {
        try await startGate()
        try await account(marginRatio: 0.5)
        try await submit(entry())
        let reasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(reasons, [.marginRatio], "max_margin_ratio 0.5 by default, inclusive")
    }

    func testAnEntryOnReconcileHoldIsBlocked() async throws {
        var hold = PluginState()
        hold.symbols = [symbol]
        _ = try await host.kv("qt_state").put("position-brain.reconcile", hold)
        try await startGate()
        try await submit(entry())
        let reasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(reasons, [.reconcileHold])
    }

    func testAnEntryOnAHeldSymbolIsBlocked() async throws {
        try await startGate()
        try await submit(entry(held))
        let reasons = await reasons("portfolio-gate", held)
        XCTAssertEqual(reasons, [.positionExists], "no pyramiding")
    }

    func testAnEntryOutsideTheUniverseIsBlocked() async throws {
        try await startGate()
        try await submit(entry("ZZZUSDT"))
        let reasons = await reasons("portfolio-gate", "ZZZUSDT")
        XCTAssertEqual(reasons, [.notInUniverse])
    }

    func testEntriesBeyondTheMaximumPositionsAreBlockedUntilAPermitExpires() async throws {
        try await startGate(["max_positions": "2"])
        try await submit(entry())
        try await submit(entry("CCCUSDT"))
        let first = await reasons("portfolio-gate", symbol)
        let second = await reasons("portfolio-gate", "CCCUSDT")
        XCTAssertEqual(first, [.passed], "the held position takes one slot, this entry the other")
        XCTAssertEqual(second, [.maxPositions])
        host.clock.advance(byMs: 61_000)
        try await account()
        try await submit(entry("CCCUSDT"))
        let later = await reasons("portfolio-gate", "CCCUSDT")
        XCTAssertEqual(later, [.maxPositions, .passed], "the first entry's permit ran out without a position")
    }

    func testReducingBlocksEntries() async throws {
        try await startGate()
        try await tradingState(.reducing)
        try await submit(entry())
        let reasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(reasons, [.tradingReducing])
    }

    func testACloseOfTheWholePositionPasses() async throws {
        try await startGate()
        try await tradingState(.reducing)
        try await submit(exit())
        let decided = await decisions("portfolio-gate", held)
        XCTAssertEqual(decided.map(\.verdict), [.pass], summary(decided))
        let out = await approved(held)
        XCTAssertEqual(out.first?.quantity, "4")
    }

    func testAnExitOnTheWrongSideIsBlocked() async throws {
        try await startGate()
        try await submit(exit(side: .buy))
        let reasons = await reasons("portfolio-gate", held)
        XCTAssertEqual(reasons, [.wrongSide])
    }

    func testAnExitWithoutAPositionIsBlocked() async throws {
        try await startGate()
        try await submit(exit(symbol: symbol))
        let reasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(reasons, [.noPosition])
    }

    func testAnOversizedReduceIsClampedToThePosition() async throws {
        try await startGate()
        try await submit(exit(.reduce, quantity: "12"))
        let decided = await decisions("portfolio-gate", held)
        XCTAssertEqual(decided.map(\.verdict), [.modify], summary(decided))
        XCTAssertEqual(decided.map(\.reason), [.quantityClamped])
        let out = await approved(held)
        XCTAssertEqual(out.first?.quantity, "4")
    }

    func testHaltedBlocksExitsToo() async throws {
        try await startGate()
        try await tradingState(.halted)
        try await submit(exit())
        let reasons = await reasons("portfolio-gate", held)
        XCTAssertEqual(reasons, [.tradingHalted], "the one gate an exit does not pass (R6)")
    }
}
