import Exchange
import Foundation
import Host

/// The executor's exchange side: one MARKET order per client order id, its outcome found out
/// when the answer was lost, and its trades when a crash left nothing else to price its fill by.
/// Never sends a second client order id for a plan; sends the same one again only once the
/// exchange cannot still accept the first request.
struct OrderDesk: Sendable {
    let exchange: any FuturesExchange
    let clock: any PluginClock
    /// The request's recvWindow plus the client's own timeouts: after this, a request sent
    /// before it can no longer be executed.
    let finalAfterMs: Int64
    let queryIntervalMs: Int64
    /// How long one handler call waits for an unknown outcome before leaving it to redelivery
    /// (well inside AckWait 30 s); the record stays SENT, so the next attempt resumes the query.
    let patienceMs: Int64

    /// Sends the order; an answer that got lost becomes a query by client order id.
    func send(_ order: NewOrder, sentAtMs: Int64) async throws -> OrderOutcome {
        let reading: OrderReading
        do {
            reading = .ofSent(try await exchange.newOrder(order))
        } catch let error as ExchangeError {
            reading = .ofSendError(error, clientOrderID: order.clientOrderId)
        }
        switch reading {
        case .known(let outcome): return outcome
        case .unknown: return try await resolve(symbol: order.symbol, clientOrderID: order.clientOrderId, sentAtMs: sentAtMs)
        case .invalid(let why): throw PluginError.permanent(why)
        }
    }

    /// What became of an order whose answer is unknown: query until the exchange knows it, or
    /// until `-2013` (no such order) is final because `sentAtMs` + recvWindow has passed.
    func resolve(symbol: String, clientOrderID: String, sentAtMs: Int64) async throws -> OrderOutcome {
        let giveUp = clock.nowMs() + patienceMs
        while true {
            let reading: OrderReading
            do {
                reading = .ofQueried(try await exchange.queryOrder(symbol: symbol, clientOrderId: clientOrderID))
            } catch let error as ExchangeError {
                reading = .ofQueryError(error, clientOrderID: clientOrderID, sentAtMs: sentAtMs, nowMs: clock.nowMs(), finalAfterMs: finalAfterMs)
            }
            switch reading {
            case .known(let outcome): return outcome
            case .invalid(let why): throw PluginError.permanent(why)
            case .unknown: break
            }
            guard clock.nowMs() < giveUp else {
                throw PluginError.transient("order \(clientOrderID): outcome still unknown after \(patienceMs) ms; the record stays SENT")
            }
            try await Task.sleep(nanoseconds: UInt64(queryIntervalMs) * 1_000_000)
        }
    }

    /// The trades of one filled order: their ids, fees and realized PnL. Trades are written with
    /// the fill, but a read may still miss them for a moment; an order without trades is retried.
    func trades(of order: OrderResponse) async throws -> [UserTrade] {
        let giveUp = clock.nowMs() + patienceMs
        while true {
            let trades = try await exchange.userTrades(symbol: order.symbol, orderId: order.orderId)
            if trades.reduce(Decimal(0), { $0 + $1.qty }) >= order.executedQty, !trades.isEmpty { return trades }
            guard clock.nowMs() < giveUp else {
                throw PluginError.transient("order \(order.clientOrderId) filled \(order.executedQty.plainString) but its trades are not listed yet")
            }
            try await Task.sleep(nanoseconds: UInt64(queryIntervalMs) * 1_000_000)
        }
    }

}
