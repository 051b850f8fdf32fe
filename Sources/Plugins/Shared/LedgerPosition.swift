import Foundation
import Exchange
import Host
import Messages

/// A ledger entry read for what exit-side plugins need: the signed amount as a `Decimal`, the
/// side, and the revision it was read at. A value that does not parse is a broken ledger, named
/// with its key, never a silent zero.
public struct LedgerPosition: Sendable {
    public let symbol: String
    public let entry: LedgerEntry
    public let revision: UInt64
    public let amount: Decimal
    public let entryPrice: Decimal

    public init(symbol: String, entry: LedgerEntry, revision: UInt64) throws {
        self.symbol = symbol
        self.entry = entry
        self.revision = revision
        self.amount = try Self.decimal(entry.positionAmt, field: "position_amt", symbol: symbol, emptyIsZero: true)
        self.entryPrice = try Self.decimal(entry.entryPrice, field: "entry_price", symbol: symbol, emptyIsZero: true)
    }

    public var isOpen: Bool { amount != 0 }
    public var side: PositionSide { amount > 0 ? .long : amount < 0 ? .short : .unspecified }
    /// The side of an order that reduces this position.
    public var closingSide: Messages.OrderSide { amount > 0 ? .sell : .buy }
    public var stopPrice: Double? { Decimal.parse(entry.stopPrice).map(\.doubleValue).flatMap { $0 > 0 ? $0 : nil } }

    /// The open position of `symbol`, or nil when the ledger has none. An entry that cannot be
    /// read holds its symbol: a gate's refusal (UNREADABLE_STATE), never a retry that would keep
    /// the symbol's inputs pending, and never "no position".
    public static func read(_ symbol: String, from ledger: PluginKV) async throws -> LedgerPosition? {
        do {
            guard let found = try await ledger.get(LedgerEntry.self, symbol) else { return nil }
            let position = try LedgerPosition(symbol: symbol, entry: found.value, revision: found.revision)
            return position.isOpen ? position : nil
        } catch let unreadable as UnreadableValue {
            throw GateRefusal(reason: .unreadableState, detail: "\(unreadable): \(symbol) is held (the sentinel alerts)")
        }
    }

    /// Every open position in the ledger (the exit side's only list of symbols, R4), read one
    /// entry at a time: an entry that cannot be read is reported for its symbol and never hides
    /// the others.
    public static func scan(_ ledger: PluginKV) async throws -> LedgerScan {
        var scan = LedgerScan()
        for key in try await ledger.keys().sorted() {
            do {
                if let position = try await read(key, from: ledger) { scan.open.append(position) }
            } catch {
                scan.unreadable[key] = "\(error)"
            }
        }
        return scan
    }

    static func decimal(_ text: String, field: String, symbol: String, emptyIsZero: Bool) throws -> Decimal {
        if text.isEmpty, emptyIsZero { return 0 }
        guard let value = Decimal.parse(text) else {
            throw PluginError.permanent("qt_ledger/\(symbol): \(field) is \"\(text)\", expected a decimal string")
        }
        return value
    }
}

/// The ledger's open positions and the symbols whose entry cannot be read. A symbol in
/// `unreadable` is held: no entry for it, a CRITICAL alert from the sentinel, its market data
/// still fed; every other symbol goes on.
public struct LedgerScan: Sendable {
    public var open: [LedgerPosition] = []
    /// Symbol → why its entry cannot be read.
    public var unreadable: [String: String] = [:]
}
