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
    /// The last reading and the view version it was made from: the governor and the portfolio
    /// gate read the whole ledger per entry, and between two entries it rarely changed.
    private let lastReading = Mutex<(version: Int, reading: LedgerReading, parsed: [String: LedgerPosition.Parsed])?>(nil)

    public init() {}

    /// How often a watch that ended was replaced (for tests and logs).
    public var restarts: Int { view.restarts }

    /// The ledger as the view holds it: every readable entry, the open positions, the claimed
    /// symbols, and each unreadable entry (undecodable, or a field that does not parse).
    public func read(_ context: HandlerContext) async throws -> LedgerReading {
        let (values, version) = try await view.readVersioned(context)
        let last = lastReading.withLock { $0 }
        if let last, last.version == version { return last.reading }
        var entries: [(symbol: String, entry: LedgerEntry, revision: UInt64)] = []
        var unreadable: [String: String] = [:]
        for (key, held) in values {
            switch held {
            case .value(let entry, let revision): entries.append((key, entry, revision))
            case .unreadable(let why, _): unreadable[key] = why
            case .deleted: break
            }
        }
        entries.sort { $0.symbol < $1.symbol }
        let scanned = LedgerPosition.scan(entries, reusing: last?.parsed ?? [:])
        var scan = scanned.scan
        scan.unreadable.merge(unreadable) { parsed, _ in parsed }
        let reading = LedgerReading(entries: entries, scan: scan)
        lastReading.withLock { $0 = (version, reading, scanned.parsed) }
        return reading
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
    public let entries: [(symbol: String, entry: LedgerEntry, revision: UInt64)]
    /// Open positions, and the entries that cannot be read (held, never read as flat).
    public let scan: LedgerScan

    /// Symbols whose entry holds a claim (an order in flight).
    public var claimed: Set<String> { Set(entries.filter { !$0.entry.pendingClientOrderID.isEmpty }.map(\.symbol)) }

    /// Symbols a position, a claim or an unreadable entry occupies.
    public var occupied: Set<String> { Set(scan.open.map(\.symbol)).union(claimed).union(scan.unreadable.keys) }
}
