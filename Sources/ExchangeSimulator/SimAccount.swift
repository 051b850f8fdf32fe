import Exchange
import Foundation

/// One-way positions on a cross-margin USDT account: MARKET fills at the mark ± slippage with a
/// taker fee, realized PnL on reduction, conditional stops held until the mark crosses them.
/// Every rule that refuses an order answers with Binance's code and message.
struct SimAccount: Sendable {
    struct Position: Sendable {
        var amount: Decimal = 0
        var entryPrice: Decimal = 0
        var updateTime: Int64 = 0
    }

    /// What changed, in order, for the user data stream (drained by `SimExchange`).
    enum Event: Sendable {
        case trade(UserTrade, OrderResponse)
        case algo(AlgoOrder)
    }

    var walletBalance: Decimal
    private(set) var events: [Event] = []
    let takerFeeRate: Decimal
    let slippageBps: Decimal
    let maintenanceMarginRate: Decimal = 0.004
    var positions: [String: Position] = [:]
    var leverage: [String: Int] = [:]
    var hedgeMode = false
    private(set) var orders: [Int64: OrderResponse] = [:]
    private var orderByClientID: [String: Int64] = [:]
    private(set) var trades: [String: [UserTrade]] = [:]
    /// Every algo order ever placed (queries find finished ones); written only through `keep`.
    private(set) var algoOrders: [Int64: AlgoOrder] = [:]
    /// The ids of the live (NEW) ones, which every market step checks.
    private var liveAlgoIDs: Set<Int64> = []
    private var algoByClientID: [String: Int64] = [:]
    private var nextOrderID: Int64 = 8_000_000_001
    private var nextTradeID: Int64 = 500_000_001
    private var nextAlgoID: Int64 = 3_000_000_001
    static let defaultLeverage = 20

    init(walletBalance: Decimal, takerFeeRate: Decimal, slippageBps: Decimal) {
        self.walletBalance = walletBalance
        self.takerFeeRate = takerFeeRate
        self.slippageBps = slippageBps
    }

    func leverage(_ symbol: String) -> Int { leverage[symbol] ?? Self.defaultLeverage }

    // MARK: Orders

    /// A MARKET order: validated, filled completely, recorded with its trade.
    mutating func placeMarketOrder(listing: SimListing, side: OrderSide, quantity: Decimal, reduceOnly: Bool,
                                   clientOrderId: String, mark: Decimal, nowMs: Int64,
                                   marks: (_ ofSymbols: [String]) -> [String: Decimal]) throws -> OrderResponse {
        let filters = listing.filters
        guard quantity > 0 else { throw BinanceError(.quantityLessThanZero, "Quantity less than or equal to zero.") }
        guard filters.isOnStep(quantity) else { throw BinanceError(.badPrecision, "Precision is over the maximum defined for this asset.") }
        guard quantity >= filters.minQty else { throw BinanceError(.quantityLessThanMinimum, "Quantity less than min quantity.") }
        guard quantity <= filters.marketMaxQty else { throw BinanceError(.quantityGreaterThanMaximum, "Quantity greater than max quantity.") }
        if let existing = orderByClientID[key(listing.symbol, clientOrderId)], orders[existing]?.status == .new {
            throw BinanceError(.duplicateClientOrderID, "ClientOrderId is duplicated.")
        }
        let position = positions[listing.symbol] ?? Position()
        var filled = quantity
        if reduceOnly {
            let reduces = (side == .sell && position.amount > 0) || (side == .buy && position.amount < 0)
            guard reduces else { throw BinanceError(.reduceOnlyRejected, "ReduceOnly Order is rejected.") }
            filled = min(quantity, abs(position.amount))
        } else if quantity * mark < filters.minNotional {
            throw BinanceError(.minimumNotional,
                               "Order's notional must be no smaller than \(filters.minNotional.plainString) (unless you choose reduce only).")
        }
        let price = fillPrice(side: side, mark: mark, filters: filters)
        let signed = side == .buy ? filled : -filled
        let opening = Self.openingPart(current: position.amount, change: signed)
        if opening != 0 {
            let required = abs(opening) * price / Decimal(leverage(listing.symbol)) + abs(opening) * price * takerFeeRate
            // The marks of every position are needed only when margin is (not for a reduction).
            guard required <= availableBalance(marks: marks(Array(positions.keys))) else { throw BinanceError(.marginInsufficient, "Margin is insufficient.") }
        }
        let orderID = nextOrderID
        nextOrderID += 1
        let trade = apply(symbol: listing.symbol, side: side, quantity: filled, price: price, orderID: orderID, nowMs: nowMs)
        let response = OrderResponse(
            orderId: orderID, symbol: listing.symbol, status: .filled, clientOrderId: clientOrderId, price: 0, avgPrice: price,
            origQty: quantity, executedQty: filled, cumQuote: trade.quoteQty, timeInForce: "GTC", type: "MARKET",
            reduceOnly: reduceOnly, closePosition: false, side: side, positionSide: "BOTH", stopPrice: 0,
            workingType: "CONTRACT_PRICE", priceProtect: false, origType: "MARKET", updateTime: nowMs)
        orders[orderID] = response
        orderByClientID[key(listing.symbol, clientOrderId)] = orderID
        events.append(.trade(trade, response))
        return response
    }

