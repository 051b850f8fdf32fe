import Foundation

/// DESIGN.md §6.1, from 1m closes (oldest first). Pure: every number arrives as an argument.
public enum MarketStateKernel {
    /// Fewer closes than this: no state at all ("insufficient"), never a fabricated one.
    public static let minimumCloses = 257
    /// Returns used for sigma, dp and vr.
    public static let window = 256
    /// Theil–Sen windows of log price and their weights in `mu`.
    public static let trendWindows = [64, 128, 256]
    public static let trendWeights = [0.5, 0.3, 0.2]
    static let epsilon = 1e-12

    public struct Values: Sendable, Equatable {
        public var sigma, sigmaEwma, sigmaMad, spikeProxy: Double
        public var mu, mu64, mu128, mu256, ts: Double
        public var dp, vr: Double
        public var pTrend, pMr, pChop: Double
        public var barsUsed: Int
    }

    public static func compute(closes: [Double]) -> Values? {
        guard closes.count >= minimumCloses else { return nil }
        let logPrices = closes.map { log($0 + epsilon) }
        let returns = zip(logPrices.dropFirst(), logPrices).map { $0 - $1 }
        let recent = Array(returns.suffix(window))
        let slopes = trendWindows.map { theilSenSlope(Array(logPrices.suffix($0))) }
        return values(recentReturns: recent, sortedRecentReturns: recent.sorted(), slopes: slopes, barsUsed: closes.count)
    }

    /// Everything after the Theil–Sen slopes of the 64/128/256 windows and the sort of the last
    /// 256 returns, so an incremental caller (`SlidingMarketState`) shares every formula.
    static func values(recentReturns recent: [Double], sortedRecentReturns sorted: [Double], slopes: [Double], barsUsed: Int) -> Values {
        let (low, high) = (quantile(sorted: sorted, 0.01), quantile(sorted: sorted, 0.99))
        let clipped = recent.map { min(max($0, low), high) }
        // Clipping keeps order, so the clipped returns come sorted for free.
        let sigmaEwma = ewmaSigma(clipped), sigmaMad = madSigma(sortedClipped: sorted.map { min(max($0, low), high) })
        let spike = min(max(sigmaMad / (sigmaEwma + epsilon), 0), 5)
        let w = sigmoid((spike - 1.2) / 0.3)
        let sigma = max(1e-6, (1 - w) * sigmaEwma + w * sigmaMad)

        let mu = zip(slopes, trendWeights).reduce(0) { $0 + $1.0 * $1.1 }
        let ts = abs(mu) / (sigma + epsilon)
        let dp = directionPersistence(recent)
        let vr = varianceRatio(recent, horizon: 5)
        let (pTrend, pMr, pChop) = regimeProbabilities(ts: ts, dp: dp, vr: vr)
        return Values(sigma: sigma, sigmaEwma: sigmaEwma, sigmaMad: sigmaMad, spikeProxy: spike, mu: mu, mu64: slopes[0],
                      mu128: slopes[1], mu256: slopes[2], ts: ts, dp: dp, vr: vr, pTrend: pTrend, pMr: pMr, pChop: pChop,
                      barsUsed: barsUsed)
    }

    /// `v0` = population variance of the first 10; then `v = 0.94·v + 0.06·x²` for every x.
    static func ewmaSigma(_ clipped: [Double]) -> Double {
        var v = populationVariance(clipped.prefix(10))
        for x in clipped { v = 0.94 * v + 0.06 * x * x }
        return v.squareRoot()
    }

    /// 1.4826 · median absolute deviation, from the clipped returns in ascending order: the
    /// deviations are produced in ascending order by walking out from the median on both sides,
    /// and only their middle is needed.
    static func madSigma(sortedClipped a: [Double]) -> Double {
        let n = a.count
        let center = n % 2 == 0 ? (a[n / 2 - 1] + a[n / 2]) / 2 : a[n / 2]
        var left = SortedDoubles.lowerBound(a, center) - 1, right = left + 1
        var lowerMiddle = 0.0, upperMiddle = 0.0
        for rank in 0...(n / 2) {
            let deviation: Double
            if right >= n || (left >= 0 && abs(a[left] - center) <= abs(a[right] - center)) {
                deviation = abs(a[left] - center)
                left -= 1
            } else {
                deviation = abs(a[right] - center)
                right += 1
            }
            if rank == (n - 1) / 2 { lowerMiddle = deviation }
            if rank == n / 2 { upperMiddle = deviation }
        }
        return 1.4826 * ((lowerMiddle + upperMiddle) / 2)
    }

