import Exchange
import Foundation
import Host
import Identity
import Messages

/// The account's trades the executor did not place — a protective stop that triggered, a
/// liquidation, a manual trade — published as `Fill` on `qt.exec.fill.<SYM>` so the executor
/// applies them to the ledger (DESIGN.md §5 position-brain). A cursor per symbol (the last trade
/// id seen) lives in `qt_state/position-brain.trades`; it advances only after the fills are on
/// the bus. A symbol seen for the first time starts at its open ledger entry's oldest applied fill (the
/// trades since the position opened); without a ledger entry it starts at the newest trade, so
/// history from before the system knew the symbol is never replayed into the ledger.
struct TradePoll {
    static let cursorState = "trades"

    let exchange: any FuturesExchange
    let context: HandlerContext

    /// Publishes the unexplained trades of `symbols`; returns the symbols that got a fill.
    func run(symbols: Set<String>, ledger: [String: LedgerPosition]) async throws -> Set<String> {
        let stored = try await context.loadState(Self.cursorState)
        var cursors = stored?.state.values ?? [:]
        var executorOrders: Set<Int64>?
        var filled: Set<String> = []
        for symbol in symbols.sorted() {
            let entry = ledger[symbol]?.entry
            let start: Int64?
            if let cursor = cursors[symbol].flatMap(Int64.init) {
                start = cursor + 1
            } else if ledger[symbol]?.isOpen == true, let first = try await firstAppliedTrade(of: entry, symbol: symbol) {
                start = first
            } else {
                start = nil
            }
            let trades = try await exchange.userTrades(symbol: symbol, fromId: start, limit: 1000).sorted { $0.id < $1.id }
            guard let newest = trades.last?.id else { continue }
            defer { cursors[symbol] = String(newest) }
            guard start != nil else { continue }
            let applied = Set(entry?.appliedFillIds ?? [])
            for trade in trades where !applied.contains(String(trade.id)) && !applied.contains(LedgerBook.orderFillID(trade.orderId)) {
                if executorOrders == nil { executorOrders = try await Self.executorOrderIDs(context) }
                if executorOrders!.contains(trade.orderId) { continue }
                try await publish(trade, stopClientAlgoID: entry?.stopAlgoID ?? "")
                filled.insert(symbol)
            }
        }
        try await context.publishNow()
        if cursors != (stored?.state.values ?? [:]) {
            var state = PluginState()
            state.values = cursors
            try await context.saveState(Self.cursorState, state, expectedRevision: stored?.revision ?? 0)
        }
        return filled
    }

    /// The oldest trade the open entry applied: a trade id it holds, or the first trade of the
    /// oldest executor order it holds by order id (those were priced without listing trades).
    private func firstAppliedTrade(of entry: LedgerEntry?, symbol: String) async throws -> Int64? {
        let fillIDs = entry?.appliedFillIds ?? []
        let oldestTrade = fillIDs.compactMap(Int64.init).min()
        guard let oldestOrder = fillIDs.compactMap(LedgerBook.exchangeOrderID(ofFillID:)).min() else {
            return oldestTrade
        }
        let orderStart = try await exchange.userTrades(symbol: symbol, orderId: oldestOrder).map(\.id).min()
        return [oldestTrade, orderStart].compactMap { $0 }.min()
    }

    private func publish(_ trade: UserTrade, stopClientAlgoID: String) async throws {
        var origin = FillOrigin.external, clientOrderID = ""
        if !stopClientAlgoID.isEmpty, let stop = try? await exchange.queryAlgoOrder(clientAlgoId: stopClientAlgoID),
           stop.actualOrderId == String(trade.orderId) {
            origin = .stop
            clientOrderID = stopClientAlgoID
        }
        try Self.emit(trade, origin: origin, clientOrderID: clientOrderID, context: context)
    }

    /// Publishes `trade` as a `Fill`. Its message id depends only on the trade, so the stream and
    /// the reconciliation publishing the same trade store it once.
    static func emit(_ trade: UserTrade, origin: FillOrigin, clientOrderID: String, context: HandlerContext) throws {
        var fill = Fill()
        fill.symbol = trade.symbol
        fill.tradeID = trade.id
        fill.orderID = trade.orderId
        fill.side = trade.side == .buy ? .buy : .sell
        fill.qty = trade.qty.plainString
        fill.price = trade.price.plainString
        fill.fee = trade.commission.plainString
        fill.feeAsset = trade.commissionAsset
        fill.realizedPnl = trade.realizedPnl.plainString
        fill.timeMs = trade.time
        fill.origin = origin
        fill.clientOrderID = clientOrderID
        fill.meta.eventTimeMs = trade.time
        let id = ContentID.content(plugin: context.plugin, kind: "fill", symbol: trade.symbol, eventTimeMs: trade.time,
                                   revision: UInt64(trade.id))
        try context.emit("fills", fill, subject: Subjects.execFill(trade.symbol), id: id)
    }

    /// The exchange order ids of every order the executor placed that `qt_orders` still holds.
    static func executorOrderIDs(_ context: HandlerContext) async throws -> Set<Int64> {
        let orders = try await context.kv("qt_orders")
        var ids: Set<Int64> = []
        for key in try await orders.keys() {
            if let record = try await orders.get(OrderRecord.self, key)?.value, record.exchangeOrderID != 0 {
                ids.insert(record.exchangeOrderID)
            }
        }
        return ids
    }
}