    mutating func drainEvents() -> [Event] {
        defer { events.removeAll() }
        return events
    }

    /// Every order of `symbol`, oldest first (`allOrders`).
    func orders(symbol: String) -> [OrderResponse] {
        orders.values.filter { $0.symbol == symbol }.sorted { $0.orderId < $1.orderId }
    }

    func order(symbol: String, clientOrderId: String) -> OrderResponse? {
        orderByClientID[key(symbol, clientOrderId)].flatMap { orders[$0] }
    }

    func order(symbol: String, orderId: Int64) -> OrderResponse? {
        orders[orderId].flatMap { $0.symbol == symbol ? $0 : nil }
    }

    var openOrders: [OrderResponse] { orders.values.filter { $0.status == .new }.sorted { $0.orderId < $1.orderId } }

    private func key(_ symbol: String, _ clientID: String) -> String { symbol + "\u{0}" + clientID }

    private func fillPrice(side: OrderSide, mark: Decimal, filters: SymbolFilters) -> Decimal {
        let slip = mark * slippageBps / 10_000
        return filters.roundPrice(side == .buy ? mark + slip : mark - slip, side == .buy ? .up : .down)
    }

    /// The part of `change` that opens or increases exposure (the rest closes).
    static func openingPart(current: Decimal, change: Decimal) -> Decimal {
        if current == 0 || (current > 0) == (change > 0) { return change }
        let remainder = current + change
        return (remainder != 0 && (remainder > 0) != (current > 0)) ? remainder : 0
    }

    /// Applies a fill to the position and the wallet and records the trade.
    private mutating func apply(symbol: String, side: OrderSide, quantity: Decimal, price: Decimal, orderID: Int64,
                                nowMs: Int64) -> UserTrade {
        var position = positions[symbol] ?? Position()
        let signed = side == .buy ? quantity : -quantity
        var realized: Decimal = 0
        let opening = Self.openingPart(current: position.amount, change: signed)
        let closing = signed - opening
        if closing != 0 {
            // Closing a long sells (closing < 0): PnL = (price − entry) · |closing|.
            realized = (price - position.entryPrice) * (-closing)
            position.amount += closing
            if position.amount == 0 { position.entryPrice = 0 }
        }
        if opening != 0 {
            let total = position.amount + opening
            position.entryPrice = (position.entryPrice * abs(position.amount) + price * abs(opening)) / abs(total)
            position.amount = total
        }
        position.updateTime = nowMs
        positions[symbol] = position
        let quote = price * quantity
        let fee = quote * takerFeeRate
        walletBalance += realized - fee
        let trade = UserTrade(symbol: symbol, id: nextTradeID, orderId: orderID, side: side, price: price, qty: quantity,
                              quoteQty: quote, realizedPnl: realized, commission: fee, commissionAsset: "USDT",
                              positionSide: "BOTH", buyer: side == .buy, maker: false, time: nowMs)
        nextTradeID += 1
        trades[symbol, default: []].append(trade)
        return trade
    }

    // MARK: Algo (conditional) orders

