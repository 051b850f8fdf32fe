import Foundation

/// What a model says about one symbol at one bar.
public struct Signal: Sendable, Equatable {
    public enum Direction: Sendable, Equatable { case long, short, flat }
    public var direction: Direction
    /// In [0, 1]; each model documents what it means.
    public var confidence: Double
    public var reason: String
}

/// A model behind ai-agent: features in, a signal out. Pure: no I/O, no clock.
public protocol SignalModel: Sendable {
    /// Recorded in every intent, and part of its id.
    var name: String { get }
    func signal(_ features: SignalFeatures) -> Signal
}

/// The built-in model: four technical voters and a consensus rule.
///
/// - trend: EMA 10 > 20 > 50 votes long, EMA 10 < 20 < 50 short;
/// - momentum: MACD histogram and 10-bar momentum both positive votes long, both negative short;
/// - mean reversion: RSI < 30 at the bottom 5 % of the Bollinger band votes long, RSI > 70 at the
///   top 5 % short;
/// - volatility filter: no vote, a veto when the 20-bar volatility is outside
///   [`minVolatility`, `maxVolatility`] (a dead or a wild market).
///
/// Consensus: at least two voters on one side and none on the other; otherwise flat.
/// **Confidence** = 0.5 + 0.5 · (net votes / 3), where net votes = votes for the side − votes
/// against (at most the three directional voters): two agreeing voters give 0.833, three give 1.0.
/// It is the share of the ensemble behind the call, not a probability estimated from outcomes;
/// `min_confidence` (0.55) at intent-bridge therefore means "a consensus formed".
public struct TechnicalEnsemble: SignalModel {
    public var name: String { "technical-ensemble-v1" }
    public var minVolatility = 1e-5
    public var maxVolatility = 0.02

    public init() {}

    public func signal(_ features: SignalFeatures) -> Signal {
        guard features.volatility20 >= minVolatility, features.volatility20 <= maxVolatility else {
            return Signal(direction: .flat, confidence: 0, reason: "volatility filter: 20-bar volatility \(features.volatility20)")
        }
        let votes = [("trend", trend(features)), ("momentum", momentum(features)), ("mean-reversion", meanReversion(features))]
        let longs = votes.filter { $0.1 > 0 }.map(\.0)
        let shorts = votes.filter { $0.1 < 0 }.map(\.0)
        let net = Double(longs.count - shorts.count)
        if longs.count >= 2, shorts.isEmpty {
            return Signal(direction: .long, confidence: 0.5 + 0.5 * net / 3, reason: "long: " + longs.joined(separator: ", "))
        }
        if shorts.count >= 2, longs.isEmpty {
            return Signal(direction: .short, confidence: 0.5 - 0.5 * net / 3, reason: "short: " + shorts.joined(separator: ", "))
        }
        return Signal(direction: .flat, confidence: 0, reason: "no consensus: long \(longs), short \(shorts)")
    }

    func trend(_ f: SignalFeatures) -> Int {
        f.ema10 > f.ema20 && f.ema20 > f.ema50 ? 1 : f.ema10 < f.ema20 && f.ema20 < f.ema50 ? -1 : 0
    }

    func momentum(_ f: SignalFeatures) -> Int {
        f.macdHistogram > 0 && f.momentum10 > 0 ? 1 : f.macdHistogram < 0 && f.momentum10 < 0 ? -1 : 0
    }

    func meanReversion(_ f: SignalFeatures) -> Int {
        f.rsi14 < 30 && f.bollingerPosition < 0.05 ? 1 : f.rsi14 > 70 && f.bollingerPosition > 0.95 ? -1 : 0
    }
}
