import Exchange
import Foundation

/// `/fapi/v3/account|positionRisk`, `allOrders`, `allAlgoOrders` and `income` as Binance documents
/// them, so Binance's own connectors run against the simulator unchanged.
extension SimExchange {
    struct PositionV3: Encodable {
        let symbol: String
        var positionSide = "BOTH"
        @DecimalString var positionAmt: Decimal
        @DecimalString var entryPrice: Decimal
        @DecimalString var breakEvenPrice: Decimal
        @DecimalString var markPrice: Decimal
        @DecimalString var unRealizedProfit: Decimal
        @DecimalString var liquidationPrice: Decimal = 0
        @DecimalString var isolatedMargin: Decimal = 0
        @DecimalString var notional: Decimal
        var marginAsset = "USDT"
        @DecimalString var isolatedWallet: Decimal = 0
        @DecimalString var initialMargin: Decimal
        @DecimalString var maintMargin: Decimal
        @DecimalString var positionInitialMargin: Decimal
        @DecimalString var openOrderInitialMargin: Decimal = 0
        var adl = 0
        @DecimalString var bidNotional: Decimal = 0
        @DecimalString var askNotional: Decimal = 0
        let updateTime: Int64
    }

    struct AccountV3: Encodable {
        @DecimalString var totalInitialMargin: Decimal
        @DecimalString var totalMaintMargin: Decimal
        @DecimalString var totalWalletBalance: Decimal
        @DecimalString var totalUnrealizedProfit: Decimal
        @DecimalString var totalMarginBalance: Decimal
        @DecimalString var totalPositionInitialMargin: Decimal
        @DecimalString var totalOpenOrderInitialMargin: Decimal = 0
        @DecimalString var totalCrossWalletBalance: Decimal
        @DecimalString var totalCrossUnPnl: Decimal
        @DecimalString var availableBalance: Decimal
        @DecimalString var maxWithdrawAmount: Decimal
        let assets: [AccountAsset]
        let positions: [PositionV3]
    }

    struct Income: Encodable {
        let symbol: String
        let incomeType: String
        @DecimalString var income: Decimal
        let asset: String
        let info: String
        let time: Int64
        let tranId: Int64
        let tradeId: String
    }

    /// Positions that are open (v3 lists nothing else), with their margins at the mark.
    private func openPositionsV3(symbol: String?) -> [PositionV3] {
        account.positions.keys.sorted().compactMap { name -> PositionV3? in
            guard symbol == nil || symbol == name, let position = account.positions[name], position.amount != 0,
                  let index = market.index[name] else { return nil }
            let mark = markDecimal(index)
            let notional = position.amount * mark
            let initial = abs(notional) / Decimal(account.leverage(name))
            return PositionV3(symbol: name, positionAmt: position.amount, entryPrice: position.entryPrice,
                              breakEvenPrice: position.entryPrice, markPrice: mark,
                              unRealizedProfit: account.unrealizedPnL(name, mark: mark), notional: notional, initialMargin: initial,
                              maintMargin: abs(notional) * account.maintenanceMarginRate, positionInitialMargin: initial,
                              updateTime: position.updateTime)
        }
    }

    func positionRiskV3(_ request: Request) throws -> Reply {
        let symbol = request.parameters["symbol"] != nil ? try listing(request).1.symbol : nil
        return try json(openPositionsV3(symbol: symbol))
    }

    func accountV3(_ request: Request) throws -> Reply {
        let marks = positionMarks()
        let unrealized = account.totalUnrealized(marks: marks), initial = account.initialMargin(marks: marks)
        let maintenance = account.maintenanceMargin(marks: marks), wallet = account.walletBalance
        let available = account.availableBalance(marks: marks)
        return try json(AccountV3(
            totalInitialMargin: initial, totalMaintMargin: maintenance, totalWalletBalance: wallet, totalUnrealizedProfit: unrealized,
            totalMarginBalance: wallet + unrealized, totalPositionInitialMargin: initial, totalCrossWalletBalance: wallet,
            totalCrossUnPnl: unrealized, availableBalance: available, maxWithdrawAmount: max(0, available),
            assets: [AccountAsset(asset: "USDT", walletBalance: wallet, unrealizedProfit: unrealized, marginBalance: wallet + unrealized,
                                  maintMargin: maintenance, initialMargin: initial, availableBalance: available, updateTime: request.simulatedMs)],
            positions: openPositionsV3(symbol: nil)))
    }