    mutating func placeStop(listing: SimListing, side: OrderSide, type: String, triggerPrice: Decimal, closePosition: Bool,
                            quantity: Decimal, workingType: WorkingType, clientAlgoId: String, mark: Decimal, nowMs: Int64) throws -> AlgoOrder {
        guard type == "STOP_MARKET" || type == "TAKE_PROFIT_MARKET" else {
            throw BinanceError(.invalidOrderType, "Invalid orderType: the simulator's algo service takes STOP_MARKET and TAKE_PROFIT_MARKET.")
        }
        guard triggerPrice > 0, listing.filters.isOnTick(triggerPrice) else {
            throw BinanceError(.badPrecision, "Precision is over the maximum defined for this asset.")
        }
        if let existing = algoByClientID[clientAlgoId], algoOrders[existing]?.algoStatus == .new {
            throw BinanceError(.duplicateClientOrderID, "ClientOrderId is duplicated.")
        }
        if Self.fires(type: type, side: side, trigger: triggerPrice, mark: mark) {
            throw BinanceError(code: -2021, message: "Order would immediately trigger.", httpStatus: 400)
        }
        let algoID = nextAlgoID
        nextAlgoID += 1
        let order = AlgoOrder(
            algoId: algoID, clientAlgoId: clientAlgoId, algoType: "CONDITIONAL", orderType: type, symbol: listing.symbol, side: side,
            positionSide: "BOTH", timeInForce: "GTC", quantity: closePosition ? 0 : quantity, algoStatus: .new,
            triggerPrice: triggerPrice, price: 0, workingType: workingType, closePosition: closePosition, priceProtect: false,
            reduceOnly: true, createTime: nowMs, updateTime: nowMs, triggerTime: 0, actualOrderId: "", executedQty: 0, avgPrice: 0)
        keep(order)
        algoByClientID[clientAlgoId] = algoID
        events.append(.algo(order))
        return order
    }

    func algoOrder(algoId: Int64?, clientAlgoId: String?) -> AlgoOrder? {
        if let algoId { return algoOrders[algoId] }
        return clientAlgoId.flatMap { algoByClientID[$0] }.flatMap { algoOrders[$0] }
    }

    mutating func cancelAlgo(algoId: Int64?, clientAlgoId: String?, nowMs: Int64) throws -> AlgoOrder {
        guard var order = algoOrder(algoId: algoId, clientAlgoId: clientAlgoId), order.algoStatus == .new else {
            throw BinanceError(.cancelRejected, "Unknown order sent.")
        }
        order.algoStatus = .canceled
        order.updateTime = nowMs
        keep(order)
        events.append(.algo(order))
        return order
    }

    private mutating func keep(_ order: AlgoOrder) {
        algoOrders[order.algoId] = order
        if order.algoStatus == .new { liveAlgoIDs.insert(order.algoId) } else { liveAlgoIDs.remove(order.algoId) }
    }

    var openAlgoOrders: [AlgoOrder] { liveAlgoIDs.sorted().compactMap { algoOrders[$0] } }

    var hasOpenAlgoOrders: Bool { !liveAlgoIDs.isEmpty }

    static func fires(type: String, side: OrderSide, trigger: Decimal, mark: Decimal) -> Bool {
        firesAtOrBelow(type: type, side: side) ? mark <= trigger : mark >= trigger
    }

    /// A stop sells below (buys above) the market; a take-profit the other way round.
    static func firesAtOrBelow(type: String, side: OrderSide) -> Bool {
        switch (type == "STOP_MARKET", side) {
        case (true, .sell), (false, .buy): return true
        case (true, .buy), (false, .sell): return false
        }
    }

    /// One symbol's live stops, their ids in placing order, and the band of marks (as Doubles)
    /// outside of which one of them might fire.
    struct LiveStops {
        var ids: [Int64] = []
        /// The highest trigger of the stops that fire at or below it.
        var highestFiringBelow = -Double.infinity
        /// The lowest trigger of the stops that fire at or above it.
        var lowestFiringAbove = Double.infinity

        /// Whether a raw mark could fire one once it is rounded to the tick (at most half a tick
        /// away): only then is it worth the `Decimal` rounding and the exact comparison. The margin
        /// is a whole tick, plus what converting between Double and Decimal can move a price.
        func mightFire(at price: Double, tick: Double) -> Bool {
            let margin = tick + abs(price) * 1e-9
            return price <= highestFiringBelow + margin || price >= lowestFiringAbove - margin
        }
    }

