import Host
import Messages

/// `qt_universe/active` as the entry side reads it (R4: the only symbol list in the system).
struct ActiveUniverse {
    let universe: Universe?

    /// An unreadable universe refuses the entry (UNREADABLE_STATE): no symbol list, no entries.
    static func read(_ context: HandlerContext) async throws -> ActiveUniverse {
        try ActiveUniverse(try await context.kv("qt_universe").read(Universe.self, Self.key))
    }

    static let key = "active"

    init(universe: Universe?) {
        self.universe = universe
    }

    init(_ reading: KeyReading<Universe>) throws {
        switch reading {
        case .missing: self.init(universe: nil)
        case .value(let universe, _): self.init(universe: universe)
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

/// `qt_universe/active` kept in memory by a watch (`BucketView`), for the entry gates that read it
/// per message.
final class UniverseView: Sendable {
    private let view = BucketView<Universe>("qt_universe", key: ActiveUniverse.key)

    /// The universe, confirmed from the bucket when the view does not list `symbol` as active.
    func read(_ context: HandlerContext, listing symbol: String) async throws -> ActiveUniverse {
        try ActiveUniverse(try await view.read(ActiveUniverse.key, context) { reading in
            reading.value.map { ActiveUniverse(universe: $0).contains(symbol) } ?? false
        })
    }
}
