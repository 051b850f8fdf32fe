import Foundation
import Host
import Identity
import Messages
@testable import Plugins
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
        let sent = try XCTUnwrap(out.first)
        XCTAssertEqual(permit?.planDigest, PlanDigest.of(sent), "the permit binds the plan it approved")
        XCTAssertEqual(permit?.planDigest.count, 64)
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

    /// The apply layer's UPDATE_STOP carries the new stop price and no quantity (the stop closes
    /// the whole position): it passes, and one without a stop price is dead-lettered.
    func testAStopMoveWithoutAQuantityPassesAndOneWithoutAStopPriceIsRefused() async throws {
        try await startGate()
        var move = exit(.updateStop, quantity: "")
        move.stopPrice = "95.5"
        try await submit(move)
        let decided = await decisions("portfolio-gate", held)
        XCTAssertEqual(decided.map(\.verdict), [.pass], summary(decided))
        let out = await approved(held)
        XCTAssertEqual(out.map(\.stopPrice), ["95.5"])

        var noPrice = exit(.updateStop, quantity: "")
        noPrice.stopPrice = ""
        try await submit(noPrice)
        let letters = await host.deadLetters
        XCTAssertEqual(letters.count, 1)
        XCTAssertTrue(letters.first?.reason.contains("stop_price is empty") == true, letters.first?.reason ?? "no dead letter")
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

    // MARK: failing closed (issue 17)

    /// Bytes no decoder reads as any message.
    let garbage: [UInt8] = [0xFF, 0xFF, 0xFF, 0x07]

    func testAnExpiredPermitFreesItsSlotOnlyIfNothingTookIt() throws {
        let now: Int64 = 1_000_000
        let held = ["AAAUSDT": String(now - 1), "BBBUSDT": String(now - 1), "CCCUSDT": String(now + 5_000)]
        // AAA's permit ran out and the ledger holds nothing for it: freed. BBB's ran out but its
        // position opened: kept. CCC's permit is alive: kept.
        let slots = try XCTUnwrap(EntrySlots.allot("DDDUSDT", untilMs: now + 60_000, nowMs: now, held: held,
                                                   occupied: ["BBBUSDT"], maxPositions: 3))
        XCTAssertEqual(Set(slots.keys), ["BBBUSDT", "CCCUSDT", "DDDUSDT"])
        XCTAssertNil(try EntrySlots.allot("EEEUSDT", untilMs: now + 60_000, nowMs: now, held: slots, occupied: ["BBBUSDT"], maxPositions: 3),
                     "BBB's position, CCC's and DDD's permits take all three")
        XCTAssertNotNil(try EntrySlots.allot("EEEUSDT", untilMs: now + 60_000, nowMs: now + 70_000, held: slots,
                                             occupied: ["BBBUSDT"], maxPositions: 3), "both permits ran out unused")
        XCTAssertNil(try EntrySlots.allot("EEEUSDT", untilMs: now + 60_000, nowMs: now + 70_000, held: slots,
                                          occupied: ["BBBUSDT", "CCCUSDT", "DDDUSDT"], maxPositions: 3),
                     "permits that ran out after their positions opened free nothing")
    }

    func testAnEntrySlotStateThatDoesNotReadRefusesEntries() async throws {
        try await startGate()
        var broken = PluginState()
        broken.values = ["CCCUSDT": "soon"]
        _ = try await host.kv("qt_state").put("portfolio-gate.entry-slots", broken)
        try await submit(entry())
        var decided = await decisions("portfolio-gate", symbol)
        XCTAssertEqual(decided.map(\.reason), [.unreadableState], summary(decided))
        XCTAssertTrue(decided.first?.detail.contains("\"soon\"") == true, summary(decided))

        host.kv("qt_state").putRaw("portfolio-gate.entry-slots", garbage)
        try await submit(entry())
        decided = await decisions("portfolio-gate", symbol)
        XCTAssertEqual(decided.map(\.reason), [.unreadableState, .unreadableState], summary(decided))
        let letters = await host.deadLetters
        XCTAssertTrue(letters.isEmpty, "a broken state holds entries; it is not the plan's fault")
    }

    func testAnAccountSnapshotThatDoesNotReadRefusesEntriesButNotExits() async throws {
        try await startGate()
        host.kv("qt_snapshot").putRaw("_account", garbage)
        try await submit(entry())
        try await submit(exit())
        let entryReasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(entryReasons, [.unreadableState])
        let exitVerdicts = await decisions("portfolio-gate", held).map(\.verdict)
        XCTAssertEqual(exitVerdicts, [.pass], "exits never read the account")

        var nanRatio = AccountSnapshot()
        nanRatio.marginRatio = .nan
        nanRatio.asOfMs = host.clock.nowMs()
        host.kv("qt_snapshot").putRaw("_account", try nanRatio.serializedBytes())
        try await submit(entry())
        let later = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(later, [.unreadableState, .unreadableState], "a NaN margin ratio is not below the limit")
    }

    func testAnUnreadableLedgerEntryKeepsItsSlot() async throws {
        try await startGate(["max_positions": "2"])
        host.kv("qt_ledger").putRaw("DDDUSDT", garbage)
        try await submit(entry())
        let reasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(reasons, [.maxPositions], "BBB's position and DDD's unreadable entry take both slots")
    }

    /// The view's watch ends (a closed connection); a position opens while no watch runs. The
    /// next entry restarts the watch and counts that position, rather than reading the old view.
    func testTheLedgerViewRestartsItsWatchWhenItEnds() async throws {
        try await startGate(["max_positions": "2"])
        try await submit(entry())
        var reasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(reasons, [.passed], "BBB's position and this permit")
        host.kv("qt_ledger").endWatches()
        try await Task.sleep(for: .milliseconds(200))  // the view's follower sees its watch end
        try await position("DDDUSDT", amount: "1")
        host.clock.advance(byMs: 61_000)
        try await account()
        try await submit(entry("CCCUSDT"))
        reasons = await self.reasons("portfolio-gate", "CCCUSDT")
        XCTAssertEqual(reasons, [.maxPositions], "BBB and DDD hold both slots; a view left on its ended watch would not see DDD")
    }

    func testAnUnreadableUniverseOrPositionSnapshotRefusesEntries() async throws {
        try await startGate()
        host.kv("qt_snapshot").putRaw(symbol, garbage)
        try await submit(entry())
        var reasons = await reasons("portfolio-gate", symbol)
        XCTAssertEqual(reasons, [.unreadableState], "a snapshot that cannot be read holds its symbol's entries")
        host.kv("qt_universe").putRaw("active", garbage)
        try await Task.sleep(for: .milliseconds(200))  // the gate reads the universe from a view that follows the bucket
        try await submit(entry("CCCUSDT"))
        reasons = await self.reasons("portfolio-gate", "CCCUSDT")
        XCTAssertEqual(reasons, [.unreadableState], "no symbol list, no entries")
        try await submit(exit())
        let exits = await decisions("portfolio-gate", held).map(\.verdict)
        XCTAssertEqual(exits, [.pass], "exits read neither")
    }
}
