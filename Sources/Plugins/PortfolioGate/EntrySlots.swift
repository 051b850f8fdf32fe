import Foundation
import Host
import Messages

/// The entry slots (DESIGN.md §5): one `qt_state` key, `portfolio-gate.entry-slots`, listing each
/// symbol that holds a slot with the wall-clock time its entry permit runs out. A slot stays taken
/// while the ledger holds the symbol's position or a claim, or its permit is alive; everything
/// else is dropped when the next claim rewrites the key. Claims are compare-and-set on the one
/// key, so any number of hosts together never hand out more than `maxPositions`.
struct EntrySlots {
    static let stateName = "entry-slots"

    let context: HandlerContext
    let ledger: PluginKV
    let view: LedgerView
    let maxPositions: Int

    /// Takes a slot for `symbol` until `untilMs` (its permit's expiry); false when all are taken.
    /// Positions the ledger holds count whether or not they came through a slot (an adopted one).
    func claim(_ symbol: String, untilMs: Int64, nowMs: Int64) async throws -> Bool {
        let occupied = try await ledgerOccupied()
        return try await StateRounds.rewrite(Self.stateName, context: context) { stored in
            var slots = (stored?.values ?? [:]).filter { held, until in
                (Int64(until) ?? 0) > nowMs || occupied.contains(held)
            }
            let taken = occupied.union(slots.keys)
            if !taken.contains(symbol), taken.count >= maxPositions { return (nil, false) }
            slots[symbol] = String(max(untilMs, Int64(slots[symbol] ?? "") ?? 0))
            var state = PluginState()
            state.values = slots
            state.symbols = slots.keys.sorted()
            return (state, true)
        }
    }

    /// Symbols whose ledger entry holds a position or a claim (an order in flight).
    private func ledgerOccupied() async throws -> Set<String> {
        var occupied = Set<String>()
        let entries = try await view.current(ledger)
        let scan = LedgerPosition.scan(entries)
        occupied.formUnion(scan.open.map(\.symbol))
        occupied.formUnion(entries.filter { !$0.entry.pendingClientOrderID.isEmpty }.map(\.symbol))
        // An entry that cannot be read may hold a position: it keeps its slot.
        occupied.formUnion(scan.unreadable.keys)
        return occupied
    }
}
