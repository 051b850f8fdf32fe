import Foundation

/// DESIGN.md §6.5: the features of one symbol from its closed 1-minute bars (oldest first). Pure.
public struct SignalFeatures: Sendable, Equatable {
    /// EMA 50 and MACD's signal (26 + 9) need this many bars before they mean anything.
    public static let minimumBars = 60

    public var priceChange = 0.0      // last close / previous close − 1
    public var highLowRange = 0.0     // (high − low) / close of the last bar
    public var volumeChange = 0.0     // last volume / previous volume − 1 (0 when the previous is 0)
    public var volumeToMA = 0.0       // last volume / mean volume of the last 20 bars
    public var ema10 = 0.0, ema20 = 0.0, ema50 = 0.0
    public var rsi14 = 50.0           // Wilder's RSI, 0–100
    public var macdLine = 0.0, macdSignal = 0.0, macdHistogram = 0.0  // EMA12 − EMA26, its EMA9, the difference
    public var bollingerPosition = 0.5  // (close − lower) / (upper − lower) of the 20-bar, 2σ band; 0.5 on a flat band
    public var volatility20 = 0.0     // population standard deviation of the last 20 returns
    public var momentum10 = 0.0, momentum20 = 0.0  // close / close n bars ago − 1
    public var emaCross10x20 = 0.0    // +1 when EMA 10 is above EMA 20, −1 below, 0 equal
    public var emaCross10x50 = 0.0
    public var volumeRatio = 0.0      // mean volume of the last 5 bars / of the last 20

    /// Nil with fewer than `minimumBars` bars or arrays of unequal length.
    public static func compute(highs: [Double], lows: [Double], closes: [Double], volumes: [Double]) -> SignalFeatures? {
        let count = closes.count
        guard count >= minimumBars, highs.count == count, lows.count == count, volumes.count == count else { return nil }
        var features = SignalFeatures()
        let close = closes[count - 1]
        features.priceChange = close / closes[count - 2] - 1
        features.highLowRange = (highs[count - 1] - lows[count - 1]) / close
        features.volumeChange = volumes[count - 2] > 0 ? volumes[count - 1] / volumes[count - 2] - 1 : 0
        let volumeMean20 = mean(volumes.suffix(20))
        features.volumeToMA = volumeMean20 > 0 ? volumes[count - 1] / volumeMean20 : 0
        features.volumeRatio = volumeMean20 > 0 ? mean(volumes.suffix(5)) / volumeMean20 : 0

        features.ema10 = ema(closes, period: 10).last!
        features.ema20 = ema(closes, period: 20).last!
        features.ema50 = ema(closes, period: 50).last!
        features.emaCross10x20 = sign(features.ema10 - features.ema20)
        features.emaCross10x50 = sign(features.ema10 - features.ema50)

        let fast = ema(closes, period: 12), slow = ema(closes, period: 26)
        // EMA 12 starts 14 bars before EMA 26: align both on the bars where both exist.
        let line = zip(fast.suffix(slow.count), slow).map { $0 - $1 }
        let signal = ema(line, period: 9)
        features.macdLine = line.last!
        features.macdSignal = signal.last!
        features.macdHistogram = features.macdLine - features.macdSignal

        features.rsi14 = rsi(closes, period: 14)
        let band = Array(closes.suffix(20))
        let bandMean = mean(band[...])
        let bandDeviation = populationDeviation(band[...])
        features.bollingerPosition = bandDeviation > 0 ? (close - (bandMean - 2 * bandDeviation)) / (4 * bandDeviation) : 0.5

        let returns = zip(closes.dropFirst(), closes).map { $0 / $1 - 1 }
        features.volatility20 = populationDeviation(returns.suffix(20))
        features.momentum10 = close / closes[count - 11] - 1
        features.momentum20 = close / closes[count - 21] - 1
        return features
    }

    /// For `TradeIntent.features`: what the model saw, by name.
    public var named: [String: Double] {
        ["price_change": priceChange, "high_low_range": highLowRange, "volume_change": volumeChange, "volume_to_ma": volumeToMA,
         "ema_10": ema10, "ema_20": ema20, "ema_50": ema50, "rsi_14": rsi14, "macd_line": macdLine, "macd_signal": macdSignal,
         "macd_histogram": macdHistogram, "bollinger_position": bollingerPosition, "volatility_20": volatility20,
         "momentum_10": momentum10, "momentum_20": momentum20, "ema_cross_10_20": emaCross10x20, "ema_cross_10_50": emaCross10x50,
         "volume_ratio": volumeRatio]
    }

    /// EMA with α = 2/(n+1), seeded with the mean of the first n values; one value per input from the n-th on.
    static func ema(_ values: [Double], period: Int) -> [Double] {
        guard values.count >= period else { return [] }
        let alpha = 2 / Double(period + 1)
        var current = mean(values.prefix(period))
        var out = [current]
        out.reserveCapacity(values.count - period + 1)
        for value in values.dropFirst(period) {
            current += alpha * (value - current)
            out.append(current)
        }
        return out
    }

    /// Wilder's smoothing over the whole window; 100 when there was no loss, 50 when nothing moved.
    static func rsi(_ closes: [Double], period: Int) -> Double {
        let changes = zip(closes.dropFirst(), closes).map { $0 - $1 }
        var gain = mean(changes.prefix(period).map { max($0, 0) }[...])
        var loss = mean(changes.prefix(period).map { max(-$0, 0) }[...])
        for change in changes.dropFirst(period) {
            gain = (gain * Double(period - 1) + max(change, 0)) / Double(period)
            loss = (loss * Double(period - 1) + max(-change, 0)) / Double(period)
        }
        if loss == 0 { return gain == 0 ? 50 : 100 }
        return 100 - 100 / (1 + gain / loss)
    }

    static func mean<C: Collection>(_ values: C) -> Double where C.Element == Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    static func populationDeviation<C: Collection>(_ values: C) -> Double where C.Element == Double {
        let average = mean(values)
        return values.isEmpty ? 0 : (values.reduce(0) { $0 + ($1 - average) * ($1 - average) } / Double(values.count)).squareRoot()
    }

    static func sign(_ value: Double) -> Double { value > 0 ? 1 : value < 0 ? -1 : 0 }
}