    /// Binance's paging: at most `limit` (default `defaultLimit`, at most `maxLimit`).
    private func limit(_ request: Request, defaultLimit: Int, maxLimit: Int) throws -> Int {
        let limit = Int(try request.int("limit") ?? Int64(defaultLimit))
        guard (1...maxLimit).contains(limit) else {
            throw BinanceError(code: -1130, message: "Invalid data sent for a parameter: limit must be 1 to \(maxLimit).", httpStatus: 400)
        }
        return limit
    }

    /// The window `[startTime, endTime]` (simulated ms); Binance allows at most 7 days.
    private func window(_ request: Request) throws -> ClosedRange<Int64> {
        let start = try request.int("startTime") ?? 0, end = try request.int("endTime") ?? Int64.max
        guard start <= end else {
            throw BinanceError(code: -1130, message: "Invalid data sent for a parameter: startTime is after endTime.", httpStatus: 400)
        }
        return start...end
    }

    func allOrders(_ request: Request) throws -> Reply {
        let (_, listing) = try listing(request)
        let limit = try limit(request, defaultLimit: 500, maxLimit: 1_000), window = try window(request)
        var orders = account.orders(symbol: listing.symbol).filter { window.contains($0.updateTime) }
        if let from = try request.int("orderId") { orders = orders.filter { $0.orderId >= from } }
        return try json(Array(request.parameters["orderId"] != nil ? orders.prefix(limit) : orders.suffix(limit)))
    }

    func allAlgoOrders(_ request: Request) throws -> Reply {
        let (_, listing) = try listing(request)
        let limit = try limit(request, defaultLimit: 500, maxLimit: 1_000), window = try window(request)
        var orders = account.algoOrders.values.filter { $0.symbol == listing.symbol && window.contains($0.createTime) }
            .sorted { $0.algoId < $1.algoId }
        if let from = try request.int("algoId") { orders = orders.filter { $0.algoId >= from } }
        return try json(Array(request.parameters["algoId"] != nil ? orders.prefix(limit) : orders.suffix(limit)))
    }

    /// Realized PnL and commissions, one record each per trade, oldest first.
    func income(_ request: Request) throws -> Reply {
        let symbol = request.parameters["symbol"] != nil ? try listing(request).1.symbol : nil
        let limit = try limit(request, defaultLimit: 100, maxLimit: 1_000), window = try window(request)
        let known = ["REALIZED_PNL", "COMMISSION", "FUNDING_FEE", "TRANSFER", "INSURANCE_CLEAR"]
        let type = request.parameters["incomeType"]
        if let type, !known.contains(type) {
            throw BinanceError(.illegalCharacters, "Illegal characters found in parameter 'incomeType'; legal range is '\(known.joined(separator: ", "))'.")
        }
        var records: [Income] = []
        for trade in account.trades.values.joined() where (symbol == nil || trade.symbol == symbol) && window.contains(trade.time) {
            if trade.realizedPnl != 0 {
                records.append(Income(symbol: trade.symbol, incomeType: "REALIZED_PNL", income: trade.realizedPnl, asset: "USDT", info: "",
                                      time: trade.time, tranId: trade.id * 2, tradeId: String(trade.id)))
            }
            records.append(Income(symbol: trade.symbol, incomeType: "COMMISSION", income: -trade.commission, asset: "USDT", info: "",
                                  time: trade.time, tranId: trade.id * 2 + 1, tradeId: String(trade.id)))
        }
        records = records.filter { type == nil || $0.incomeType == type }.sorted { ($0.time, $0.tranId) < ($1.time, $1.tranId) }
        return try json(Array(records.prefix(limit)))
    }
}
