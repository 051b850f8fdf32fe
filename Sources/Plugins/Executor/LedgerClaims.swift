import Foundation
import Host
import Messages
import Synchronization

/// One symbol's ledger entry as the executor changes it: every write is a compare-and-set, and a
/// claim (`pending_client_order_id`) marks the one order in flight for the symbol.
///
/// The entry each compare-and-set wrote is kept: the next change starts from it instead of a
/// read, since a write that succeeded is the latest state the executor can know (issue 20, "drop
/// reads that a compare-and-set already implies"). A write by someone else in between (a fill
/// applied for the symbol) makes the next compare-and-set fail; that one reads and retries.
final class LedgerClaims: Sendable {
    enum ClaimOutcome: Equatable {
        case claimed
        case stale(String)
    }

    /// Compare-and-set rounds for writes that must happen (a fill that arrived in between).
    static let attempts = 8

    let ledger: PluginKV
    let symbol: String
    let clientOrderID: String
    private let known = Mutex<(entry: LedgerEntry, revision: UInt64)?>(nil)

    init(ledger: PluginKV, symbol: String, clientOrderID: String) {
        self.ledger = ledger
        self.symbol = symbol
        self.clientOrderID = clientOrderID
    }

    /// Step 3. Exits claim at the plan's revision; entries need a flat entry with no claim. A
    /// claim already held by this client order id (a crash after claiming) is kept.
    ///
    /// `viewed` is the entry as a watched view shows it: the claim is first tried on it, at its
    /// revision, which costs no read. The compare-and-set is the guard: a view that trails the
    /// bucket can only make it fail, and a refusal or a lost compare-and-set on the view is judged
    /// again on the bucket, so the view's lag never refuses a plan.
    func claim(_ plan: Plan, viewed: KeyReading<LedgerEntry>? = nil) async throws -> ClaimOutcome {
        switch viewed {
        case .value(let entry, let revision):
            if try await claim(plan, found: (entry, revision)) == .claimed { return .claimed }
        case .missing:
            if try await claim(plan, found: nil) == .claimed { return .claimed }
        case .unreadable, nil:
            break
        }
        return try await claim(plan, found: try await ledger.get(LedgerEntry.self, symbol))
    }

    private func claim(_ plan: Plan, found: (value: LedgerEntry, revision: UInt64)?) async throws -> ClaimOutcome {
        if let found, found.value.pendingClientOrderID == clientOrderID { return .claimed }
        if let found, !found.value.pendingClientOrderID.isEmpty {
            return .stale("order \(found.value.pendingClientOrderID) is in flight for \(symbol)")
        }
        if plan.kind == .open {
            if let found, try LedgerPosition(symbol: symbol, entry: found.value, revision: found.revision).isOpen {
                return .stale("\(symbol) already holds \(found.value.positionAmt)")
            }
        } else if found?.revision != plan.ledgerRevision {
            return .stale("plan made at ledger revision \(plan.ledgerRevision), the ledger is at \(found?.revision ?? 0)")
        }
        var entry = found?.value ?? LedgerEntry()
        entry.symbol = symbol
        // A symbol's first entry is flat until a fill says otherwise (a refused order leaves it so).
        if entry.positionAmt.isEmpty { entry.positionAmt = "0" }
        entry.pendingClientOrderID = clientOrderID
        entry.pendingPlanID = plan.planID
        do {
            let revision = try await ledger.write(symbol, entry, over: found?.revision)
            known.withLock { $0 = (entry, revision) }
            return .claimed
        } catch is KVConflict {
            return .stale("the ledger of \(symbol) changed while claiming")
        }
    }

    /// Clears this order's claim without applying anything (the order was never sent or refused).
    func release() async throws {
        guard try await ledger.get(LedgerEntry.self, symbol) != nil else { return }  // never claimed: nothing to release
        try await change { entry in
            guard entry.pendingClientOrderID == clientOrderID else { return false }
            entry.pendingClientOrderID = ""
            entry.pendingPlanID = ""
            return true
        }
    }

    /// Step 6: applies `update` and clears the claim in one write. When the claim is already
    /// gone this step ran before (a crash after it): the entry is returned as it is.
    func settle(eventTimeMs: Int64, _ update: @escaping (inout LedgerEntry) throws -> Void) async throws -> (value: LedgerEntry, revision: UInt64) {
        try await change { entry in
            guard entry.pendingClientOrderID == clientOrderID else { return false }
            try update(&entry)
            entry.pendingClientOrderID = ""
            entry.pendingPlanID = ""
            entry.meta.eventTimeMs = eventTimeMs
            return true
        }
    }

    /// Step 7: the protective stop now on the exchange.
    func recordStop(clientAlgoID: String, price: String) async throws {
        try await change { entry in
            guard entry.stopAlgoID != clientAlgoID, Decimal.parse(entry.positionAmt).map({ $0 != 0 }) == true else { return false }
            entry.stopAlgoID = clientAlgoID
            entry.stopPrice = price
            return true
        }
    }

    /// Whether this order's claim is still on the entry.
    func holdsClaim() async throws -> Bool {
        try await claimedEntry() != nil
    }

    /// The entry while this order's claim is on it (the position before its fill), else nil.
    func claimedEntry() async throws -> LedgerEntry? {
        guard let entry = try await entryNow(), entry.pendingClientOrderID == clientOrderID else { return nil }
        return entry
    }

    /// The stop the entry holds now (the one a CLOSE or UPDATE_STOP will cancel).
    func currentStop() async throws -> String {
        try await entryNow()?.stopAlgoID ?? ""
    }

    /// The entry as this executor's last compare-and-set wrote it, or read.
    private func entryNow() async throws -> LedgerEntry? {
        if let written = known.withLock({ $0 }) { return written.entry }
        return try await ledger.get(LedgerEntry.self, symbol)?.value
    }

    /// Read, change, compare-and-set; retried when another write came first. `update` returns
    /// false when nothing needs writing.
    @discardableResult
    private func change(_ update: (inout LedgerEntry) throws -> Bool) async throws -> (value: LedgerEntry, revision: UInt64) {
        for _ in 0..<Self.attempts {
            let found: (value: LedgerEntry, revision: UInt64)
            let written = known.withLock { state in defer { state = nil }; return state }
            if let written {
                found = (written.entry, written.revision)
            } else if let read = try await ledger.get(LedgerEntry.self, symbol) {
                found = read
            } else {
                throw PluginError.transient("qt_ledger/\(symbol) is missing while order \(clientOrderID) holds a claim on it")
            }
            var entry = found.value
            guard try update(&entry) else {
                // "Nothing to write" is judged on the bucket, never on the kept entry alone.
                if written != nil { continue }
                known.withLock { $0 = (found.value, found.revision) }
                return found
            }
            do {
                let revision = try await ledger.update(symbol, entry, expectedRevision: found.revision)
                known.withLock { $0 = (entry, revision) }
                return (entry, revision)
            } catch is KVConflict {
                continue
            }
        }
        throw PluginError.transient("qt_ledger/\(symbol): \(Self.attempts) compare-and-set conflicts in a row")
    }
}
