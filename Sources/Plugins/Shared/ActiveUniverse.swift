import Host
import Messages

/// `qt_universe/active` as the entry side reads it (R4: the only symbol list in the system).
struct ActiveUniverse {
    let universe: Universe?

    /// An unreadable universe refuses the entry (UNREADABLE_STATE): no symbol list, no entries.
    static func read(_ context: HandlerContext) async throws -> ActiveUniverse {
        switch try await context.kv("qt_universe").read(Universe.self, "active") {
        case .missing: return ActiveUniverse(universe: nil)
        case .value(let universe, _): return ActiveUniverse(universe: universe)
        case .unreadable(let why): throw GateRefusal(reason: .unreadableState, detail: "\(why): no entries until it is rewritten")
        }
    }

    func contains(_ symbol: String) -> Bool {
        universe?.entries.contains { $0.active && $0.symbol == symbol } ?? false
    }

    /// Why `symbol` may not be entered, for a decision's detail.
    func absence(of symbol: String) -> String {
        universe.map { "\(symbol) is not active in universe version \($0.version)" } ?? "qt_universe/active does not exist yet"
    }
}
