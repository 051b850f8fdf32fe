import Foundation
@testable import Kernels
import XCTest

/// The sliding market state must equal the full recompute of the last 301 closes, bit for bit,
/// at every step: through warm-up, calm markets, strong trends (the median walks out of its band
/// and the band is rebuilt) and repeated prices (equal slopes).
final class SlidingMarketStateTests: XCTestCase {
    func series(seed: UInt64, count: Int) -> [Double] {
        var random = SeededGenerator(seed: seed)
        var price = 100.0, drift = 0.0
        return (0..<count).map { index in
            if index % 200 == 0 { drift = Double.random(in: -0.004...0.004, using: &random) }
            if index % 350 > 330 { return price }  // flat stretches: many equal (zero) slopes
            price *= exp(drift + 0.002 * random.gaussian())
            return price
        }
    }

    func testEveryStepEqualsTheFullRecomputeOfTheLast301Closes() {
        for seed: UInt64 in [1, 2] {
            let closes = series(seed: seed, count: 1_000)
            var sliding = SlidingMarketState()
            var compared = 0
            for (index, close) in closes.enumerated() {
                let incremental = sliding.append(close)
                // The full recompute is the slow side of the comparison (the unit tests stay
                // under 10 s in a debug build): every step through warm-up and the first
                // slides, then every tenth.
                guard index < 320 || index % 10 == 0 else { continue }
                let window = Array(closes[max(0, index - 300)...index])
                let full = MarketStateKernel.compute(closes: window)
                XCTAssertEqual(incremental, full, "seed \(seed), close \(index)")
                if incremental != full { return }
                if full != nil { compared += 1 }
            }
            XCTAssertGreaterThan(compared, 120)
            XCTAssertGreaterThan(sliding.recenters, 10, "the trends must push the median out of its band")
            print("sliding market state, seed \(seed): \(compared) steps equal to the full recompute, "
                  + "\(sliding.recenters) band moves, \(sliding.rebuilds) rebuilds by selection")
        }
    }

    func testFewerThan257ClosesGiveNoState() {
        var sliding = SlidingMarketState()
        for close in series(seed: 9, count: 256) { XCTAssertNil(sliding.append(close)) }
        XCTAssertNotNil(sliding.append(101))
    }

    /// The band move's sort deals values into buckets by their expected range; values outside
    /// that range, ties and clusters must still come out in order.
    func testSpreadSortOrdersAnyInput() {
        var random = SeededGenerator(seed: 5)
        for count in [0, 1, 33, 500, 2_000] {
            var values = (0..<count).map { _ in Double.random(in: -1...1, using: &random) }
            values += [-3, 3, 0.5, 0.5, 0.5, -1, 1].prefix(count)
            let expected = values.sorted()
            SortedDoubles.sortSpread(&values, from: -0.5, to: 0.75)
            XCTAssertEqual(values, expected, "\(count) values")
        }
    }
}
