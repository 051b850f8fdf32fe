import Foundation
@testable import Host
@testable import InMemoryHost
import Messages
@testable import Plugins
import XCTest

/// The executor's claim tried on the entry a watched view shows (issue 20: no read when the view is
/// current). The compare-and-set is the guard: a view that trails the bucket may cost a read, never
/// a wrong claim and never a refusal the bucket would not give.
final class LedgerClaimsTests: XCTestCase {
    let symbol = "ETHUSDT"
    let store = MemoryKeyValueStore(name: "qt_ledger", clock: ManualClock(nowMs: 1_000))
    var ledger: PluginKV {
        PluginKV(store: store, plugin: "executor", canWrite: true, shadow: false, fence: nil, journal: nil, instance: "test")
    }

    func entry(position: String = "0", claimedBy order: String = "") -> LedgerEntry {
        var entry = LedgerEntry()
        entry.symbol = symbol
        entry.positionAmt = position
        entry.entryPrice = position == "0" ? "0" : "2000"
        entry.pendingClientOrderID = order
        return entry
    }

    func plan(_ kind: PlanKind = .open, revision: UInt64 = 0) -> Plan {
        var plan = Plan()
        plan.planID = "plan-\(kind)-\(revision)"
        plan.symbol = symbol
        plan.kind = kind
        plan.ledgerRevision = revision
        return plan
    }

    func claims(_ order: String = "qt-ours") -> LedgerClaims { LedgerClaims(ledger: ledger, symbol: symbol, clientOrderID: order) }

    func held() async throws -> String { try await ledger.get(LedgerEntry.self, symbol)?.value.pendingClientOrderID ?? "" }

    func testACurrentViewClaimsAtItsRevision() async throws {
        let revision = try await ledger.write(symbol, entry(), over: nil)
        let outcome = try await claims().claim(plan(), viewed: .value(entry(), revision: revision))
        XCTAssertEqual(outcome, .claimed)
        let heldBy = try await held()
        XCTAssertEqual(heldBy, "qt-ours")
        let missing = try await claims("qt-second").claim(plan(), viewed: .missing)
        XCTAssertEqual(missing, .stale("order qt-ours is in flight for ETHUSDT"),
                       "a view that has not seen the entry yet loses the create; the bucket's claim decides")
    }

    func testAViewThatStillShowsAnotherClaimDoesNotRefuse() async throws {
        let claimedAt = try await ledger.write(symbol, entry(claimedBy: "qt-other"), over: nil)
        _ = try await ledger.update(symbol, entry(), expectedRevision: claimedAt)  // that order settled flat
        let outcome = try await claims().claim(plan(), viewed: .value(entry(claimedBy: "qt-other"), revision: claimedAt))
        XCTAssertEqual(outcome, .claimed, "the refusal the lagging view suggests is judged again on the bucket")
        let heldBy = try await held()
        XCTAssertEqual(heldBy, "qt-ours")
    }

    func testAViewThatMissedAnotherClaimLosesTheCompareAndSet() async throws {
        let flatAt = try await ledger.write(symbol, entry(), over: nil)
        _ = try await ledger.update(symbol, entry(claimedBy: "qt-other"), expectedRevision: flatAt)
        let outcome = try await claims().claim(plan(), viewed: .value(entry(), revision: flatAt))
        XCTAssertEqual(outcome, .stale("order qt-other is in flight for ETHUSDT"))
        let heldBy = try await held()
        XCTAssertEqual(heldBy, "qt-other", "the other order's claim stays")
    }

    func testAnExitClaimsAtThePlansRevisionEvenWhenTheViewTrails() async throws {
        let openedAt = try await ledger.write(symbol, entry(position: "1"), over: nil)
        var moved = entry(position: "1")
        moved.stopPrice = "1900"
        let current = try await ledger.update(symbol, moved, expectedRevision: openedAt)
        let outcome = try await claims().claim(plan(.close, revision: current), viewed: .value(entry(position: "1"), revision: openedAt))
        XCTAssertEqual(outcome, .claimed)
        let stale = try await claims("qt-late").claim(plan(.close, revision: openedAt), viewed: .value(entry(position: "1"), revision: openedAt))
        XCTAssertEqual(stale, .stale("order qt-ours is in flight for ETHUSDT"), "a plan made before the last change stays stale")
    }
}
