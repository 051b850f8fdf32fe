import Exchange
import Foundation

/// The Binance USDⓈ-M endpoints the simulator serves, with Binance's weights.
extension SimExchange {
    static let endpoints: [String: Endpoint] = [
        "GET /fapi/v1/ping": Endpoint(.none) { _ in { _ in Reply(status: 200, body: Data("{}".utf8)) } },
        "GET /fapi/v1/time": Endpoint(.none, SimExchange.time),
        "GET /fapi/v1/exchangeInfo": Endpoint(.none, SimExchange.exchangeInfo),
        "GET /fapi/v1/ticker/24hr": Endpoint(.none, SimExchange.ticker24h),
        "GET /fapi/v1/klines": Endpoint(.none, SimExchange.klines),
        "GET /fapi/v1/premiumIndex": Endpoint(.none, SimExchange.premiumIndex),
        "POST /fapi/v1/order": Endpoint(.signed, countsAsOrder: true, SimExchange.newOrder),
        "GET /fapi/v1/order": Endpoint(.signed, SimExchange.queryOrder),
        "DELETE /fapi/v1/order": Endpoint(.signed, SimExchange.cancelOrder),
        "GET /fapi/v1/openOrders": Endpoint(.signed, SimExchange.openOrders),
        "GET /fapi/v1/userTrades": Endpoint(.signed, SimExchange.userTrades),
        "GET /fapi/v1/commissionRate": Endpoint(.signed, SimExchange.commissionRate),
        "GET /fapi/v2/positionRisk": Endpoint(.signed, SimExchange.positionRisk),
        "GET /fapi/v2/account": Endpoint(.signed, SimExchange.account),
        "GET /fapi/v2/balance": Endpoint(.signed, SimExchange.balance),
        "POST /fapi/v1/leverage": Endpoint(.signed, SimExchange.leverage),
        "GET /fapi/v1/positionSide/dual": Endpoint(.signed, SimExchange.positionMode),
        "POST /fapi/v1/positionSide/dual": Endpoint(.signed, SimExchange.setPositionMode),
        "POST /fapi/v1/algoOrder": Endpoint(.signed, SimExchange.newAlgoOrder),
        "GET /fapi/v1/algoOrder": Endpoint(.signed, SimExchange.queryAlgoOrder),
        "DELETE /fapi/v1/algoOrder": Endpoint(.signed, SimExchange.cancelAlgoOrder),
        "GET /fapi/v1/openAlgoOrders": Endpoint(.signed, SimExchange.openAlgoOrders),
        "GET /fapi/v1/allAlgoOrders": Endpoint(.signed, SimExchange.allAlgoOrders),
        "GET /fapi/v1/allOrders": Endpoint(.signed, SimExchange.allOrders),
        "GET /fapi/v1/income": Endpoint(.signed, SimExchange.income),
        "GET /fapi/v3/positionRisk": Endpoint(.signed, SimExchange.positionRiskV3),
        "GET /fapi/v3/account": Endpoint(.signed, SimExchange.accountV3),
        "GET /fapi/v3/balance": Endpoint(.signed, SimExchange.balance),
        "POST /fapi/v1/listenKey": Endpoint(.apiKey, SimExchange.newListenKey),
        "PUT /fapi/v1/listenKey": Endpoint(.apiKey, SimExchange.keepAliveListenKey),
        "DELETE /fapi/v1/listenKey": Endpoint(.apiKey, SimExchange.closeListenKey),
    ]

    // MARK: Market data

    func time(_ request: Request) throws -> Reply {
        try json(ServerTime(serverTime: request.wallMs))
    }

    func exchangeInfo(_ request: Request) throws -> Reply {
        try json(ExchangeInfo(
            timezone: "UTC", serverTime: request.wallMs,
            rateLimits: [RateLimit(rateLimitType: "REQUEST_WEIGHT", interval: "MINUTE", intervalNum: 1, limit: config.weightLimitPerMinute),
                         RateLimit(rateLimitType: "ORDERS", interval: "MINUTE", intervalNum: 1, limit: 1_200)],
            symbols: market.listings.map(\.symbolInfo)))
    }

    func ticker24h(_ request: Request) throws -> Reply {
        if request.parameters["symbol"] != nil {
            let (index, _) = try listing(request)
            return try json(ticker(index, nowMs: request.simulatedMs))
        }
        return try json(market.listings.indices.map { ticker($0, nowMs: request.simulatedMs) })
    }

