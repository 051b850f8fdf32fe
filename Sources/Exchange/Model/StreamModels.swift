import Foundation

// The events of Binance's USDⓈ-M WebSocket streams, with Binance's one-letter field names.
// Both sides use them: the client decodes, the simulator encodes, so the two cannot drift.

/// `<symbol>@kline_<interval>`: the bar so far; `closed` (`x`) once it will not change again.
public struct KlineEvent: Codable, Sendable, Equatable {
    public struct Bar: Codable, Sendable, Equatable {
        public var openTime: Int64
        public var closeTime: Int64
        public var symbol: String
        public var interval: String
        @DecimalString public var open: Decimal
        @DecimalString public var close: Decimal
        @DecimalString public var high: Decimal
        @DecimalString public var low: Decimal
        @DecimalString public var volume: Decimal
        public var trades: Int64
        public var closed: Bool
        @DecimalString public var quoteVolume: Decimal
        @DecimalString public var takerBuyBaseVolume: Decimal
        @DecimalString public var takerBuyQuoteVolume: Decimal

        enum CodingKeys: String, CodingKey {
            case openTime = "t", closeTime = "T", symbol = "s", interval = "i", open = "o", close = "c", high = "h", low = "l"
            case volume = "v", trades = "n", closed = "x", quoteVolume = "q", takerBuyBaseVolume = "V", takerBuyQuoteVolume = "Q"
        }

        /// The bar as the klines endpoint returns it.
        public var kline: BinanceKline {
            BinanceKline(openTime: openTime, open: open, high: high, low: low, close: close, volume: volume, closeTime: closeTime,
                         quoteVolume: quoteVolume, trades: trades, takerBuyBaseVolume: takerBuyBaseVolume,
                         takerBuyQuoteVolume: takerBuyQuoteVolume)
        }

        package init(_ kline: BinanceKline, symbol: String, closed: Bool) {
            openTime = kline.openTime
            closeTime = kline.closeTime
            self.symbol = symbol
            interval = "1m"
            open = kline.open
            close = kline.close
            high = kline.high
            low = kline.low
            volume = kline.volume
            trades = kline.trades
            self.closed = closed
            quoteVolume = kline.quoteVolume
            takerBuyBaseVolume = kline.takerBuyBaseVolume
            takerBuyQuoteVolume = kline.takerBuyQuoteVolume
        }
    }

    public var eventType = "kline"
    public var eventTime: Int64
    public var symbol: String
    public var bar: Bar

    enum CodingKeys: String, CodingKey { case eventType = "e", eventTime = "E", symbol = "s", bar = "k" }

    package init(eventTime: Int64, symbol: String, bar: Bar) {
        self.eventTime = eventTime
        self.symbol = symbol
        self.bar = bar
    }
}

/// `<symbol>@markPrice[@1s]` and, as an array, `!markPrice@arr[@1s]`.
public struct MarkPriceEvent: Codable, Sendable, Equatable {
    public var eventType = "markPriceUpdate"
    public var eventTime: Int64
    public var symbol: String
    @DecimalString public var markPrice: Decimal
    @DecimalString public var indexPrice: Decimal
    @DecimalString public var estimatedSettlePrice: Decimal
    @DecimalString public var fundingRate: Decimal
    public var nextFundingTime: Int64

    enum CodingKeys: String, CodingKey {
        case eventType = "e", eventTime = "E", symbol = "s", markPrice = "p", indexPrice = "i", estimatedSettlePrice = "P"
        case fundingRate = "r", nextFundingTime = "T"
    }

    package init(eventTime: Int64, symbol: String, markPrice: Decimal, fundingRate: Decimal, nextFundingTime: Int64) {
        self.eventTime = eventTime
        self.symbol = symbol
        self.markPrice = markPrice
        indexPrice = markPrice
        estimatedSettlePrice = markPrice
        self.fundingRate = fundingRate
        self.nextFundingTime = nextFundingTime
    }
}

