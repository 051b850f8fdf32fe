import Exchange
import Foundation

/// What became of one MARKET order, as far as the executor acts on it.
enum OrderOutcome: Equatable, Sendable {
    case filled(OrderResponse)
    /// Refused or ended without a fill (Binance code, message).
    case refused(code: Int, message: String)
    /// The exchange has no such order and the first request can no longer arrive.
    case absent
}

/// How one exchange answer about an order reads: the outcome, not known yet (ask again), or an
/// answer no retry can change. Pure: `OrderDesk` asks, this decides.
enum OrderReading: Equatable, Sendable {
    case known(OrderOutcome)
    /// The order may or may not exist or fill: query it by client order id (again).
    case unknown
    case invalid(String)

    /// The answer to `POST /fapi/v1/order`. Anything but FILLED is looked up again, so a MARKET
    /// order the matching engine is still working on ends with what the query finds.
    static func ofSent(_ response: OrderResponse) -> OrderReading {
        response.status == .filled ? .known(.filled(response)) : .unknown
    }

    /// A send that failed: only a processed refusal is final. A duplicate client order id, a lost
    /// answer, a 5xx or a rate limit may hide an order, so it is queried, never sent with a new id.
    static func ofSendError(_ error: ExchangeError, clientOrderID: String) -> OrderReading {
        switch error {
        case .api(let refusal) where refusal.known == .duplicateClientOrderID: return .unknown
        case .api(let refusal): return .known(.refused(code: refusal.code, message: refusal.message))
        case .unknownOutcome, .unavailable, .rateLimited: return .unknown
        case .decoding, .invalidRequest, .filter: return .invalid("order \(clientOrderID): \(error)")
        }
    }

    /// `GET /fapi/v1/order`: a MARKET order that ended without filling anything was refused; one
    /// that ended with a partial fill is a fill of what it executed.
    static func ofQueried(_ order: OrderResponse) -> OrderReading {
        switch order.status {
        case .filled: return .known(.filled(order))
        case .canceled, .expired, .expiredInMatch, .rejected:
            guard order.executedQty == 0 else { return .known(.filled(order)) }
            return .known(.refused(code: 0, message: "order \(order.clientOrderId) ended \(order.status.rawValue) without a fill"))
        case .new, .partiallyFilled: return .unknown
        }
    }

    /// A query that failed. `-2013` (no such order) is final only once a request sent at
    /// `sentAtMs` can no longer be executed (`finalAfterMs`: recvWindow plus the client's
    /// timeouts); before that the order may still arrive.
    static func ofQueryError(_ error: ExchangeError, clientOrderID: String, sentAtMs: Int64, nowMs: Int64, finalAfterMs: Int64) -> OrderReading {
        if error.binanceCode == .noSuchOrder { return nowMs > sentAtMs + finalAfterMs ? .known(.absent) : .unknown }
        if case .api = error { return .invalid("query of order \(clientOrderID): \(error)") }
        return .unknown
    }
}