    private func ticker(_ index: Int, nowMs: Int64) -> Ticker24h {
        let listing = market.listings[index]
        let day = market.lastDay(index)
        let round = { (value: Double) in listing.filters.roundPrice(Decimal(value), .nearest) }
        let open = round(day.first?.open ?? market.mark(index)), last = markDecimal(index)
        let volume = day.reduce(0) { $0 + $1.volume }, quote = day.reduce(0) { $0 + $1.quoteVolume }
        return Ticker24h(
            symbol: listing.symbol, priceChange: last - open, priceChangePercent: open > 0 ? (last - open) / open * 100 : 0,
            weightedAvgPrice: round(volume > 0 ? quote / volume : market.mark(index)), lastPrice: last, lastQty: listing.filters.minQty,
            openPrice: open, highPrice: round(day.map(\.high).max() ?? market.mark(index)),
            lowPrice: round(day.map(\.low).min() ?? market.mark(index)),
            volume: SymbolFilters.floor(Decimal(volume), to: listing.filters.stepSize), quoteVolume: SymbolFilters.floor(Decimal(quote), to: 0.01),
            openTime: day.first?.openTime ?? nowMs, closeTime: nowMs, firstId: 1, lastId: day.reduce(0) { $0 + $1.trades },
            count: day.reduce(0) { $0 + $1.trades })
    }

    func klines(_ request: Request) throws -> Reply {
        let (index, listing) = try listing(request)
        guard try request.required("interval") == "1m" else { throw BinanceError(.badInterval, "Invalid interval.") }
        let limit = Int(try request.int("limit") ?? 500)
        guard (1...1_500).contains(limit) else {
            throw BinanceError(code: -1130, message: "Invalid data sent for a parameter: limit must be 1 to 1500.", httpStatus: 400)
        }
        let bars = market.klines(index, startTime: try request.int("startTime"), endTime: try request.int("endTime"), limit: limit)
        return try json(bars.map { binanceKline($0, listing: listing) })
    }

    func premiumIndex(_ request: Request) throws -> Reply {
        let eightHours: Int64 = 8 * 3_600_000
        let make = { (index: Int) -> PremiumIndex in
            let mark = self.markDecimal(index)
            return PremiumIndex(symbol: self.market.listings[index].symbol, markPrice: mark, indexPrice: mark, estimatedSettlePrice: mark,
                                lastFundingRate: 0.0001, interestRate: 0.0001,
                                nextFundingTime: (request.simulatedMs / eightHours + 1) * eightHours, time: request.simulatedMs)
        }
        if request.parameters["symbol"] != nil { return try json(make(try listing(request).0)) }
        return try json(market.listings.indices.map(make))
    }

    // MARK: Orders