/// User data `ORDER_TRADE_UPDATE`: an order changed; with execution type `TRADE` it carries one fill.
public struct OrderTradeUpdate: Codable, Sendable, Equatable {
    public struct Order: Codable, Sendable, Equatable {
        public var symbol: String
        public var clientOrderId: String
        public var side: OrderSide
        public var type: String
        public var originalType: String
        @DecimalString public var quantity: Decimal
        @DecimalString public var averagePrice: Decimal
        @DecimalString public var stopPrice: Decimal
        /// NEW, TRADE, CANCELED, EXPIRED, CALCULATED (a liquidation), AMENDMENT.
        public var executionType: String
        public var status: OrderStatus
        public var orderId: Int64
        @DecimalString public var lastFilledQuantity: Decimal
        @DecimalString public var cumulativeQuantity: Decimal
        @DecimalString public var lastFilledPrice: Decimal
        public var commissionAsset: String?
        @DecimalString public var commission: Decimal
        public var tradeTime: Int64
        public var tradeId: Int64
        public var reduceOnly: Bool
        public var closePosition: Bool
        @DecimalString public var realizedProfit: Decimal
        public var positionSide: String

        enum CodingKeys: String, CodingKey {
            case symbol = "s", clientOrderId = "c", side = "S", type = "o", originalType = "ot", quantity = "q"
            case averagePrice = "ap", stopPrice = "sp", executionType = "x", status = "X", orderId = "i"
            case lastFilledQuantity = "l", cumulativeQuantity = "z", lastFilledPrice = "L", commissionAsset = "N"
            case commission = "n", tradeTime = "T", tradeId = "t", reduceOnly = "R", closePosition = "cp"
            case realizedProfit = "rp", positionSide = "ps"
        }

        /// Binance names a liquidation's order `autoclose-…` and an ADL's `adl_autoclose`.
        public var isLiquidation: Bool {
            executionType == "CALCULATED" || clientOrderId.hasPrefix("autoclose-") || clientOrderId == "adl_autoclose"
        }

        /// The fill as `userTrades` reports it (nil unless this update is a trade).
        public var trade: UserTrade? {
            guard executionType == "TRADE" || executionType == "CALCULATED", lastFilledQuantity > 0 else { return nil }
            return UserTrade(symbol: symbol, id: tradeId, orderId: orderId, side: side, price: lastFilledPrice, qty: lastFilledQuantity,
                             quoteQty: lastFilledPrice * lastFilledQuantity, realizedPnl: realizedProfit, commission: commission,
                             commissionAsset: commissionAsset ?? "USDT", positionSide: positionSide, buyer: side == .buy, maker: false,
                             time: tradeTime)
        }

        package init(trade: UserTrade, order: OrderResponse) {
            symbol = trade.symbol
            clientOrderId = order.clientOrderId
            side = trade.side
            type = order.type
            originalType = order.origType
            quantity = order.origQty
            averagePrice = order.avgPrice
            stopPrice = order.stopPrice
            executionType = "TRADE"
            status = order.status
            orderId = order.orderId
            lastFilledQuantity = trade.qty
            cumulativeQuantity = order.executedQty
            lastFilledPrice = trade.price
            commissionAsset = trade.commissionAsset
            commission = trade.commission
            tradeTime = trade.time
            tradeId = trade.id
            reduceOnly = order.reduceOnly
            closePosition = order.closePosition
            realizedProfit = trade.realizedPnl
            positionSide = "BOTH"
        }
    }

    public var eventType = "ORDER_TRADE_UPDATE"
    public var eventTime: Int64
    public var transactionTime: Int64
    public var order: Order

    enum CodingKeys: String, CodingKey { case eventType = "e", eventTime = "E", transactionTime = "T", order = "o" }

    package init(eventTime: Int64, order: Order) {
        self.eventTime = eventTime
        transactionTime = order.tradeTime
        self.order = order
    }
}

