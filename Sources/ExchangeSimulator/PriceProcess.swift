import Exchange
import Foundation
import Kernels

/// The market regimes the simulator switches between.
public enum MarketRegime: String, Sendable, CaseIterable {
    case trend, meanReverting, choppy, volatilityBurst
}

/// One symbol's regime-switching log-price process, stepped four times per 1m bar.
/// Trend: drift with noise; mean-reverting: pulled back to an anchor; choppy: returns that
/// partly undo the previous one; volatility burst: four times the noise. Regimes last a
/// geometric number of bars (bursts are short) unless a scenario forces one.
struct PriceProcess: Sendable {
    static let stepsPerBar = 4

    private(set) var logPrice: Double
    private(set) var regime: MarketRegime
    private var barsLeft: Int
    private var stepInBar = 0
    private var trendSign: Double
    private var anchor: Double
    private var lastReturn = 0.0
    /// Noise of one step; a 1m bar's is twice this.
    let stepSigma: Double
    private var random: SeededGenerator

    init(startPrice: Double, barSigma: Double, random: SeededGenerator) {
        self.random = random
        logPrice = log(startPrice)
        anchor = logPrice
        stepSigma = barSigma / Double(Self.stepsPerBar).squareRoot()
        regime = .choppy
        barsLeft = 0
        trendSign = 1
        pickRegime()
    }

    /// Forces `regime` for the next `bars` bars (a test scenario: "the market flips").
    mutating func force(_ regime: MarketRegime, bars: Int, trendUp: Bool = true) {
        self.regime = regime
        barsLeft = bars
        trendSign = trendUp ? 1 : -1
        anchor = logPrice
    }

    /// Advances one step; returns the new price.
    mutating func step() -> Double {
        let noise = random.gaussian() * stepSigma
        let move: Double
        switch regime {
        case .trend: move = trendSign * 0.3 * stepSigma + noise
        case .meanReverting: move = -0.08 * (logPrice - anchor) + noise
        case .choppy: move = -0.45 * lastReturn + 1.1 * noise
        case .volatilityBurst: move = 4 * noise
        }
        logPrice += move
        lastReturn = move
        stepInBar += 1
        if stepInBar == Self.stepsPerBar {
            stepInBar = 0
            barsLeft -= 1
            if barsLeft <= 0 { pickRegime() }
        }
        return exp(logPrice)
    }

    /// A volume multiplier for the step: heavier in bursts and trends.
    mutating func volumeFactor() -> Double {
        let regimeFactor: Double = regime == .volatilityBurst ? 3 : regime == .trend ? 1.4 : 1
        return regimeFactor * exp(0.35 * random.gaussian())
    }

    private mutating func pickRegime() {
        let draw = Double.random(in: 0..<1, using: &random)
        let next: MarketRegime = draw < 0.3 ? .trend : draw < 0.6 ? .meanReverting : draw < 0.9 ? .choppy : .volatilityBurst
        regime = next
        let meanBars: Double = next == .volatilityBurst ? 8 : 90
        barsLeft = max(2, Int(-meanBars * log(max(1e-9, Double.random(in: 0..<1, using: &random)))))
        trendSign = Bool.random(using: &random) ? 1 : -1
        anchor = logPrice
    }
}
