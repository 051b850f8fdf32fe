import Exchange
import Foundation
import Host
import Messages
import Synchronization

/// What an order's fill costs and earns besides its quantity and price, and the ids the ledger
/// records it by (`applied_fill_ids`), so that applying it twice changes nothing.
///
/// Normally priced from the order response alone (issue 20: two exchange calls per OPEN, the order
/// and its stop): the claim holds the entry as it was before this fill, so the realized PnL is the
/// exchange's own formula against that entry, and the fee is the executed quote at the account's
/// taker rate (a MARKET order always takes). After a crash that let the settle run, the entry
/// already holds the fill; then the exchange's trade list gives the figures, as it always did.
struct FillTerms: Equatable, Sendable {
    var fee: Decimal
    var realizedPnl: Decimal
    var fillIDs: [String]

    static func priced(_ response: OrderResponse, side: Messages.OrderSide, claimed entry: LedgerEntry, takerRate: Decimal) throws -> FillTerms {
        FillTerms(fee: response.cumQuote * takerRate,
                  realizedPnl: try LedgerBook.realizedPnl(side: side, quantity: response.executedQty, price: response.avgPrice, against: entry),
                  fillIDs: [LedgerBook.orderFillID(response.orderId)])
    }

    static func listed(_ trades: [UserTrade]) -> FillTerms {
        FillTerms(fee: trades.reduce(Decimal(0)) { $0 + $1.commission },
                  realizedPnl: trades.reduce(Decimal(0)) { $0 + $1.realizedPnl },
                  fillIDs: trades.map { String($0.id) })
    }
}

/// The account's taker rate, asked of the exchange once per process (`commissionRate` weighs 20)
/// and used for every symbol: Binance sets it per account tier, and a symbol with a rate of its
/// own shows in `qt trace` as a fee that differs from the trade list's.
final class TakerRate: Sendable {
    private let known = Mutex<Decimal?>(nil)

    func rate(symbol: String, exchange: any FuturesExchange) async throws -> Decimal {
        if let rate = known.withLock({ $0 }) { return rate }
        let rate = try await exchange.commissionRate(symbol: symbol).takerCommissionRate
        known.withLock { $0 = rate }
        return rate
    }
}