/// User data `ACCOUNT_UPDATE`: balances and positions that changed, and why (`m`: ORDER, FUNDING_FEE, …).
public struct AccountUpdate: Codable, Sendable, Equatable {
    public struct Balance: Codable, Sendable, Equatable {
        public var asset: String
        @DecimalString public var walletBalance: Decimal
        @DecimalString public var crossWalletBalance: Decimal
        @DecimalString public var balanceChange: Decimal

        enum CodingKeys: String, CodingKey { case asset = "a", walletBalance = "wb", crossWalletBalance = "cw", balanceChange = "bc" }

        package init(asset: String, walletBalance: Decimal, balanceChange: Decimal) {
            self.asset = asset
            self.walletBalance = walletBalance
            crossWalletBalance = walletBalance
            self.balanceChange = balanceChange
        }
    }

    public struct Position: Codable, Sendable, Equatable {
        public var symbol: String
        @DecimalString public var positionAmount: Decimal
        @DecimalString public var entryPrice: Decimal
        @DecimalString public var breakEvenPrice: Decimal
        @DecimalString public var accumulatedRealized: Decimal
        @DecimalString public var unrealizedProfit: Decimal
        public var marginType: String
        public var positionSide: String

        enum CodingKeys: String, CodingKey {
            case symbol = "s", positionAmount = "pa", entryPrice = "ep", breakEvenPrice = "bep", accumulatedRealized = "cr"
            case unrealizedProfit = "up", marginType = "mt", positionSide = "ps"
        }

        package init(symbol: String, positionAmount: Decimal, entryPrice: Decimal, unrealizedProfit: Decimal) {
            self.symbol = symbol
            self.positionAmount = positionAmount
            self.entryPrice = entryPrice
            breakEvenPrice = entryPrice
            accumulatedRealized = 0
            self.unrealizedProfit = unrealizedProfit
            marginType = "cross"
            positionSide = "BOTH"
        }
    }

    public struct Change: Codable, Sendable, Equatable {
        public var reason: String
        public var balances: [Balance]
        public var positions: [Position]

        enum CodingKeys: String, CodingKey { case reason = "m", balances = "B", positions = "P" }
    }

    public var eventType = "ACCOUNT_UPDATE"
    public var eventTime: Int64
    public var transactionTime: Int64
    public var change: Change

    enum CodingKeys: String, CodingKey { case eventType = "e", eventTime = "E", transactionTime = "T", change = "a" }

    package init(eventTime: Int64, transactionTime: Int64, reason: String, balances: [Balance], positions: [Position]) {
        self.eventTime = eventTime
        self.transactionTime = transactionTime
        change = Change(reason: reason, balances: balances, positions: positions)
    }
}

/// User data `ALGO_UPDATE`: a conditional (algo) order changed state; `actualOrderId` is the
/// MARKET order it became when it triggered.
public struct AlgoUpdate: Codable, Sendable, Equatable {
    public struct Order: Codable, Sendable, Equatable {
        public var clientAlgoId: String
        public var algoId: Int64
        public var algoType: String
        public var orderType: String
        public var symbol: String
        public var side: OrderSide
        @DecimalString public var quantity: Decimal
        public var status: AlgoStatus
        public var actualOrderId: String
        @DecimalString public var triggerPrice: Decimal
        public var workingType: WorkingType
        public var closePosition: Bool
        public var triggerTime: Int64

        enum CodingKeys: String, CodingKey {
            case clientAlgoId = "caid", algoId = "aid", algoType = "at", orderType = "o", symbol = "s", side = "S", quantity = "q"
            case status = "X", actualOrderId = "ai", triggerPrice = "tp", workingType = "wt", closePosition = "cp", triggerTime = "tt"
        }

