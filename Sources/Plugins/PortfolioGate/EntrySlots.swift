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
    let rounds: StateRounds
    let view: LedgerView
    let maxPositions: Int

    /// Takes a slot for `symbol` until `untilMs` (its permit's expiry); false when all are taken.
    /// Positions the ledger holds count whether or not they came through a slot (an adopted one).
    func claim(_ symbol: String, untilMs: Int64, nowMs: Int64) async throws -> Bool {
        let occupied = try await view.read(context).occupied
        return try await rounds.rewrite(Self.stateName, context: context) { stored in
            guard let slots = try Self.allot(symbol, untilMs: untilMs, nowMs: nowMs, held: stored?.values ?? [:],
                                             occupied: occupied, maxPositions: maxPositions) else { return (nil, false) }
            var state = PluginState()
            state.values = slots
            state.symbols = slots.keys.sorted()
            return (state, true)
        }
    }

    /// The slots after `symbol` asks for one, or nil when every slot is taken. A held slot is kept
    /// while its permit lives or the ledger occupies its symbol (a position, a claim, an
    /// unreadable entry): an expired permit frees a slot only if nothing took it. A stored slot
    /// that does not read (a bad symbol, a time that is not a whole number) stops every entry:
    /// the count cannot be trusted, so it throws `SlotStateUnreadable` rather than guess.
    static func allot(_ symbol: String, untilMs: Int64, nowMs: Int64, held: [String: String],
                      occupied: Set<String>, maxPositions: Int) throws -> [String: String]? {
        if let problem = problem(held) { throw SlotStateUnreadable(detail: problem) }
        var slots = held.filter { heldSymbol, until in (Int64(until) ?? .max) > nowMs || occupied.contains(heldSymbol) }
        let taken = occupied.union(slots.keys)
        if !taken.contains(symbol), taken.count >= maxPositions { return nil }
        slots[symbol] = String(max(untilMs, slots[symbol].flatMap { Int64($0) } ?? 0))
        return slots
    }
}

extension EntrySlots {
    /// Why the stored slots cannot be counted, or nil: each must be a symbol with a permit expiry
    /// in epoch milliseconds.
    static func problem(_ held: [String: String]) -> String? {
        for (heldSymbol, until) in held.sorted(by: { $0.key < $1.key }) {
            guard Symbols.isValid(heldSymbol), let untilMs = Int64(until), untilMs >= 0 else {
                return "slot \"\(heldSymbol)\" holds \"\(until)\", expected a symbol and a permit expiry in epoch milliseconds"
            }
        }
        return nil
    }
}

/// The entry-slot state cannot be read: entries wait until an operator repairs or deletes it.
struct SlotStateUnreadable: Error, CustomStringConvertible {
    let detail: String
    var description: String { detail }
}
