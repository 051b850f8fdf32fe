import Foundation

/// Why a quantity or price cannot be sent: never a silent zero or a silent clamp.
public enum FilterError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingFilter(symbol: String, filter: String)
    case notPositive(symbol: String, value: Decimal)
    case roundsToZero(symbol: String, quantity: Decimal, stepSize: Decimal)
    case belowMinimumQuantity(symbol: String, quantity: Decimal, minimum: Decimal)
    case aboveMaximumQuantity(symbol: String, quantity: Decimal, maximum: Decimal)
    case belowMinimumNotional(symbol: String, notional: Decimal, minimum: Decimal)
    case priceOutOfRange(symbol: String, price: Decimal, minimum: Decimal, maximum: Decimal)

    public var description: String {
        switch self {
        case .missingFilter(let symbol, let filter): return "\(symbol): exchangeInfo has no \(filter) filter"
        case .notPositive(let symbol, let value): return "\(symbol): \(value.plainString) is not positive"
        case .roundsToZero(let symbol, let quantity, let step):
            return "\(symbol): quantity \(quantity.plainString) rounds down to 0 at step \(step.plainString)"
        case .belowMinimumQuantity(let symbol, let quantity, let minimum):
            return "\(symbol): quantity \(quantity.plainString) is below minQty \(minimum.plainString)"
        case .aboveMaximumQuantity(let symbol, let quantity, let maximum):
            return "\(symbol): quantity \(quantity.plainString) is above maxQty \(maximum.plainString)"
        case .belowMinimumNotional(let symbol, let notional, let minimum):
            return "\(symbol): notional \(notional.plainString) is below MIN_NOTIONAL \(minimum.plainString)"
        case .priceOutOfRange(let symbol, let price, let minimum, let maximum):
            return "\(symbol): price \(price.plainString) is outside [\(minimum.plainString), \(maximum.plainString)]"
        }
    }
}

/// A symbol's trading filters from exchangeInfo, and the rounding every order goes through.
/// All arithmetic is `Decimal`: 0.1 + 0.2 must be 0.3 when it becomes a quantity.
public struct SymbolFilters: Sendable, Equatable {
    public let symbol: String
    public let tickSize: Decimal
    public let minPrice: Decimal
    public let maxPrice: Decimal
    public let stepSize: Decimal
    public let minQty: Decimal
    public let maxQty: Decimal
    /// MARKET orders have their own lot limits (MARKET_LOT_SIZE); the step is the same.
    public let marketMaxQty: Decimal
    public let minNotional: Decimal

    public init(symbol: String, tickSize: Decimal, minPrice: Decimal = 0, maxPrice: Decimal = 0, stepSize: Decimal,
                minQty: Decimal, maxQty: Decimal, marketMaxQty: Decimal? = nil, minNotional: Decimal) {
        self.symbol = symbol
        self.tickSize = tickSize
        self.minPrice = minPrice
        self.maxPrice = maxPrice
        self.stepSize = stepSize
        self.minQty = minQty
        self.maxQty = maxQty
        self.marketMaxQty = marketMaxQty ?? maxQty
        self.minNotional = minNotional
    }

    public init(_ info: SymbolInfo) throws {
        func filter(_ type: String) throws -> SymbolFilterJSON {
            guard let found = info.filters.first(where: { $0.filterType == type }) else {
                throw FilterError.missingFilter(symbol: info.symbol, filter: type)
            }
            return found
        }
        func decimal(_ text: String?, _ name: String) throws -> Decimal {
            guard let text, let value = Decimal.parse(text) else { throw FilterError.missingFilter(symbol: info.symbol, filter: name) }
            return value
        }
        let price = try filter("PRICE_FILTER"), lot = try filter("LOT_SIZE"), notional = try filter("MIN_NOTIONAL")
        let market = info.filters.first { $0.filterType == "MARKET_LOT_SIZE" }
        self.init(symbol: info.symbol, tickSize: try decimal(price.tickSize, "PRICE_FILTER.tickSize"),
                  minPrice: try decimal(price.minPrice, "PRICE_FILTER.minPrice"), maxPrice: try decimal(price.maxPrice, "PRICE_FILTER.maxPrice"),
                  stepSize: try decimal(lot.stepSize, "LOT_SIZE.stepSize"), minQty: try decimal(lot.minQty, "LOT_SIZE.minQty"),
                  maxQty: try decimal(lot.maxQty, "LOT_SIZE.maxQty"),
                  marketMaxQty: try market.map { try decimal($0.maxQty, "MARKET_LOT_SIZE.maxQty") },
                  minNotional: try decimal(notional.notional, "MIN_NOTIONAL.notional"))
    }

    /// Down to a whole number of steps: an order never gets larger than asked.
    public func roundQuantityDown(_ quantity: Decimal) -> Decimal {
        Self.floor(quantity, to: stepSize)
    }

    public enum PriceRounding: Sendable { case down, up, nearest }

    /// To a whole number of ticks. A stop for a long rounds down, for a short up: away from the market.
    public func roundPrice(_ price: Decimal, _ rounding: PriceRounding) -> Decimal {
        guard tickSize > 0 else { return price }
        var ticks = price / tickSize
        var whole = Decimal()
        let mode: NSDecimalNumber.RoundingMode = rounding == .down ? .down : rounding == .up ? .up : .plain
        NSDecimalRound(&whole, &ticks, 0, mode)
        return whole * tickSize
    }

    /// The quantity a MARKET order can carry for `requested` at `price`: rounded down to the
    /// step, within the lot limits, and at least the minimum notional unless it is reduce-only
    /// (Binance exempts reduce-only orders from MIN_NOTIONAL). Throws instead of returning 0.
    public func marketQuantity(_ requested: Decimal, price: Decimal, reduceOnly: Bool) throws -> Decimal {
        guard requested > 0 else { throw FilterError.notPositive(symbol: symbol, value: requested) }
        let quantity = roundQuantityDown(requested)
        guard quantity > 0 else { throw FilterError.roundsToZero(symbol: symbol, quantity: requested, stepSize: stepSize) }
        guard quantity >= minQty else { throw FilterError.belowMinimumQuantity(symbol: symbol, quantity: quantity, minimum: minQty) }
        guard quantity <= marketMaxQty else {
            throw FilterError.aboveMaximumQuantity(symbol: symbol, quantity: quantity, maximum: marketMaxQty)
        }
        let notional = quantity * price
        if !reduceOnly && notional < minNotional {
            throw FilterError.belowMinimumNotional(symbol: symbol, notional: notional, minimum: minNotional)
        }
        return quantity
    }

    /// Whether `quantity` is a whole number of steps (what the exchange accepts unchanged).
    public func isOnStep(_ quantity: Decimal) -> Bool {
        Self.floor(quantity, to: stepSize) == quantity
    }

    public func isOnTick(_ price: Decimal) -> Bool {
        roundPrice(price, .down) == price
    }

    package static func floor(_ value: Decimal, to step: Decimal) -> Decimal {
        guard step > 0 else { return value }
        var steps = value / step
        var whole = Decimal()
        NSDecimalRound(&whole, &steps, 0, .down)
        return whole * step
    }
}
