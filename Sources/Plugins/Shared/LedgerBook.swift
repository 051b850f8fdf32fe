import Exchange
import Foundation
import Host
import Messages

/// How an execution changes a ledger entry (DESIGN.md §5, executor step 6): the signed amount,
/// the average entry price, realized PnL, and the fills already applied (trade ids, or an executor
/// order's id when its fill was priced from the order response), so a fill that
/// arrives twice (redelivery, the executor's own order seen again by position-brain) changes
/// nothing the second time. Pure: the executor reads, calls this, and writes by compare-and-set.
public enum LedgerBook {
    /// Trade ids kept per symbol; older ones have long left every redelivery window.
    public static let appliedFillMemory = 256

    /// The id an executor order's whole fill is recorded by when it was priced from the order
    /// response (its trades never listed). Trade ids are plain numbers: the two never collide.
    public static func orderFillID(_ exchangeOrderID: Int64) -> String { orderFillPrefix + String(exchangeOrderID) }

    /// The exchange order id an `orderFillID` names; nil for a trade id.
    public static func exchangeOrderID(ofFillID fillID: String) -> Int64? {
        fillID.hasPrefix(orderFillPrefix) ? Int64(fillID.dropFirst(orderFillPrefix.count)) : nil
    }

    private static let orderFillPrefix = "order:"

    public struct Execution: Sendable, Equatable {
        public var side: Messages.OrderSide
        public var quantity: Decimal
        public var price: Decimal
        public var realizedPnl: Decimal
        /// The exchange trade ids making up this execution (at least one), or the executor order's
        /// `orderFillID` when it was priced from the order response.
        public var tradeIDs: [String]
        /// The exchange order the trades belong to, when known: a trade of an order the ledger
        /// holds by its `orderFillID` is part of that fill, already applied.
        public var exchangeOrderID: Int64?

        public init(side: Messages.OrderSide, quantity: Decimal, price: Decimal, realizedPnl: Decimal, tradeIDs: [String],
                    exchangeOrderID: Int64? = nil) {
            self.side = side
            self.quantity = quantity
            self.price = price
            self.realizedPnl = realizedPnl
            self.tradeIDs = tradeIDs
            self.exchangeOrderID = exchangeOrderID
        }
    }

    /// The PnL an execution realizes against `entry` before it is applied, as the exchange
    /// computes it for one-way mode: the part that reduces the position, times the move from the
    /// entry price in the position's favour. Zero for an execution that only opens or adds.
    public static func realizedPnl(side: Messages.OrderSide, quantity: Decimal, price: Decimal, against entry: LedgerEntry) throws -> Decimal {
        let amount = try LedgerPosition.decimal(entry.positionAmt, field: "position_amt", symbol: entry.symbol, emptyIsZero: true)
        let entryPrice = try LedgerPosition.decimal(entry.entryPrice, field: "entry_price", symbol: entry.symbol, emptyIsZero: true)
        let reduces = amount != 0 && (amount > 0) != (side == .buy)
        guard reduces else { return 0 }
        let closed = min(quantity, abs(amount))
        return amount > 0 ? closed * (price - entryPrice) : closed * (entryPrice - price)
    }

    public enum Outcome: Equatable, Sendable {
        case applied
        /// Every trade id was applied before: the entry is unchanged.
        case alreadyApplied
    }

    /// Applies `execution` to `entry` unless its trade ids are already there. An increase moves
    /// the entry price to the quantity-weighted average; a reduction keeps it; a position that
    /// goes flat clears what only an open position has (stop, tranches, opening time); one that
    /// crosses zero (never for reduce-only orders) opens at the execution price.
    public static func apply(_ execution: Execution, to entry: inout LedgerEntry, eventTimeMs: Int64) throws -> Outcome {
        let known = Set(entry.appliedFillIds)
        guard execution.tradeIDs.contains(where: { !known.contains($0) }) else { return .alreadyApplied }
        if let order = execution.exchangeOrderID, known.contains(orderFillID(order)) { return .alreadyApplied }
        guard execution.quantity > 0, execution.price > 0, execution.side != .unspecified else {
            throw PluginError.permanent("execution of \(execution.quantity.plainString) at \(execution.price.plainString) "
                                  + "side \(execution.side) on \(entry.symbol): quantity and price must be positive")
        }
        let amount = try LedgerPosition.decimal(entry.positionAmt, field: "position_amt", symbol: entry.symbol, emptyIsZero: true)
        let entryPrice = try LedgerPosition.decimal(entry.entryPrice, field: "entry_price", symbol: entry.symbol, emptyIsZero: true)
        let realized = try LedgerPosition.decimal(entry.realizedPnl, field: "realized_pnl", symbol: entry.symbol, emptyIsZero: true)
        let delta = execution.side == .buy ? execution.quantity : -execution.quantity
        let updated = amount + delta

        var newEntryPrice = entryPrice
        if amount == 0 || (amount > 0) == (delta > 0) {
            newEntryPrice = (abs(amount) * entryPrice + execution.quantity * execution.price) / abs(updated)
            if amount == 0 { entry.openedAtMs = eventTimeMs }
        } else if updated != 0, (updated > 0) != (amount > 0) {
            newEntryPrice = execution.price
            entry.openedAtMs = eventTimeMs
            entry.tranchesTaken = 0
        }
        entry.positionAmt = updated.plainString
        entry.realizedPnl = (realized + execution.realizedPnl).plainString
        if updated == 0 {
            entry.entryPrice = "0"
            entry.stopPrice = ""
            entry.stopAlgoID = ""
            entry.stopDistPct = 0
            entry.openedAtMs = 0
            entry.tranchesTaken = 0
        } else {
            entry.entryPrice = newEntryPrice.plainString
        }
        var applied = entry.appliedFillIds + execution.tradeIDs.filter { !known.contains($0) }
        if applied.count > appliedFillMemory { applied.removeFirst(applied.count - appliedFillMemory) }
        entry.appliedFillIds = applied
        return .applied
    }
}
