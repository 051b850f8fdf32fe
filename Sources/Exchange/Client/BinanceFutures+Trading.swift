import Foundation

/// A new order for `/fapi/v1/order`. The system sends MARKET orders only; other types are
/// here so that what Binance refuses (STOP_MARKET since 2025-12-09: -4120) can be shown refused.
public struct NewOrder: Sendable, Equatable {
    public var symbol: String
    public var side: OrderSide
    public var type: String = "MARKET"
    public var quantity: Decimal
    public var reduceOnly = false
    /// At most 36 characters of `[.A-Z:/a-z0-9_-]`; the executor derives it from the plan id.
    public var clientOrderId: String
    public var stopPrice: Decimal?

    public init(symbol: String, side: OrderSide, quantity: Decimal, reduceOnly: Bool = false, clientOrderId: String) {
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.reduceOnly = reduceOnly
        self.clientOrderId = clientOrderId
    }
}

/// A protective stop through the Algo Order API: STOP_MARKET that closes the whole position
/// when the mark price crosses `triggerPrice`.
public struct NewStopOrder: Sendable, Equatable {
    public var symbol: String
    public var side: OrderSide
    public var triggerPrice: Decimal
    public var clientAlgoId: String
    public var workingType: WorkingType = .markPrice

    public init(symbol: String, side: OrderSide, triggerPrice: Decimal, clientAlgoId: String) {
        self.symbol = symbol
        self.side = side
        self.triggerPrice = triggerPrice
        self.clientAlgoId = clientAlgoId
    }
}

/// Orders, algo orders, trades, positions and the account: signed endpoints.
extension BinanceFutures {
    static let clientOrderIDCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:/_-")

    static func checkClientID(_ id: String, _ name: String) throws {
        guard !id.isEmpty, id.count <= 36, id.allSatisfy({ clientOrderIDCharacters.contains($0) }) else {
            throw ExchangeError.invalidRequest("\(name) \"\(id)\" must be 1–36 characters of [.A-Z:/a-z0-9_-]")
        }
    }

    /// Sent once. A network error, timeout or 5xx throws `.unknownOutcome`: query by
    /// `clientOrderId` before doing anything else, and never resend with another id.
    public func newOrder(_ order: NewOrder) async throws -> OrderResponse {
        try Self.checkClientID(order.clientOrderId, "newClientOrderId")
        var parameters = [("symbol", order.symbol), ("side", order.side.rawValue), ("type", order.type),
                          ("quantity", order.quantity.plainString)]
        if order.reduceOnly { parameters.append(("reduceOnly", "true")) }
        if let stop = order.stopPrice { parameters.append(("stopPrice", stop.plainString)) }
        parameters += [("newClientOrderId", order.clientOrderId), ("newOrderRespType", "RESULT")]
        return try await call("POST", "/fapi/v1/order", parameters, security: .signed, retry: .never, as: OrderResponse.self)
    }

    /// Throws `.api` with `-2013` (`noSuchOrder`) when the exchange has no such order.
    public func queryOrder(symbol: String, clientOrderId: String) async throws -> OrderResponse {
        try await call("GET", "/fapi/v1/order", [("symbol", symbol), ("origClientOrderId", clientOrderId)],
                       security: .signed, as: OrderResponse.self)
    }

    public func cancelOrder(symbol: String, clientOrderId: String) async throws -> OrderResponse {
        try await call("DELETE", "/fapi/v1/order", [("symbol", symbol), ("origClientOrderId", clientOrderId)],
                       security: .signed, retry: .never, as: OrderResponse.self)
    }

    public func openOrders(symbol: String? = nil) async throws -> [OrderResponse] {
        try await call("GET", "/fapi/v1/openOrders", symbol.map { [("symbol", $0)] } ?? [], security: .signed, as: [OrderResponse].self)
    }

    /// The account's trades in `symbol`, oldest first; `fromId` continues after the last one seen.
    public func userTrades(symbol: String, fromId: Int64? = nil, startTime: Int64? = nil, endTime: Int64? = nil,
                           limit: Int? = nil) async throws -> [UserTrade] {
        try await userTrades(symbol: symbol, orderId: nil, fromId: fromId, startTime: startTime, endTime: endTime, limit: limit)
    }

