import Host
import Messages

/// `qt_universe/active` as the entry side reads it (R4: the only symbol list in the system).
struct ActiveUniverse {
    let universe: Universe?

    static func read(_ context: HandlerContext) async throws -> ActiveUniverse {
        ActiveUniverse(universe: try await context.kv("qt_universe").get(Universe.self, "active")?.value)
    }

    func contains(_ symbol: String) -> Bool {
        universe?.entries.contains { $0.active && $0.symbol == symbol } ?? false
    }

    /// Why `symbol` may not be entered, for a decision's detail.
    func absence(of symbol: String) -> String {
        universe.map { "\(symbol) is not active in universe version \($0.version)" } ?? "qt_universe/active does not exist yet"
    }
}