    /// The live stops by symbol: what each market step must check. Finished ones stay in
    /// `algoOrders` for queries and are never scanned again.
    var liveStopsBySymbol: [String: LiveStops] {
        var bySymbol: [String: LiveStops] = [:]
        for id in liveAlgoIDs.sorted() {
            guard let algo = algoOrders[id] else { continue }
            let trigger = algo.triggerPrice.doubleValue
            bySymbol[algo.symbol, default: LiveStops()].ids.append(id)
            if Self.firesAtOrBelow(type: algo.orderType, side: algo.side) {
                bySymbol[algo.symbol]!.highestFiringBelow = max(bySymbol[algo.symbol]!.highestFiringBelow, trigger)
            } else {
                bySymbol[algo.symbol]!.lowestFiringAbove = min(bySymbol[algo.symbol]!.lowestFiringAbove, trigger)
            }
        }
        return bySymbol
    }

    /// Fires the open conditional orders of `symbol` that the mark has crossed: each becomes a
    /// reduce-only MARKET fill (its order's client id is the algo's client id).

    /// Fires the stops among `ids` (live stops of `listing`) that `mark` crosses.
    mutating func triggerStops(_ ids: [Int64], listing: SimListing, mark: Decimal, nowMs: Int64) {
        for id in ids {
            guard let algo = algoOrders[id], algo.algoStatus == .new else { continue }
            guard Self.fires(type: algo.orderType, side: algo.side, trigger: algo.triggerPrice, mark: mark) else { continue }
            var updated = algo
            updated.triggerTime = nowMs
            updated.updateTime = nowMs
            let position = positions[listing.symbol]?.amount ?? 0
            let closes = (algo.side == .sell && position > 0) || (algo.side == .buy && position < 0)
            guard closes else {
                updated.algoStatus = .expired  // nothing left to close
                keep(updated)
                events.append(.algo(updated))
                continue
            }
            let quantity = algo.closePosition ? abs(position) : min(algo.quantity, abs(position))
            let price = fillPrice(side: algo.side, mark: mark, filters: listing.filters)
            let orderID = nextOrderID
            nextOrderID += 1
            let trade = apply(symbol: listing.symbol, side: algo.side, quantity: quantity, price: price, orderID: orderID, nowMs: nowMs)
            let order = OrderResponse(
                orderId: orderID, symbol: listing.symbol, status: .filled, clientOrderId: algo.clientAlgoId, price: 0, avgPrice: price,
                origQty: quantity, executedQty: quantity, cumQuote: trade.quoteQty, timeInForce: "GTC", type: "MARKET",
                reduceOnly: true, closePosition: algo.closePosition, side: algo.side, positionSide: "BOTH",
                stopPrice: algo.triggerPrice, workingType: algo.workingType.rawValue, priceProtect: false, origType: algo.orderType,
                updateTime: nowMs)
            orders[orderID] = order
            orderByClientID[key(listing.symbol, algo.clientAlgoId)] = orderID
            updated.algoStatus = .finished
            updated.actualOrderId = String(orderID)
            updated.executedQty = quantity
            updated.avgPrice = price
            keep(updated)
            // Binance reports the trigger (ALGO_UPDATE with the actual order id) before the fill.
            events.append(.algo(updated))
            events.append(.trade(trade, order))
        }
    }

    // MARK: Margin

    func unrealizedPnL(_ symbol: String, mark: Decimal) -> Decimal {
        guard let position = positions[symbol] else { return 0 }
        return (mark - position.entryPrice) * position.amount
    }

    func initialMargin(marks: [String: Decimal]) -> Decimal {
        // One division per leverage in use rather than one per position: Decimal division was the
        // simulator's costliest step of an order with hundreds of positions open.
        var notionalByLeverage: [Int: Decimal] = [:]
        for (symbol, position) in positions { notionalByLeverage[leverage(symbol), default: 0] += abs(position.amount) * (marks[symbol] ?? 0) }
        return notionalByLeverage.reduce(0) { $0 + $1.value / Decimal($1.key) }
    }

    func maintenanceMargin(marks: [String: Decimal]) -> Decimal {
        positions.reduce(0) { sum, entry in sum + abs(entry.value.amount) * (marks[entry.key] ?? 0) * maintenanceMarginRate }
    }

    func totalUnrealized(marks: [String: Decimal]) -> Decimal {
        positions.reduce(0) { $0 + unrealizedPnL($1.key, mark: marks[$1.key] ?? 0) }
    }

    func availableBalance(marks: [String: Decimal]) -> Decimal {
        walletBalance + totalUnrealized(marks: marks) - initialMargin(marks: marks)
    }
}
