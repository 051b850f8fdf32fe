import Exchange
import Foundation
import Host
import Messages

/// Fills the executor did not place (a protective stop, a liquidation, a manual trade), from
/// position-brain on `qt.exec.fill.<SYM>`: applied to the ledger once per trade id (and never for a
/// trade of an order whose whole fill the executor applied by the order's id).
struct FillBook {
    let context: HandlerContext

    func apply(_ fill: Fill, subject: String) async throws {
        guard !fill.symbol.isEmpty, subject == Subjects.execFill(fill.symbol), fill.tradeID > 0 else {
            throw PluginError.permanent("fill on \(subject): symbol \"\(fill.symbol)\", trade id \(fill.tradeID); expected both and the subject of the symbol")
        }
        guard fill.origin != .unspecified, fill.side != .unspecified else {
            throw PluginError.permanent("fill \(fill.tradeID) on \(subject): origin \(fill.origin), side \(fill.side): neither may be UNSPECIFIED")
        }
        guard let quantity = Decimal.parse(fill.qty), let price = Decimal.parse(fill.price) else {
            throw PluginError.permanent("fill \(fill.tradeID) on \(subject): qty \"\(fill.qty)\", price \"\(fill.price)\" must be decimal strings")
        }
        let execution = LedgerBook.Execution(side: fill.side, quantity: quantity, price: price,
                                             realizedPnl: Decimal.parse(fill.realizedPnl) ?? 0, tradeIDs: [String(fill.tradeID)],
                                             exchangeOrderID: fill.orderID != 0 ? fill.orderID : nil)
        let ledger = try await context.kv("qt_ledger")
        let about = String(fill.tradeID)
        for _ in 0..<LedgerClaims.attempts {
            let found = try await ledger.get(LedgerEntry.self, fill.symbol)
            var entry = found?.value ?? LedgerEntry()
            entry.symbol = fill.symbol
            if try LedgerBook.apply(execution, to: &entry, eventTimeMs: fill.timeMs) == .alreadyApplied {
                try context.decide(.skip, reason: .duplicate, about: about, kind: .fill, symbol: fill.symbol,
                                   detail: "trade \(fill.tradeID) is already in the ledger")
                return
            }
            entry.meta.eventTimeMs = fill.timeMs
            do {
                try await ledger.write(fill.symbol, entry, over: found?.revision)
            } catch is KVConflict {
                continue
            }
            try context.decide(.pass, reason: .passed, about: about, kind: .fill, symbol: fill.symbol,
                               detail: "\(fill.origin) \(fill.side) \(fill.qty) at \(fill.price)", after: ["position_amt": entry.positionAmt])
            return
        }
        throw PluginError.transient("qt_ledger/\(fill.symbol): \(LedgerClaims.attempts) compare-and-set conflicts applying trade \(fill.tradeID)")
    }
}
