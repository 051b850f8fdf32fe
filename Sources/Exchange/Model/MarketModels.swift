import Foundation

// Binance USDⓈ-M futures JSON shapes for market data, shared by the client (decoding) and the
// simulator (encoding) so that both speak exactly one dialect. Field names are Binance's.

public struct ServerTime: Codable, Sendable {
    public var serverTime: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(serverTime: Int64) {
        self.serverTime = serverTime
    }
}

public struct ExchangeInfo: Codable, Sendable {
    public var timezone: String
    public var serverTime: Int64
    public var rateLimits: [RateLimit]
    public var symbols: [SymbolInfo]

    /// Every field, for the simulator (another target of this package) and tests.
    package init(timezone: String, serverTime: Int64, rateLimits: [RateLimit], symbols: [SymbolInfo]) {
        self.timezone = timezone
        self.serverTime = serverTime
        self.rateLimits = rateLimits
        self.symbols = symbols
    }
}

public struct RateLimit: Codable, Sendable {
    public var rateLimitType: String
    public var interval: String
    public var intervalNum: Int
    public var limit: Int

    /// Every field, for the simulator (another target of this package) and tests.
    package init(rateLimitType: String, interval: String, intervalNum: Int, limit: Int) {
        self.rateLimitType = rateLimitType
        self.interval = interval
        self.intervalNum = intervalNum
        self.limit = limit
    }
}

public struct SymbolInfo: Codable, Sendable {
    public var symbol: String
    public var pair: String
    public var contractType: String
    public var status: String
    public var baseAsset: String
    public var quoteAsset: String
    public var marginAsset: String
    public var pricePrecision: Int
    public var quantityPrecision: Int
    public var filters: [SymbolFilterJSON]
    public var orderTypes: [String]
    public var timeInForce: [String]

    /// Every field, for the simulator (another target of this package) and tests.
    package init(symbol: String, pair: String, contractType: String, status: String, baseAsset: String, quoteAsset: String,
                 marginAsset: String, pricePrecision: Int, quantityPrecision: Int, filters: [SymbolFilterJSON],
                 orderTypes: [String], timeInForce: [String]) {
        self.symbol = symbol
        self.pair = pair
        self.contractType = contractType
        self.status = status
        self.baseAsset = baseAsset
        self.quoteAsset = quoteAsset
        self.marginAsset = marginAsset
        self.pricePrecision = pricePrecision
        self.quantityPrecision = quantityPrecision
        self.filters = filters
        self.orderTypes = orderTypes
        self.timeInForce = timeInForce
    }
}

/// One entry of `filters`; which keys are present depends on `filterType`.
public struct SymbolFilterJSON: Codable, Sendable {
    public var filterType: String
    public var minPrice: String?
    public var maxPrice: String?
    public var tickSize: String?
    public var minQty: String?
    public var maxQty: String?
    public var stepSize: String?
    public var notional: String?
    public var limit: Int?

    public init(filterType: String, minPrice: String? = nil, maxPrice: String? = nil, tickSize: String? = nil,
                minQty: String? = nil, maxQty: String? = nil, stepSize: String? = nil, notional: String? = nil, limit: Int? = nil) {
        self.filterType = filterType
        self.minPrice = minPrice
        self.maxPrice = maxPrice
        self.tickSize = tickSize
        self.minQty = minQty
        self.maxQty = maxQty
        self.stepSize = stepSize
        self.notional = notional
        self.limit = limit
    }
}

