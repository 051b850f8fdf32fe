import Foundation
import Messages
@testable import Kernels
import XCTest

/// The ai-agent's features (§6.5) against values worked out by hand, and the ensemble's
/// consensus rule and confidence.
final class SignalModelTests: XCTestCase {
    /// A rising market with a little back-and-forth: closes grow 0.3 % a bar, ±0.02 % noise.
    static func risingBars(_ count: Int = 100) -> (highs: [Double], lows: [Double], closes: [Double], volumes: [Double]) {
        let closes = (0..<count).map { 100 * pow(1.003, Double($0)) * (1 + 0.0002 * ($0 % 2 == 0 ? 1 : -1)) }
        return (closes.map { $0 * 1.001 }, closes.map { $0 * 0.999 }, closes, (0..<count).map { 1_000 + Double($0 % 5) * 100 })
    }

    func features(_ bars: (highs: [Double], lows: [Double], closes: [Double], volumes: [Double])) throws -> SignalFeatures {
        try XCTUnwrap(SignalFeatures.compute(highs: bars.highs, lows: bars.lows, closes: bars.closes, volumes: bars.volumes))
    }

    func testTooFewBarsGiveNoFeatures() {
        let bars = Self.risingBars(SignalFeatures.minimumBars - 1)
        XCTAssertNil(SignalFeatures.compute(highs: bars.highs, lows: bars.lows, closes: bars.closes, volumes: bars.volumes))
    }

    func testFlatMarketFeatures() throws {
        let flat = Array(repeating: 50.0, count: 80)
        let f = try features((flat, flat, flat, Array(repeating: 10, count: 80)))
        XCTAssertEqual(f.rsi14, 50, "nothing moved")
        XCTAssertEqual(f.bollingerPosition, 0.5, "a flat band puts the close in the middle")
        XCTAssertEqual(f.volatility20, 0)
        XCTAssertEqual(f.macdHistogram, 0)
        XCTAssertEqual(f.emaCross10x20, 0)
        XCTAssertEqual(f.volumeToMA, 1)
        XCTAssertEqual(f.volumeRatio, 1)
        XCTAssertEqual(TechnicalEnsemble().signal(f).direction, .flat, "the volatility filter vetoes a dead market")
    }

    func testFeaturesOfARisingMarket() throws {
        let bars = Self.risingBars()
        let f = try features(bars)
        let closes = bars.closes
        XCTAssertEqual(f.priceChange, closes[99] / closes[98] - 1, accuracy: 1e-12)
        XCTAssertEqual(f.momentum10, closes[99] / closes[89] - 1, accuracy: 1e-12)
        XCTAssertEqual(f.highLowRange, 0.002, accuracy: 1e-12)
        XCTAssertEqual(f.volumeChange, bars.volumes[99] / bars.volumes[98] - 1, accuracy: 1e-12)
        // EMA 10 by its definition: seeded with the mean of the first 10, then α = 2/11.
        var ema10 = closes[0..<10].reduce(0, +) / 10
        for close in closes[10...] { ema10 += 2.0 / 11 * (close - ema10) }
        XCTAssertEqual(f.ema10, ema10, accuracy: 1e-9)
        XCTAssertGreaterThan(f.ema10, f.ema20)
        XCTAssertGreaterThan(f.ema20, f.ema50)
        XCTAssertEqual(f.emaCross10x20, 1)
        XCTAssertEqual(f.emaCross10x50, 1)
        XCTAssertGreaterThan(f.rsi14, 70, "mostly gains")
        XCTAssertGreaterThan(f.macdHistogram, 0, "an accelerating rise: MACD above its signal")
        XCTAssertEqual(f.macdHistogram, f.macdLine - f.macdSignal, accuracy: 1e-12)
        XCTAssertGreaterThan(f.bollingerPosition, 0.5)
        XCTAssertLessThan(f.bollingerPosition, 1)
        XCTAssertGreaterThan(f.volatility20, 1e-4)
        XCTAssertEqual(Set(f.named.keys).count, 18)
    }