    func newOrder(_ request: Request) throws -> Reply {
        let (index, listing) = try listing(request)
        let side = try Self.side(request)
        let type = try request.required("type")
        switch type {
        case "MARKET": break
        case "STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET":
            throw BinanceError(.useAlgoOrderAPI, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.")
        default:
            throw BinanceError(.invalidOrderType, "Invalid orderType: the simulator fills MARKET orders only.")
        }
        let clientOrderId = try request.parameters["newClientOrderId"].map(Self.checkedClientID) ?? "sim-\(request.wallMs)-\(index)"
        let order = try account.placeMarketOrder(
            listing: listing, side: side, quantity: try request.decimal("quantity"), reduceOnly: try request.bool("reduceOnly"),
            clientOrderId: clientOrderId, mark: markDecimal(index), nowMs: request.simulatedMs, marks: { self.marks(of: $0) })
        return try json(order)
    }

    static func side(_ request: Request) throws -> OrderSide {
        guard let side = OrderSide(rawValue: try request.required("side")) else { throw BinanceError(.invalidSide, "Invalid side.") }
        return side
    }

    static func checkedClientID(_ id: String) throws -> String {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:/_-")
        guard id.count <= 36, id.allSatisfy({ allowed.contains($0) }) else {
            throw BinanceError(.illegalCharacters, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        }
        return id
    }

    private func findOrder(_ request: Request) throws -> OrderResponse? {
        let (_, listing) = try listing(request)
        if let id = try request.int("orderId") { return account.order(symbol: listing.symbol, orderId: id) }
        guard let clientID = request.parameters["origClientOrderId"], !clientID.isEmpty else {
            throw BinanceError(.mandatoryParameterMissing, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        }
        return account.order(symbol: listing.symbol, clientOrderId: clientID)
    }

    func queryOrder(_ request: Request) throws -> Reply {
        guard let order = try findOrder(request) else { throw BinanceError(.noSuchOrder, "Order does not exist.") }
        return try json(order)
    }

    func cancelOrder(_ request: Request) throws -> Reply {
        // MARKET orders fill at once: there is never anything open to cancel.
        _ = try findOrder(request)
        throw BinanceError(.cancelRejected, "Unknown order sent.")
    }

    func openOrders(_ request: Request) throws -> Reply {
        let symbol = request.parameters["symbol"] != nil ? try listing(request).1.symbol : nil
        return try json(account.openOrders.filter { symbol == nil || $0.symbol == symbol })
    }

    func userTrades(_ request: Request) throws -> Reply {
        let (_, listing) = try listing(request)
        let limit = Int(try request.int("limit") ?? 500)
        guard (1...1_000).contains(limit) else {
            throw BinanceError(code: -1130, message: "Invalid data sent for a parameter: limit must be 1 to 1000.", httpStatus: 400)
        }
        var trades = account.trades[listing.symbol] ?? []
        if let orderId = try request.int("orderId") { trades = trades.filter { $0.orderId == orderId } }
        if let fromId = try request.int("fromId") { trades = trades.filter { $0.id >= fromId } }
        if let start = try request.int("startTime") { trades = trades.filter { $0.time >= start } }
        if let end = try request.int("endTime") { trades = trades.filter { $0.time <= end } }
        let fromStart = request.parameters["fromId"] != nil || request.parameters["orderId"] != nil || request.parameters["startTime"] != nil
        return try json(Array(fromStart ? trades.prefix(limit) : trades.suffix(limit)))
    }

    // MARK: Account

    func commissionRate(_ request: Request) throws -> Reply {
        let (_, listing) = try listing(request)
        return try json(CommissionRate(symbol: listing.symbol, makerCommissionRate: account.takerFeeRate * 2 / 5,
                                       takerCommissionRate: account.takerFeeRate))
    }

    func positionRisk(_ request: Request) throws -> Reply {
        let indices = request.parameters["symbol"] != nil ? [try listing(request).0] : Array(market.listings.indices)
        return try json(indices.map { index -> PositionRisk in
            let symbol = market.listings[index].symbol
            let position = account.positions[symbol] ?? SimAccount.Position()
            let mark = markDecimal(index)
            let leverage = account.leverage(symbol)
            return PositionRisk(
                symbol: symbol, positionAmt: position.amount, entryPrice: position.entryPrice, breakEvenPrice: position.entryPrice,
                markPrice: mark, unRealizedProfit: account.unrealizedPnL(symbol, mark: mark), liquidationPrice: 0,
                leverage: Decimal(leverage), maxNotionalValue: 1_000_000, marginType: "cross", isolatedMargin: 0,
                isAutoAddMargin: "false", positionSide: "BOTH", notional: position.amount * mark, isolatedWallet: 0,
                updateTime: position.updateTime)
        })
    }

    func account(_ request: Request) throws -> Reply {
        let marks = positionMarks()
        let unrealized = account.totalUnrealized(marks: marks), initial = account.initialMargin(marks: marks)
        let maintenance = account.maintenanceMargin(marks: marks), wallet = account.walletBalance
        let available = account.availableBalance(marks: marks)
        let positions = account.positions.keys.sorted().map { symbol -> AccountPosition in
            let position = account.positions[symbol]!
            let mark = marks[symbol] ?? 0
            let notional = position.amount * mark
            return AccountPosition(symbol: symbol, initialMargin: abs(notional) / Decimal(account.leverage(symbol)),
                                   maintMargin: abs(notional) * account.maintenanceMarginRate,
                                   unrealizedProfit: account.unrealizedPnL(symbol, mark: mark), positionAmt: position.amount,
                                   entryPrice: position.entryPrice, leverage: Decimal(account.leverage(symbol)), notional: notional,
                                   positionSide: "BOTH", isolated: false, updateTime: position.updateTime)
        }
        return try json(AccountInfo(
            totalInitialMargin: initial, totalMaintMargin: maintenance, totalWalletBalance: wallet, totalUnrealizedProfit: unrealized,
            totalMarginBalance: wallet + unrealized, totalPositionInitialMargin: initial, totalOpenOrderInitialMargin: 0,
            totalCrossWalletBalance: wallet, totalCrossUnPnl: unrealized, availableBalance: available, maxWithdrawAmount: max(0, available),
            assets: [AccountAsset(asset: "USDT", walletBalance: wallet, unrealizedProfit: unrealized, marginBalance: wallet + unrealized,
                                  maintMargin: maintenance, initialMargin: initial, availableBalance: available, updateTime: request.simulatedMs)],
            positions: positions))
    }

    func balance(_ request: Request) throws -> Reply {
        let marks = positionMarks()
        let unrealized = account.totalUnrealized(marks: marks), available = account.availableBalance(marks: marks)
        return try json([AssetBalance(accountAlias: "SimUSDT", asset: "USDT", balance: account.walletBalance,
                                      crossWalletBalance: account.walletBalance, crossUnPnl: unrealized, availableBalance: available,
                                      maxWithdrawAmount: max(0, available), marginAvailable: true, updateTime: request.simulatedMs)])
    }

    func leverage(_ request: Request) throws -> Reply {
        let (_, listing) = try listing(request)
        guard let leverage = try request.int("leverage"), (1...125).contains(leverage) else {
            throw BinanceError(.invalidLeverage, "Leverage \(request.parameters["leverage"] ?? "") is not valid")
        }
        account.leverage[listing.symbol] = Int(leverage)
        return try json(LeverageResponse(leverage: Int(leverage), maxNotionalValue: 1_000_000, symbol: listing.symbol))
    }

    func positionMode(_ request: Request) throws -> Reply {
        try json(PositionMode(dualSidePosition: account.hedgeMode))
    }

    func setPositionMode(_ request: Request) throws -> Reply {
        let dual = try request.bool("dualSidePosition")
        guard dual != account.hedgeMode else { throw BinanceError(.noNeedToChangePositionSide, "No need to change position side.") }
        account.hedgeMode = dual
        return try json(CodeMessage(code: 200, msg: "success"))
    }

    // MARK: Algo orders

    func newAlgoOrder(_ request: Request) throws -> Reply {
        guard try request.required("algoType") == "CONDITIONAL" else {
            throw BinanceError(code: -1116, message: "Invalid algoType: only CONDITIONAL is supported.", httpStatus: 400)
        }
        let (index, listing) = try listing(request)
        let closePosition = try request.bool("closePosition")
        let quantity = closePosition ? 0 : try request.decimal("quantity")
        let workingType = try request.parameters["workingType"].map { text -> WorkingType in
            guard let type = WorkingType(rawValue: text) else {
                throw BinanceError(.illegalCharacters, "Illegal characters found in parameter 'workingType'; legal range is 'MARK_PRICE, CONTRACT_PRICE'.")
            }
            return type
        } ?? .contractPrice
        let clientAlgoId = try request.parameters["clientAlgoId"].map(Self.checkedClientID) ?? "simalgo-\(request.wallMs)-\(index)"
        let order = try account.placeStop(
            listing: listing, side: try Self.side(request), type: try request.required("type"),
            triggerPrice: try request.decimal("triggerPrice"), closePosition: closePosition, quantity: quantity,
            workingType: workingType, clientAlgoId: clientAlgoId, mark: markDecimal(index), nowMs: request.simulatedMs)
        return try json(order)
    }

    private func algoKeys(_ request: Request) throws -> (Int64?, String?) {
        let algoId = try request.int("algoId"), clientAlgoId = request.parameters["clientAlgoId"]
        guard algoId != nil || clientAlgoId?.isEmpty == false else {
            throw BinanceError(.mandatoryParameterMissing, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        }
        return (algoId, clientAlgoId)
    }

    func queryAlgoOrder(_ request: Request) throws -> Reply {
        let (algoId, clientAlgoId) = try algoKeys(request)
        guard let order = account.algoOrder(algoId: algoId, clientAlgoId: clientAlgoId) else {
            throw BinanceError(.noSuchOrder, "Order does not exist.")
        }
        return try json(order)
    }

    func cancelAlgoOrder(_ request: Request) throws -> Reply {
        let (algoId, clientAlgoId) = try algoKeys(request)
        return try json(try account.cancelAlgo(algoId: algoId, clientAlgoId: clientAlgoId, nowMs: request.simulatedMs))
    }

    func openAlgoOrders(_ request: Request) throws -> Reply {
        let symbol = request.parameters["symbol"] != nil ? try listing(request).1.symbol : nil
        return try json(account.openAlgoOrders.filter { symbol == nil || $0.symbol == symbol })
    }
}
