import Foundation
import Host
import Messages
import Synchronization

/// The whole ledger in memory, kept current by a KV watch, for gates that need every position
/// per message (the governor's open notional, the portfolio gate's occupied slots). Scanning
/// the bucket instead costs one KV read per symbol per message: with 566 symbols that was most
/// of an entry's latency. A view may trail the bucket by a watch delivery (milliseconds); both
/// uses tolerate that: the notional cap is a cap on sizing, and an entry slot stays held by its
/// permit until the ledger shows the position.
///
/// It fails closed: a value that does not decode is held as unreadable (never read as a
/// deletion), and when the watch ends (a closed connection, a server error) the view is stale:
/// the next read starts a new watch and reloads the bucket before it answers, and if that
/// fails the read throws, so the entry waiting on it is retried rather than sized on old data.
/// Only entries read the view; exits read their symbol's entry from the bucket.
public final class LedgerView: Sendable {
    private let view = BucketView<LedgerEntry>("qt_ledger")
    /// The reading as of a view version, brought up to date key by key: every trade changes the
    /// ledger, so the governor and the portfolio gate would otherwise rebuild it from all 566
    /// entries per plan (a third of a millisecond each, in the path of every entry).
    private let current = Mutex<(version: Int, reading: LedgerReading)>((-1, LedgerReading()))

    public init() {}

    /// How often a watch that ended was replaced (for tests and logs).
    public var restarts: Int { view.restarts }

    /// The ledger as the view holds it: the open positions, the claimed symbols, and each
    /// unreadable entry (undecodable, or a field that does not parse).
    public func read(_ context: HandlerContext) async throws -> LedgerReading {
        let known = current.withLock { $0.version }
        let (values, changed, version) = try await view.readChanges(since: known, context)
        return current.withLock { current in
            if current.version < version {
                // Another reader may have moved it meanwhile: the journal's keys are those after `known`.
                current.reading.update(from: values, changed: current.version == known ? changed : nil)
                current.version = version
            }
            return current.reading
        }
    }

    /// One symbol's open position, or nil: from the view when it shows none, confirmed from the
    /// bucket when it shows one (or an unreadable entry), so a refusal never rests on a lagging
    /// view. An entry that cannot be read is a gate's refusal (UNREADABLE_STATE), as
    /// `LedgerPosition.read` makes it.
    func position(_ symbol: String, _ context: HandlerContext) async throws -> LedgerPosition? {
        let reading = try await view.read(symbol, context) { reading in
            switch reading {
            case .missing: return true
            case .unreadable: return false
            case .value(let entry, _): return Decimal.parse(entry.positionAmt).map { $0 == 0 } ?? entry.positionAmt.isEmpty
            }
        }
        switch reading {
        case .missing: return nil
        case .unreadable(let why): throw GateRefusal(reason: .unreadableState, detail: "\(why): \(symbol) is held (the sentinel alerts)")
        case .value(let entry, let revision):
            let position = try LedgerPosition(symbol: symbol, entry: entry, revision: revision)
            return position.isOpen ? position : nil
        }
    }
}

/// One read of a `LedgerView`.
public struct LedgerReading: Sendable {
    /// Open positions by symbol.
    public private(set) var open: [String: LedgerPosition] = [:]
    /// Symbol → why its entry cannot be read (held, never read as flat).
    public private(set) var unreadable: [String: String] = [:]
    /// Symbols whose entry holds a claim (an order in flight).
    public private(set) var claimed: Set<String> = []
    /// Symbols a position, a claim or an unreadable entry occupies.
    public private(set) var occupied: Set<String> = []
    /// Σ |position| × entry price over the open positions, USDT.
    public private(set) var openNotional = Decimal(0)
    /// The revision each entry was read at; an entry at the same revision is not parsed again.
    private var revisions: [String: UInt64] = [:]

    /// Brings the reading to `values`: only the `changed` keys when the view's journal names them,
    /// otherwise every entry whose revision moved.
    mutating func update(from values: [String: BucketView<LedgerEntry>.Held], changed: [String]? = nil) {
        if let changed {
            for symbol in Set(changed) {
                guard let held = values[symbol] else {
                    if revisions[symbol] != nil { forget(symbol) }
                    continue
                }
                take(symbol, held)
            }
            return
        }
        var present = 0
        for (symbol, held) in values {
            if case .deleted = held {} else { present += 1 }
            take(symbol, held)
        }
        // A key gone from the view altogether (a reload after a purge) leaves no marker behind.
        if present != revisions.count {
            for symbol in revisions.keys where values[symbol] == nil { forget(symbol) }
        }
    }

    private mutating func take(_ symbol: String, _ held: BucketView<LedgerEntry>.Held) {
        switch held {
        case .deleted:
            if revisions[symbol] != nil { forget(symbol) }
        case .value(_, let revision), .unreadable(_, let revision):
            if revisions[symbol] == revision { return }
            forget(symbol)
            learn(symbol, held, revision: revision)
        }
    }

    private mutating func forget(_ symbol: String) {
        revisions[symbol] = nil
        if let position = open.removeValue(forKey: symbol) { openNotional -= Self.notional(position) }
        unreadable[symbol] = nil
        claimed.remove(symbol)
        occupied.remove(symbol)
    }

    private mutating func learn(_ symbol: String, _ held: BucketView<LedgerEntry>.Held, revision: UInt64) {
        revisions[symbol] = revision
        switch held {
        case .value(let entry, _):
            do {
                let position = try LedgerPosition(symbol: symbol, entry: entry, revision: revision)
                if position.isOpen {
                    open[symbol] = position
                    openNotional += Self.notional(position)
                }
            } catch {
                unreadable[symbol] = "\(error)"
            }
            if !entry.pendingClientOrderID.isEmpty { claimed.insert(symbol) }
        case .unreadable(let why, _):
            unreadable[symbol] = why
        case .deleted:
            return
        }
        if open[symbol] != nil || claimed.contains(symbol) || unreadable[symbol] != nil { occupied.insert(symbol) }
    }

    private static func notional(_ position: LedgerPosition) -> Decimal { abs(position.amount) * position.entryPrice }
}