        package init(_ algo: AlgoOrder) {
            clientAlgoId = algo.clientAlgoId
            algoId = algo.algoId
            algoType = algo.algoType
            orderType = algo.orderType
            symbol = algo.symbol
            side = algo.side
            quantity = algo.quantity
            status = algo.algoStatus
            actualOrderId = algo.actualOrderId
            triggerPrice = algo.triggerPrice
            workingType = algo.workingType
            closePosition = algo.closePosition
            triggerTime = algo.triggerTime
        }
    }

    public var eventType = "ALGO_UPDATE"
    public var eventTime: Int64
    public var transactionTime: Int64
    public var order: Order

    enum CodingKeys: String, CodingKey { case eventType = "e", eventTime = "E", transactionTime = "T", order = "o" }

    package init(eventTime: Int64, order: Order) {
        self.eventTime = eventTime
        transactionTime = eventTime
        self.order = order
    }
}

/// User data `listenKeyExpired`: the stream ends; a new key and a reconciliation are needed.
public struct ListenKeyExpired: Codable, Sendable, Equatable {
    public var eventType = "listenKeyExpired"
    public var eventTime: Int64
    public var listenKey: String

    enum CodingKeys: String, CodingKey { case eventType = "e", eventTime = "E", listenKey }

    package init(eventTime: Int64, listenKey: String) {
        self.eventTime = eventTime
        self.listenKey = listenKey
    }
}

/// `POST /fapi/v1/listenKey`'s answer.
public struct ListenKey: Codable, Sendable {
    public var listenKey: String
    package init(listenKey: String) { self.listenKey = listenKey }
}

/// One message read from a stream connection, decoded by its `e` field. An event type this
/// client does not read is `.unread` with its name, never guessed into another case.
public enum StreamEvent: Sendable, Equatable {
    case kline(KlineEvent)
    case markPrices([MarkPriceEvent])
    case orderTradeUpdate(OrderTradeUpdate)
    case accountUpdate(AccountUpdate)
    case algoUpdate(AlgoUpdate)
    case listenKeyExpired(ListenKeyExpired)
    /// The answer to a SUBSCRIBE / UNSUBSCRIBE request (`{"result": null, "id": n}`).
    case reply(id: Int64)
    case unread(type: String)

    private struct TypeProbe: Decodable {
        let e: String?
        let id: Int64?
    }

    private struct Combined<Payload: Decodable>: Decodable {
        let stream: String
        let data: Payload
    }

    private struct CombinedProbe: Decodable {
        let stream: String?
    }

    /// Decodes a text frame from a raw (`/ws/…`) or combined (`/stream?streams=…`) connection.
    public static func decode(_ text: String) throws -> StreamEvent {
        let data = Data(text.utf8)
        let decoder = JSONDecoder()
        if (try? decoder.decode(CombinedProbe.self, from: data))?.stream != nil {
            return try decoder.decode(Combined<Payload>.self, from: data).data.event
        }
        return try decoder.decode(Payload.self, from: data).event
    }

    private struct Payload: Decodable {
        let event: StreamEvent

        init(from decoder: Decoder) throws {
            if let marks = try? [MarkPriceEvent](from: decoder) {
                event = .markPrices(marks)
                return
            }
            let probe = try TypeProbe(from: decoder)
            switch probe.e {
            case "kline": event = .kline(try KlineEvent(from: decoder))
            case "markPriceUpdate": event = .markPrices([try MarkPriceEvent(from: decoder)])
            case "ORDER_TRADE_UPDATE": event = .orderTradeUpdate(try OrderTradeUpdate(from: decoder))
            case "ACCOUNT_UPDATE": event = .accountUpdate(try AccountUpdate(from: decoder))
            case "ALGO_UPDATE": event = .algoUpdate(try AlgoUpdate(from: decoder))
            case "listenKeyExpired": event = .listenKeyExpired(try ListenKeyExpired(from: decoder))
            case nil:
                guard let id = probe.id else {
                    throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "a stream message with neither \"e\" nor \"id\""))
                }
                event = .reply(id: id)
            case let other?: event = .unread(type: other)
            }
        }
    }
}