    /// Fraction of consecutive returns with equal sign (sign(0) = 0).
    static func directionPersistence(_ returns: [Double]) -> Double {
        func sign(_ value: Double) -> Int { value > 0 ? 1 : value < 0 ? -1 : 0 }
        var same = 0
        for index in 1..<returns.count where sign(returns[index]) == sign(returns[index - 1]) { same += 1 }
        return Double(same) / Double(returns.count - 1)
    }

    /// var(h-bar rolling sums) / (h · var(r)), population variances; each window is summed on
    /// its own, left to right, as the reference does (a running sum would round differently).
    static func varianceRatio(_ returns: [Double], horizon: Int) -> Double {
        var sums: [Double] = []
        sums.reserveCapacity(returns.count - horizon + 1)
        for start in 0...(returns.count - horizon) {
            var sum = 0.0
            for index in start..<(start + horizon) { sum += returns[index] }
            sums.append(sum)
        }
        return populationVariance(sums) / (Double(horizon) * populationVariance(returns) + epsilon)
    }

    static func regimeProbabilities(ts: Double, dp: Double, vr: Double) -> (Double, Double, Double) {
        let sTrend = ts + dp - abs(vr - 1)
        let sMr = abs(vr - 1) - ts - abs(dp)
        let sChop = (1 - abs(dp)) + (1 - min(ts, 1)) - abs(vr - 1)
        let top = max(sTrend, sMr, sChop)
        let e = [sTrend, sMr, sChop].map { exp($0 - top) }
        let total = e.reduce(0, +)
        return (e[0] / total, e[1] / total, e[2] / total)
    }

    /// Median of the pairwise slopes (y_j − y_i)/(j − i), x = 0…n−1; selection, not a sort.
    static func theilSenSlope(_ y: [Double]) -> Double {
        var slopes = pairwiseSlopes(y)
        return medianBySelection(&slopes)
    }

    static func pairwiseSlopes<C: RandomAccessCollection>(_ y: C) -> [Double] where C.Element == Double, C.Index == Int {
        var slopes: [Double] = []
        slopes.reserveCapacity(y.count * (y.count - 1) / 2)
        let base = y.startIndex
        for i in 0..<(y.count - 1) {
            for j in (i + 1)..<y.count {
                slopes.append(pairSlope(y[base + i], y[base + j], distance: j - i))
            }
        }
        return slopes
    }

    /// One pairwise slope; the sliding window computes each pair with exactly this expression,
    /// so a slope it removes is bit-for-bit the one it inserted.
    @inline(__always)
    static func pairSlope(_ earlier: Double, _ later: Double, distance: Int) -> Double {
        (later - earlier) / Double(distance)
    }

    static func sigmoid(_ x: Double) -> Double {
        1 / (1 + exp(-min(50, max(-50, x))))
    }

    static func populationVariance<C: Collection>(_ values: C) -> Double where C.Element == Double {
        let mean = values.reduce(0, +) / Double(values.count)
        return values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
    }

    /// Linear interpolation between closest ranks (numpy's default).
    static func quantile(sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (position - Double(lower)) * (sorted[upper] - sorted[lower])
    }

    /// The mean of the two middle values for an even count (numpy), found by selection.
    static func medianBySelection(_ values: inout [Double]) -> Double {
        let n = values.count
        let upper = select(&values, n / 2)
        guard n % 2 == 0 else { return upper }
        // After selecting n/2, everything below it sits in the lower part: its maximum is the other middle value.
        let lower = values[0..<(n / 2)].max()!
        return (lower + upper) / 2
    }

    /// Quickselect (Hoare partition, median-of-three pivot): the k-th smallest, in place.
    static func select(_ values: inout [Double], _ k: Int) -> Double {
        var low = 0, high = values.count - 1
        while low < high {
            let middle = low + (high - low) / 2
            let pivot = Swift.max(Swift.min(values[low], values[middle]), Swift.min(Swift.max(values[low], values[middle]), values[high]))
            var i = low, j = high
            while i <= j {
                while values[i] < pivot { i += 1 }
                while values[j] > pivot { j -= 1 }
                if i <= j { values.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { high = j } else if k >= i { low = i } else { return values[k] }
        }
        return values[k]
    }
}
