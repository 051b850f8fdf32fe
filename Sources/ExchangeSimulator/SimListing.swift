import Exchange
import Foundation
import Kernels

/// One simulated perpetual: its name, filters and the scale of its price and volume, chosen
/// from the seed so that a run with N symbols always lists the same N.
struct SimListing: Sendable {
    let symbol: String
    let baseAsset: String
    let startPrice: Double
    let barSigma: Double
    /// Quote volume of an average 1m bar (USDT); spreads 24 h volumes over orders of magnitude.
    let barQuoteVolume: Double
    let filters: SymbolFilters
    let pricePrecision: Int
    let quantityPrecision: Int

    /// Familiar names first (with roughly their real prices and filters), then synthetic ones.
    private static let known: [(String, Double, Decimal, Decimal, Decimal)] = [
        ("BTC", 60_000, 0.1, 0.001, 100), ("ETH", 3_000, 0.01, 0.001, 20), ("BNB", 600, 0.01, 0.01, 5),
        ("SOL", 150, 0.01, 1, 5), ("XRP", 0.6, 0.0001, 0.1, 5), ("DOGE", 0.15, 0.00001, 1, 5),
        ("ADA", 0.45, 0.0001, 1, 5), ("AVAX", 35, 0.001, 1, 5), ("LINK", 15, 0.001, 0.01, 5),
        ("DOT", 7, 0.001, 0.1, 5), ("LTC", 80, 0.01, 0.001, 20), ("TRX", 0.12, 0.00001, 1, 5),
        ("ATOM", 9, 0.001, 0.01, 5), ("NEAR", 5, 0.001, 1, 5), ("APT", 9, 0.0001, 0.1, 5),
        ("ARB", 1.1, 0.0001, 0.1, 5), ("OP", 2.5, 0.0001, 0.1, 5), ("SUI", 1.2, 0.0001, 0.1, 5),
        ("INJ", 25, 0.001, 0.1, 5), ("FIL", 5, 0.001, 0.1, 5),
    ]

    static func listings(count: Int, seed: UInt64) -> [SimListing] {
        var random = SeededGenerator(seed: seed, stream: "listings")
        return (0..<count).map { index in
            let volumeRank = Double(index + 1)
            // Zipf-like: the first symbols trade the most, as on the real exchange.
            let barQuoteVolume = 2_000_000 / pow(volumeRank, 0.9) * exp(0.3 * random.gaussian())
            let barSigma = 0.0012 + 0.0025 * Double.random(in: 0..<1, using: &random)
            if index < known.count {
                let (base, price, tick, step, notional) = known[index]
                return make(base: base, price: price, tick: tick, step: step, minNotional: notional, barSigma: barSigma,
                            barQuoteVolume: barQuoteVolume)
            }
            let price = exp(Double.random(in: log(0.005)...log(500), using: &random))
            let magnitude = Int(floor(log10(price)))
            let tick = Decimal(sign: .plus, exponent: magnitude - 4, significand: 1)
            let stepExponent = min(2, max(-3, -magnitude - 1))
            let step = Decimal(sign: .plus, exponent: stepExponent, significand: 1)
            return make(base: String(format: "ALT%03d", index), price: price, tick: tick, step: step, minNotional: 5,
                        barSigma: barSigma, barQuoteVolume: barQuoteVolume)
        }
    }

    private static func make(base: String, price: Double, tick: Decimal, step: Decimal, minNotional: Decimal, barSigma: Double,
                             barQuoteVolume: Double) -> SimListing {
        let maxQty = SymbolFilters.floor(Decimal(5_000_000 / price), to: step)
        let filters = SymbolFilters(symbol: base + "USDT", tickSize: tick, minPrice: tick, maxPrice: Decimal(price * 1_000),
                                    stepSize: step, minQty: step, maxQty: max(step, maxQty),
                                    marketMaxQty: max(step, SymbolFilters.floor(maxQty / 4, to: step)), minNotional: minNotional)
        return SimListing(symbol: base + "USDT", baseAsset: base, startPrice: price, barSigma: barSigma,
                          barQuoteVolume: barQuoteVolume, filters: filters, pricePrecision: decimals(tick),
                          quantityPrecision: decimals(step))
    }

    private static func decimals(_ value: Decimal) -> Int { max(0, -value.exponent) }

    var symbolInfo: SymbolInfo {
        let f = filters
        return SymbolInfo(
            symbol: symbol, pair: symbol, contractType: "PERPETUAL", status: "TRADING", baseAsset: baseAsset, quoteAsset: "USDT",
            marginAsset: "USDT", pricePrecision: pricePrecision, quantityPrecision: quantityPrecision,
            filters: [
                SymbolFilterJSON(filterType: "PRICE_FILTER", minPrice: f.minPrice.plainString, maxPrice: f.maxPrice.plainString,
                                 tickSize: f.tickSize.plainString),
                SymbolFilterJSON(filterType: "LOT_SIZE", minQty: f.minQty.plainString, maxQty: f.maxQty.plainString,
                                 stepSize: f.stepSize.plainString),
                SymbolFilterJSON(filterType: "MARKET_LOT_SIZE", minQty: f.minQty.plainString, maxQty: f.marketMaxQty.plainString,
                                 stepSize: f.stepSize.plainString),
                SymbolFilterJSON(filterType: "MAX_NUM_ORDERS", limit: 200),
                SymbolFilterJSON(filterType: "MIN_NOTIONAL", notional: f.minNotional.plainString),
            ],
            orderTypes: ["MARKET"], timeInForce: ["GTC"])
    }
}