public struct Ticker24h: Codable, Sendable {
    public var symbol: String
    @DecimalString public var priceChange: Decimal
    @DecimalString public var priceChangePercent: Decimal
    @DecimalString public var weightedAvgPrice: Decimal
    @DecimalString public var lastPrice: Decimal
    @DecimalString public var lastQty: Decimal
    @DecimalString public var openPrice: Decimal
    @DecimalString public var highPrice: Decimal
    @DecimalString public var lowPrice: Decimal
    @DecimalString public var volume: Decimal
    @DecimalString public var quoteVolume: Decimal
    public var openTime: Int64
    public var closeTime: Int64
    public var firstId: Int64
    public var lastId: Int64
    public var count: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(symbol: String, priceChange: Decimal, priceChangePercent: Decimal, weightedAvgPrice: Decimal,
                 lastPrice: Decimal, lastQty: Decimal, openPrice: Decimal, highPrice: Decimal, lowPrice: Decimal,
                 volume: Decimal, quoteVolume: Decimal, openTime: Int64, closeTime: Int64, firstId: Int64, lastId: Int64,
                 count: Int64) {
        self.symbol = symbol
        self.priceChange = priceChange
        self.priceChangePercent = priceChangePercent
        self.weightedAvgPrice = weightedAvgPrice
        self.lastPrice = lastPrice
        self.lastQty = lastQty
        self.openPrice = openPrice
        self.highPrice = highPrice
        self.lowPrice = lowPrice
        self.volume = volume
        self.quoteVolume = quoteVolume
        self.openTime = openTime
        self.closeTime = closeTime
        self.firstId = firstId
        self.lastId = lastId
        self.count = count
    }
}

/// One kline: Binance sends it as a 12-element array, not an object.
public struct BinanceKline: Codable, Sendable, Equatable {
    public var openTime: Int64
    public var open: Decimal
    public var high: Decimal
    public var low: Decimal
    public var close: Decimal
    public var volume: Decimal
    public var closeTime: Int64
    public var quoteVolume: Decimal
    public var trades: Int64
    public var takerBuyBaseVolume: Decimal
    public var takerBuyQuoteVolume: Decimal

    public init(openTime: Int64, open: Decimal, high: Decimal, low: Decimal, close: Decimal, volume: Decimal, closeTime: Int64,
                quoteVolume: Decimal, trades: Int64, takerBuyBaseVolume: Decimal, takerBuyQuoteVolume: Decimal) {
        self.openTime = openTime
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.closeTime = closeTime
        self.quoteVolume = quoteVolume
        self.trades = trades
        self.takerBuyBaseVolume = takerBuyBaseVolume
        self.takerBuyQuoteVolume = takerBuyQuoteVolume
    }

    public init(from decoder: Decoder) throws {
        var row = try decoder.unkeyedContainer()
        func decimal() throws -> Decimal {
            let text = try row.decode(String.self)
            guard let value = Decimal.parse(text) else {
                throw DecodingError.dataCorruptedError(in: row, debugDescription: "kline field \"\(text)\" is not a decimal")
            }
            return value
        }
        openTime = try row.decode(Int64.self)
        open = try decimal()
        high = try decimal()
        low = try decimal()
        close = try decimal()
        volume = try decimal()
        closeTime = try row.decode(Int64.self)
        quoteVolume = try decimal()
        trades = try row.decode(Int64.self)
        takerBuyBaseVolume = try decimal()
        takerBuyQuoteVolume = try decimal()
        _ = try? row.decode(String.self)  // "ignore"
    }

    public func encode(to encoder: Encoder) throws {
        var row = encoder.unkeyedContainer()
        try row.encode(openTime)
        for value in [open, high, low, close, volume] { try row.encode(value.plainString) }
        try row.encode(closeTime)
        try row.encode(quoteVolume.plainString)
        try row.encode(trades)
        try row.encode(takerBuyBaseVolume.plainString)
        try row.encode(takerBuyQuoteVolume.plainString)
        try row.encode("0")
    }
}

public struct PremiumIndex: Codable, Sendable {
    public var symbol: String
    @DecimalString public var markPrice: Decimal
    @DecimalString public var indexPrice: Decimal
    @DecimalString public var estimatedSettlePrice: Decimal
    @DecimalString public var lastFundingRate: Decimal
    @DecimalString public var interestRate: Decimal
    public var nextFundingTime: Int64
    public var time: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(symbol: String, markPrice: Decimal, indexPrice: Decimal, estimatedSettlePrice: Decimal,
                 lastFundingRate: Decimal, interestRate: Decimal, nextFundingTime: Int64, time: Int64) {
        self.symbol = symbol
        self.markPrice = markPrice
        self.indexPrice = indexPrice
        self.estimatedSettlePrice = estimatedSettlePrice
        self.lastFundingRate = lastFundingRate
        self.interestRate = interestRate
        self.nextFundingTime = nextFundingTime
        self.time = time
    }
}
