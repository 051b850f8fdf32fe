import Foundation

// Binance USDⓈ-M futures JSON shapes for orders, trades, positions and the account, shared by
// the client and the simulator. Enumerations decode strictly: a value this system does not
// know is a decoding error, never a default (R2).

public enum OrderSide: String, Codable, Sendable {
    case buy = "BUY"
    case sell = "SELL"

    public var opposite: OrderSide { self == .buy ? .sell : .buy }
}

public enum OrderStatus: String, Codable, Sendable {
    case new = "NEW"
    case partiallyFilled = "PARTIALLY_FILLED"
    case filled = "FILLED"
    case canceled = "CANCELED"
    case rejected = "REJECTED"
    case expired = "EXPIRED"
    /// Expired by self-trade prevention in the matching engine; like EXPIRED, it may have filled part.
    case expiredInMatch = "EXPIRED_IN_MATCH"
}

public enum AlgoStatus: String, Codable, Sendable {
    case new = "NEW"
    case triggering = "TRIGGERING"
    case triggered = "TRIGGERED"
    case finished = "FINISHED"
    case canceled = "CANCELED"
    case expired = "EXPIRED"
    case rejected = "REJECTED"
}

public enum WorkingType: String, Codable, Sendable {
    case markPrice = "MARK_PRICE"
    case contractPrice = "CONTRACT_PRICE"
}

/// `POST/GET/DELETE /fapi/v1/order` answers.
public struct OrderResponse: Codable, Sendable, Equatable {
    public var orderId: Int64
    public var symbol: String
    public var status: OrderStatus
    public var clientOrderId: String
    @DecimalString public var price: Decimal
    @DecimalString public var avgPrice: Decimal
    @DecimalString public var origQty: Decimal
    @DecimalString public var executedQty: Decimal
    @DecimalString public var cumQuote: Decimal
    public var timeInForce: String
    public var type: String
    public var reduceOnly: Bool
    public var closePosition: Bool
    public var side: OrderSide
    public var positionSide: String
    @DecimalString public var stopPrice: Decimal
    public var workingType: String
    public var priceProtect: Bool
    public var origType: String
    public var updateTime: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(orderId: Int64, symbol: String, status: OrderStatus, clientOrderId: String, price: Decimal, avgPrice: Decimal,
                 origQty: Decimal, executedQty: Decimal, cumQuote: Decimal, timeInForce: String, type: String, reduceOnly: Bool,
                 closePosition: Bool, side: OrderSide, positionSide: String, stopPrice: Decimal, workingType: String,
                 priceProtect: Bool, origType: String, updateTime: Int64) {
        self.orderId = orderId
        self.symbol = symbol
        self.status = status
        self.clientOrderId = clientOrderId
        self.price = price
        self.avgPrice = avgPrice
        self.origQty = origQty
        self.executedQty = executedQty
        self.cumQuote = cumQuote
        self.timeInForce = timeInForce
        self.type = type
        self.reduceOnly = reduceOnly
        self.closePosition = closePosition
        self.side = side
        self.positionSide = positionSide
        self.stopPrice = stopPrice
        self.workingType = workingType
        self.priceProtect = priceProtect
        self.origType = origType
        self.updateTime = updateTime
    }
}

/// `GET /fapi/v1/userTrades` entries.
public struct UserTrade: Codable, Sendable, Equatable {
    public var symbol: String
    public var id: Int64
    public var orderId: Int64
    public var side: OrderSide
    @DecimalString public var price: Decimal
    @DecimalString public var qty: Decimal
    @DecimalString public var quoteQty: Decimal
    @DecimalString public var realizedPnl: Decimal
    @DecimalString public var commission: Decimal
    public var commissionAsset: String
    public var positionSide: String
    public var buyer: Bool
    public var maker: Bool
    public var time: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(symbol: String, id: Int64, orderId: Int64, side: OrderSide, price: Decimal, qty: Decimal, quoteQty: Decimal,
                 realizedPnl: Decimal, commission: Decimal, commissionAsset: String, positionSide: String, buyer: Bool,
                 maker: Bool, time: Int64) {
        self.symbol = symbol
        self.id = id
        self.orderId = orderId
        self.side = side
        self.price = price
        self.qty = qty
        self.quoteQty = quoteQty
        self.realizedPnl = realizedPnl
        self.commission = commission
        self.commissionAsset = commissionAsset
        self.positionSide = positionSide
        self.buyer = buyer
        self.maker = maker
        self.time = time
    }
}