    func testEnsembleGoesLongOnARiseShortOnAFallWithTheDocumentedConfidence() throws {
        let model = TechnicalEnsemble()
        let up = model.signal(try features(Self.risingBars()))
        XCTAssertEqual(up.direction, .long, up.reason)
        XCTAssertEqual(up.confidence, 0.5 + 0.5 * 2 / 3, accuracy: 1e-12, "trend and momentum agree, mean reversion abstains")

        let rising = Self.risingBars()
        // The mirror image: an accelerating fall (MACD is in price units, so a decaying fall would not do).
        let falling = (rising.lows.map { 250 - $0 }, rising.highs.map { 250 - $0 }, rising.closes.map { 250 - $0 }, rising.volumes)
        let down = model.signal(try features(falling))
        XCTAssertEqual(down.direction, .short, down.reason)
        XCTAssertEqual(down.confidence, up.confidence, accuracy: 1e-12)
    }

    func testConsensusNeedsTwoVotesAndNoneAgainst() {
        let model = TechnicalEnsemble()
        var f = SignalFeatures()
        f.volatility20 = 0.001
        (f.ema10, f.ema20, f.ema50) = (3, 2, 1)  // trend long
        f.macdHistogram = 1
        f.momentum10 = 0.01                      // momentum long
        f.rsi14 = 80
        f.bollingerPosition = 0.99               // mean reversion short
        XCTAssertEqual(model.signal(f).direction, .flat, "two for, one against: no consensus")
        f.rsi14 = 50
        XCTAssertEqual(model.signal(f).direction, .long)
        f.rsi14 = 20
        f.bollingerPosition = 0.01               // mean reversion long as well
        XCTAssertEqual(model.signal(f).confidence, 1)
        f.volatility20 = 0.05
        XCTAssertEqual(model.signal(f).direction, .flat, "a wild market is vetoed")
    }
}

final class UniverseRankingTests: XCTestCase {
    func state(sigma: Double, ts: Double) -> MarketState {
        var state = MarketState()
        state.sigma = sigma
        state.ts = ts
        return state
    }

    func testRanksByVolumeFiltersByMarketStateAndCapsActive() {
        let listings = (1...8).map { UniverseRanking.Listing(symbol: "S\($0)", quoteVolume: Double($0) * 1_000) }
        let states = ["S8": state(sigma: 0.002, ts: 0.5), "S7": state(sigma: 0.002, ts: 0.1), "S6": state(sigma: 0.0001, ts: 0.9)]
        let entries = UniverseRanking.rank(listings, states: states,
                                           filter: .init(candidates: 6, minSigma: 0.001, minTs: 0.4, maxActive: 2))
        XCTAssertEqual(entries.map(\.symbol), ["S8", "S7", "S6", "S5", "S4", "S3"], "top candidates by quote volume")
        XCTAssertEqual(entries.map(\.rank), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(entries.map(\.reason), [.active, .belowMinTs, .belowMinSigma, .noMarketState, .overMaxActive, .overMaxActive])
        XCTAssertEqual(entries.filter(\.active).map(\.symbol), ["S8", "S5"])
    }

    func testTiesRankAlikeOnEveryHostAndTheRolloutStepsUpOnce() {
        let listings = [UniverseRanking.Listing(symbol: "B", quoteVolume: 5), UniverseRanking.Listing(symbol: "A", quoteVolume: 5)]
        XCTAssertEqual(UniverseRanking.candidates(listings, count: 2).map(\.symbol), ["A", "B"])
        XCTAssertEqual(UniverseRanking.candidates(listings.reversed(), count: 2).map(\.symbol), ["A", "B"])
        XCTAssertEqual(UniverseRanking.nextStep([10, 20, 30], current: 10), 20)
        XCTAssertEqual(UniverseRanking.nextStep([10, 20, 30], current: 30), 30, "the last step holds")
    }
}
