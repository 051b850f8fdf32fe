import Foundation

/// Market data: public endpoints, no key needed.
extension BinanceFutures {
    public func ping() async throws {
        _ = try await call("GET", "/fapi/v1/ping", as: EmptyObject.self)
    }

    public func serverTime() async throws -> Int64 {
        try await call("GET", "/fapi/v1/time", as: ServerTime.self).serverTime
    }

    public func exchangeInfo() async throws -> ExchangeInfo {
        let info = try await call("GET", "/fapi/v1/exchangeInfo", as: ExchangeInfo.self)
        learnWeightLimit(info)
        return info
    }

    /// Filters of every symbol in exchangeInfo, by symbol.
    public func symbolFilters() async throws -> [String: SymbolFilters] {
        var filters: [String: SymbolFilters] = [:]
        for info in try await exchangeInfo().symbols {
            do {
                filters[info.symbol] = try SymbolFilters(info)
            } catch let error as FilterError {
                throw ExchangeError.filter(error)
            }
        }
        return filters
    }

    public func ticker24h(symbol: String) async throws -> Ticker24h {
        try await call("GET", "/fapi/v1/ticker/24hr", [("symbol", symbol)], as: Ticker24h.self)
    }

    public func tickers24h() async throws -> [Ticker24h] {
        try await call("GET", "/fapi/v1/ticker/24hr", as: [Ticker24h].self)
    }

    /// Oldest first. Binance includes the bar still forming as the last entry: callers that want
    /// closed bars keep those with `closeTime` before the server time.
    public func klines(symbol: String, interval: String = "1m", startTime: Int64? = nil, endTime: Int64? = nil,
                       limit: Int? = nil) async throws -> [BinanceKline] {
        var parameters = [("symbol", symbol), ("interval", interval)]
        if let startTime { parameters.append(("startTime", String(startTime))) }
        if let endTime { parameters.append(("endTime", String(endTime))) }
        if let limit { parameters.append(("limit", String(limit))) }
        return try await call("GET", "/fapi/v1/klines", parameters, as: [BinanceKline].self)
    }

    public func premiumIndex(symbol: String) async throws -> PremiumIndex {
        try await call("GET", "/fapi/v1/premiumIndex", [("symbol", symbol)], as: PremiumIndex.self)
    }

    public func premiumIndexes() async throws -> [PremiumIndex] {
        try await call("GET", "/fapi/v1/premiumIndex", as: [PremiumIndex].self)
    }
}

struct EmptyObject: Codable {}