/// `GET /fapi/v2/positionRisk` entries (one-way mode: `positionSide` BOTH).
public struct PositionRisk: Codable, Sendable {
    public var symbol: String
    @DecimalString public var positionAmt: Decimal
    @DecimalString public var entryPrice: Decimal
    @DecimalString public var breakEvenPrice: Decimal
    @DecimalString public var markPrice: Decimal
    @DecimalString public var unRealizedProfit: Decimal
    @DecimalString public var liquidationPrice: Decimal
    @DecimalString public var leverage: Decimal
    @DecimalString public var maxNotionalValue: Decimal
    public var marginType: String
    @DecimalString public var isolatedMargin: Decimal
    public var isAutoAddMargin: String
    public var positionSide: String
    @DecimalString public var notional: Decimal
    @DecimalString public var isolatedWallet: Decimal
    public var updateTime: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(symbol: String, positionAmt: Decimal, entryPrice: Decimal, breakEvenPrice: Decimal, markPrice: Decimal,
                 unRealizedProfit: Decimal, liquidationPrice: Decimal, leverage: Decimal, maxNotionalValue: Decimal,
                 marginType: String, isolatedMargin: Decimal, isAutoAddMargin: String, positionSide: String, notional: Decimal,
                 isolatedWallet: Decimal, updateTime: Int64) {
        self.symbol = symbol
        self.positionAmt = positionAmt
        self.entryPrice = entryPrice
        self.breakEvenPrice = breakEvenPrice
        self.markPrice = markPrice
        self.unRealizedProfit = unRealizedProfit
        self.liquidationPrice = liquidationPrice
        self.leverage = leverage
        self.maxNotionalValue = maxNotionalValue
        self.marginType = marginType
        self.isolatedMargin = isolatedMargin
        self.isAutoAddMargin = isAutoAddMargin
        self.positionSide = positionSide
        self.notional = notional
        self.isolatedWallet = isolatedWallet
        self.updateTime = updateTime
    }
}

/// `GET /fapi/v2/account`.
public struct AccountInfo: Codable, Sendable {
    @DecimalString public var totalInitialMargin: Decimal
    @DecimalString public var totalMaintMargin: Decimal
    @DecimalString public var totalWalletBalance: Decimal
    @DecimalString public var totalUnrealizedProfit: Decimal
    @DecimalString public var totalMarginBalance: Decimal
    @DecimalString public var totalPositionInitialMargin: Decimal
    @DecimalString public var totalOpenOrderInitialMargin: Decimal
    @DecimalString public var totalCrossWalletBalance: Decimal
    @DecimalString public var totalCrossUnPnl: Decimal
    @DecimalString public var availableBalance: Decimal
    @DecimalString public var maxWithdrawAmount: Decimal
    public var assets: [AccountAsset]
    public var positions: [AccountPosition]

    /// Maintenance margin over margin balance: the ratio Binance liquidates at 100 %.
    public var marginRatio: Decimal {
        totalMarginBalance > 0 ? totalMaintMargin / totalMarginBalance : 0
    }

