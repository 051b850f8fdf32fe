import Foundation

/// What plugins use of a USDⓈ-M futures exchange. `BinanceFutures` is the one implementation;
/// plugins hold this, so a test or a composition root decides which client (or simulator URL)
/// they reach, and nothing in a plugin builds a client of its own.
public protocol FuturesExchange: Sendable {
    var config: ExchangeConfig { get }
    /// Request weight this client spent in the current minute, and the budget it keeps under.
    var weightSpentThisMinute: Int { get }
    var weightBudgetPerMinute: Int { get }

    func exchangeInfo() async throws -> ExchangeInfo
    func symbolFilters() async throws -> [String: SymbolFilters]
    func tickers24h() async throws -> [Ticker24h]
    func klines(symbol: String, interval: String, startTime: Int64?, endTime: Int64?, limit: Int?) async throws -> [BinanceKline]
    func premiumIndex(symbol: String) async throws -> PremiumIndex
    func premiumIndexes() async throws -> [PremiumIndex]

    func newOrder(_ order: NewOrder) async throws -> OrderResponse
    func queryOrder(symbol: String, clientOrderId: String) async throws -> OrderResponse
    func userTrades(symbol: String, fromId: Int64?, startTime: Int64?, endTime: Int64?, limit: Int?) async throws -> [UserTrade]
    func userTrades(symbol: String, orderId: Int64?, fromId: Int64?, startTime: Int64?, endTime: Int64?, limit: Int?) async throws -> [UserTrade]
    func commissionRate(symbol: String) async throws -> CommissionRate
    func positionRisk(symbol: String?) async throws -> [PositionRisk]
    func account() async throws -> AccountInfo
    func isHedgeMode() async throws -> Bool
    func newStopOrder(_ stop: NewStopOrder) async throws -> AlgoOrder
    func queryAlgoOrder(clientAlgoId: String) async throws -> AlgoOrder
    func cancelAlgoOrder(clientAlgoId: String) async throws -> AlgoOrder
    func newListenKey() async throws -> String
    func keepAliveListenKey() async throws
    func closeListenKey() async throws
    /// Measures the exchange's clock against this machine's (ms; positive: the exchange is ahead)
    /// and signs later requests with it.
    func syncTime() async throws -> Int64
}

extension FuturesExchange {
    public func klines(symbol: String, startTime: Int64? = nil, limit: Int? = nil) async throws -> [BinanceKline] {
        try await klines(symbol: symbol, interval: "1m", startTime: startTime, endTime: nil, limit: limit)
    }

    public func userTrades(symbol: String, fromId: Int64? = nil, limit: Int? = nil) async throws -> [UserTrade] {
        try await userTrades(symbol: symbol, fromId: fromId, startTime: nil, endTime: nil, limit: limit)
    }

    /// The trades of one order.
    public func userTrades(symbol: String, orderId: Int64) async throws -> [UserTrade] {
        try await userTrades(symbol: symbol, orderId: orderId, fromId: nil, startTime: nil, endTime: nil, limit: nil)
    }

    public func positionRisk() async throws -> [PositionRisk] { try await positionRisk(symbol: nil) }
}

extension BinanceFutures: FuturesExchange {}