    /// The trades of one order (`orderId`), or the account's trades in `symbol` as above.
    public func userTrades(symbol: String, orderId: Int64?, fromId: Int64? = nil, startTime: Int64? = nil, endTime: Int64? = nil,
                           limit: Int? = nil) async throws -> [UserTrade] {
        var parameters = [("symbol", symbol)]
        if let orderId { parameters.append(("orderId", String(orderId))) }
        if let fromId { parameters.append(("fromId", String(fromId))) }
        if let startTime { parameters.append(("startTime", String(startTime))) }
        if let endTime { parameters.append(("endTime", String(endTime))) }
        if let limit { parameters.append(("limit", String(limit))) }
        return try await call("GET", "/fapi/v1/userTrades", parameters, security: .signed, as: [UserTrade].self)
    }

    /// The account's maker and taker rates for `symbol` (weight 20: ask once, not per order).
    public func commissionRate(symbol: String) async throws -> CommissionRate {
        try await call("GET", "/fapi/v1/commissionRate", [("symbol", symbol)], security: .signed, as: CommissionRate.self)
    }

    public func positionRisk(symbol: String? = nil) async throws -> [PositionRisk] {
        try await call("GET", "/fapi/v2/positionRisk", symbol.map { [("symbol", $0)] } ?? [], security: .signed,
                       as: [PositionRisk].self)
    }

    public func account() async throws -> AccountInfo {
        try await call("GET", "/fapi/v2/account", security: .signed, as: AccountInfo.self)
    }

    public func balance() async throws -> [AssetBalance] {
        try await call("GET", "/fapi/v2/balance", security: .signed, as: [AssetBalance].self)
    }

    public func setLeverage(symbol: String, leverage: Int) async throws -> LeverageResponse {
        try await call("POST", "/fapi/v1/leverage", [("symbol", symbol), ("leverage", String(leverage))],
                       security: .signed, retry: .never, as: LeverageResponse.self)
    }

    /// True in hedge mode, which this system refuses to trade in.
    public func isHedgeMode() async throws -> Bool {
        try await call("GET", "/fapi/v1/positionSide/dual", security: .signed, as: PositionMode.self).dualSidePosition
    }

    public func setHedgeMode(_ dualSide: Bool) async throws {
        _ = try await call("POST", "/fapi/v1/positionSide/dual", [("dualSidePosition", dualSide ? "true" : "false")],
                           security: .signed, retry: .never, as: CodeMessage.self)
    }

    /// Sent once, like a new order; an unknown outcome is resolved with `queryAlgoOrder`.
    public func newStopOrder(_ stop: NewStopOrder) async throws -> AlgoOrder {
        try Self.checkClientID(stop.clientAlgoId, "clientAlgoId")
        let parameters = [("algoType", "CONDITIONAL"), ("symbol", stop.symbol), ("side", stop.side.rawValue),
                          ("type", "STOP_MARKET"), ("triggerPrice", stop.triggerPrice.plainString), ("closePosition", "true"),
                          ("workingType", stop.workingType.rawValue), ("clientAlgoId", stop.clientAlgoId)]
        return try await call("POST", "/fapi/v1/algoOrder", parameters, security: .signed, retry: .never, as: AlgoOrder.self)
    }

    public func queryAlgoOrder(clientAlgoId: String) async throws -> AlgoOrder {
        try await call("GET", "/fapi/v1/algoOrder", [("clientAlgoId", clientAlgoId)], security: .signed, as: AlgoOrder.self)
    }

    public func cancelAlgoOrder(clientAlgoId: String) async throws -> AlgoOrder {
        try await call("DELETE", "/fapi/v1/algoOrder", [("clientAlgoId", clientAlgoId)], security: .signed, retry: .never,
                       as: AlgoOrder.self)
    }

    public func openAlgoOrders(symbol: String? = nil) async throws -> [AlgoOrder] {
        try await call("GET", "/fapi/v1/openAlgoOrders", symbol.map { [("symbol", $0)] } ?? [], security: .signed,
                       as: [AlgoOrder].self)
    }
}