    /// Every field, for the simulator (another target of this package) and tests.
    package init(totalInitialMargin: Decimal, totalMaintMargin: Decimal, totalWalletBalance: Decimal,
                 totalUnrealizedProfit: Decimal, totalMarginBalance: Decimal, totalPositionInitialMargin: Decimal,
                 totalOpenOrderInitialMargin: Decimal, totalCrossWalletBalance: Decimal, totalCrossUnPnl: Decimal,
                 availableBalance: Decimal, maxWithdrawAmount: Decimal, assets: [AccountAsset], positions: [AccountPosition]) {
        self.totalInitialMargin = totalInitialMargin
        self.totalMaintMargin = totalMaintMargin
        self.totalWalletBalance = totalWalletBalance
        self.totalUnrealizedProfit = totalUnrealizedProfit
        self.totalMarginBalance = totalMarginBalance
        self.totalPositionInitialMargin = totalPositionInitialMargin
        self.totalOpenOrderInitialMargin = totalOpenOrderInitialMargin
        self.totalCrossWalletBalance = totalCrossWalletBalance
        self.totalCrossUnPnl = totalCrossUnPnl
        self.availableBalance = availableBalance
        self.maxWithdrawAmount = maxWithdrawAmount
        self.assets = assets
        self.positions = positions
    }
}

public struct AccountAsset: Codable, Sendable {
    public var asset: String
    @DecimalString public var walletBalance: Decimal
    @DecimalString public var unrealizedProfit: Decimal
    @DecimalString public var marginBalance: Decimal
    @DecimalString public var maintMargin: Decimal
    @DecimalString public var initialMargin: Decimal
    @DecimalString public var availableBalance: Decimal
    public var updateTime: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(asset: String, walletBalance: Decimal, unrealizedProfit: Decimal, marginBalance: Decimal, maintMargin: Decimal,
                 initialMargin: Decimal, availableBalance: Decimal, updateTime: Int64) {
        self.asset = asset
        self.walletBalance = walletBalance
        self.unrealizedProfit = unrealizedProfit
        self.marginBalance = marginBalance
        self.maintMargin = maintMargin
        self.initialMargin = initialMargin
        self.availableBalance = availableBalance
        self.updateTime = updateTime
    }
}

public struct AccountPosition: Codable, Sendable {
    public var symbol: String
    @DecimalString public var initialMargin: Decimal
    @DecimalString public var maintMargin: Decimal
    @DecimalString public var unrealizedProfit: Decimal
    @DecimalString public var positionAmt: Decimal
    @DecimalString public var entryPrice: Decimal
    @DecimalString public var leverage: Decimal
    @DecimalString public var notional: Decimal
    public var positionSide: String
    public var isolated: Bool
    public var updateTime: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(symbol: String, initialMargin: Decimal, maintMargin: Decimal, unrealizedProfit: Decimal, positionAmt: Decimal,
                 entryPrice: Decimal, leverage: Decimal, notional: Decimal, positionSide: String, isolated: Bool,
                 updateTime: Int64) {
        self.symbol = symbol
        self.initialMargin = initialMargin
        self.maintMargin = maintMargin
        self.unrealizedProfit = unrealizedProfit
        self.positionAmt = positionAmt
        self.entryPrice = entryPrice
        self.leverage = leverage
        self.notional = notional
        self.positionSide = positionSide
        self.isolated = isolated
        self.updateTime = updateTime
    }
}

/// `GET /fapi/v2/balance` entries.
public struct AssetBalance: Codable, Sendable {
    public var accountAlias: String
    public var asset: String
    @DecimalString public var balance: Decimal
    @DecimalString public var crossWalletBalance: Decimal
    @DecimalString public var crossUnPnl: Decimal
    @DecimalString public var availableBalance: Decimal
    @DecimalString public var maxWithdrawAmount: Decimal
    public var marginAvailable: Bool
    public var updateTime: Int64

    /// Every field, for the simulator (another target of this package) and tests.
    package init(accountAlias: String, asset: String, balance: Decimal, crossWalletBalance: Decimal, crossUnPnl: Decimal,
                 availableBalance: Decimal, maxWithdrawAmount: Decimal, marginAvailable: Bool, updateTime: Int64) {
        self.accountAlias = accountAlias
        self.asset = asset
        self.balance = balance
        self.crossWalletBalance = crossWalletBalance
        self.crossUnPnl = crossUnPnl
        self.availableBalance = availableBalance
        self.maxWithdrawAmount = maxWithdrawAmount
        self.marginAvailable = marginAvailable
        self.updateTime = updateTime
    }
}

public struct LeverageResponse: Codable, Sendable {
    public var leverage: Int
    @DecimalString public var maxNotionalValue: Decimal
    public var symbol: String

    /// Every field, for the simulator (another target of this package) and tests.
    package init(leverage: Int, maxNotionalValue: Decimal, symbol: String) {
        self.leverage = leverage
        self.maxNotionalValue = maxNotionalValue
        self.symbol = symbol
    }
}

/// `GET /fapi/v1/commissionRate`: the account's fee rates for one symbol (fractions: 0.0005 is 0.05 %).
public struct CommissionRate: Codable, Sendable, Equatable {
    public var symbol: String
    @DecimalString public var makerCommissionRate: Decimal
    @DecimalString public var takerCommissionRate: Decimal

    /// Every field, for the simulator (another target of this package) and tests.
    package init(symbol: String, makerCommissionRate: Decimal, takerCommissionRate: Decimal) {
        self.symbol = symbol
        self.makerCommissionRate = makerCommissionRate
        self.takerCommissionRate = takerCommissionRate
    }
}

public struct PositionMode: Codable, Sendable {
    public var dualSidePosition: Bool

    /// Every field, for the simulator (another target of this package) and tests.
    package init(dualSidePosition: Bool) {
        self.dualSidePosition = dualSidePosition
    }
}

/// `{"code": 200, "msg": "success"}`, and every error body.
public struct CodeMessage: Codable, Sendable {
    public var code: Int
    public var msg: String

    /// Every field, for the simulator (another target of this package) and tests.
    package init(code: Int, msg: String) {
        self.code = code
        self.msg = msg
    }
}

/// `POST/GET/DELETE /fapi/v1/algoOrder` and `GET /fapi/v1/openAlgoOrders` entries: a conditional
/// order held by Binance's algo service until its trigger fires.
public struct AlgoOrder: Codable, Sendable {
    public var algoId: Int64
    public var clientAlgoId: String
    public var algoType: String
    public var orderType: String
    public var symbol: String
    public var side: OrderSide
    public var positionSide: String
    public var timeInForce: String
    @DecimalString public var quantity: Decimal
    public var algoStatus: AlgoStatus
    @DecimalString public var triggerPrice: Decimal
    @DecimalString public var price: Decimal
    public var workingType: WorkingType
    public var closePosition: Bool
    public var priceProtect: Bool
    public var reduceOnly: Bool
    public var createTime: Int64
    public var updateTime: Int64
    public var triggerTime: Int64
    /// The MARKET order the trigger placed ("" until then).
    public var actualOrderId: String
    @DecimalString public var executedQty: Decimal
    @DecimalString public var avgPrice: Decimal

    /// Every field, for the simulator (another target of this package) and tests.
    package init(algoId: Int64, clientAlgoId: String, algoType: String, orderType: String, symbol: String, side: OrderSide,
                 positionSide: String, timeInForce: String, quantity: Decimal, algoStatus: AlgoStatus, triggerPrice: Decimal,
                 price: Decimal, workingType: WorkingType, closePosition: Bool, priceProtect: Bool, reduceOnly: Bool,
                 createTime: Int64, updateTime: Int64, triggerTime: Int64, actualOrderId: String, executedQty: Decimal,
                 avgPrice: Decimal) {
        self.algoId = algoId
        self.clientAlgoId = clientAlgoId
        self.algoType = algoType
        self.orderType = orderType
        self.symbol = symbol
        self.side = side
        self.positionSide = positionSide
        self.timeInForce = timeInForce
        self.quantity = quantity
        self.algoStatus = algoStatus
        self.triggerPrice = triggerPrice
        self.price = price
        self.workingType = workingType
        self.closePosition = closePosition
        self.priceProtect = priceProtect
        self.reduceOnly = reduceOnly
        self.createTime = createTime
        self.updateTime = updateTime
        self.triggerTime = triggerTime
        self.actualOrderId = actualOrderId
        self.executedQty = executedQty
        self.avgPrice = avgPrice
    }
}
