import Foundation

/// §6.1 for a window that slides one close at a time, giving exactly what
/// `MarketStateKernel.compute(closes:)` gives for the last `capacity` closes, at a
/// fraction of the cost. Pure, like the kernel: the formulas are the kernel's; only the two
/// expensive inputs are kept up to date instead of rebuilt:
///
/// - the sorted last 256 returns (one removal and one insertion per close);
/// - for each Theil–Sen window of n log prices, the multiset of its n(n−1)/2 pairwise slopes.
///   A slide removes the n−1 slopes of the oldest point and adds the n−1 of the new one; a slope
///   between two points that stay does not change (it depends on their distance, not their
///   position). The median is read from a sorted band of ranks around it (`SlopeMedianBand`);
///   when the median walks out of the band, the band is moved after it (`recenter`), and only
///   if that estimate falls short is it rebuilt by selection.
public struct SlidingMarketState: Sendable {
    /// Closes the full kernel is given (the plugin keeps this many); `barsUsed` reports up to it.
    public let capacity: Int
    public private(set) var closesSeen = 0
    private var logPrices: [Double] = []
    private var returns: [Double] = []
    private var sortedReturns: [Double] = []
    private var trends: [SlidingTheilSen]

    public init(capacity: Int = 301) {
        self.capacity = capacity
        trends = MarketStateKernel.trendWindows.map { SlidingTheilSen(size: $0) }
    }

    /// Slope-band rebuilds so far (for the benchmark: how often selection was needed).
    public var rebuilds: Int { trends.reduce(0) { $0 + $1.rebuilds } }
    /// Times a band was moved after its median without a selection.
    public var recenters: Int { trends.reduce(0) { $0 + $1.recenters } }

    /// Appends the next close and returns the state of the window ending with it (nil while
    /// fewer than `MarketStateKernel.minimumCloses` closes have been seen).
    @discardableResult
    public mutating func append(_ close: Double) -> MarketStateKernel.Values? {
        let logPrice = log(close + MarketStateKernel.epsilon)
        if let previous = logPrices.last { addReturn(logPrice - previous) }
        logPrices.append(logPrice)
        if logPrices.count > MarketStateKernel.window + 1 { logPrices.removeFirst() }
        for index in trends.indices { trends[index].append(logPrice) }
        closesSeen += 1
        guard closesSeen >= MarketStateKernel.minimumCloses else { return nil }
        return MarketStateKernel.values(recentReturns: returns, sortedRecentReturns: sortedReturns,
                                        slopes: trends.map { $0.median() }, barsUsed: min(closesSeen, capacity))
    }

    private mutating func addReturn(_ value: Double) {
        if returns.count == MarketStateKernel.window {
            let oldest = returns.removeFirst()
            sortedReturns.remove(at: SortedDoubles.lowerBound(sortedReturns, oldest))
        }
        returns.append(value)
        sortedReturns.insert(value, at: SortedDoubles.lowerBound(sortedReturns, value))
    }
}

/// The Theil–Sen median of the last `size` points, slid one point at a time.
struct SlidingTheilSen: Sendable {
    /// Ranks kept each side of the median, per point of the window: wider means fewer band moves
    /// but more memory to merge per slide; 6 measured fastest of 2–16 (BENCHMARKS.md).
    static let bandWidthPerPoint = 6
    let size: Int
    private var points: [Double] = []
    private var band: SlopeMedianBand?
    private(set) var rebuilds = 0
    /// Times the median left the band and the band was moved after it (no selection).
    private(set) var recenters = 0
    private var removed: [Double] = []
    private var inserted: [Double] = []

    init(size: Int) {
        self.size = size
    }

    mutating func append(_ y: Double) {
        guard points.count == size, var current = band else {
            points.append(y)
            if points.count > size { points.removeFirst() }
            if points.count == size { rebuild() }
            return
        }
        band = nil
        removed.removeAll(keepingCapacity: true)
        inserted.removeAll(keepingCapacity: true)
        for j in 1..<size { removed.append(MarketStateKernel.pairSlope(points[0], points[j], distance: j)) }
        points.removeFirst()
        for i in 0..<(size - 1) { inserted.append(MarketStateKernel.pairSlope(points[i], y, distance: size - 1 - i)) }
        points.append(y)
        guard current.apply(removing: &removed, inserting: &inserted) else { return rebuild() }
        if current.median() == nil {
            recenters += 1
            guard current.recenter(points: points) else { return rebuild() }
        }
        band = current
    }

    func median() -> Double {
        band?.median() ?? MarketStateKernel.theilSenSlope(points)
    }

    private mutating func rebuild() {
        rebuilds += 1
        var slopes = MarketStateKernel.pairwiseSlopes(points)
        band = SlopeMedianBand(slopes: &slopes, halfWidth: SlidingTheilSen.bandWidthPerPoint * size)
    }
}

/// A multiset of slopes of which only the values near the median are kept in order: the band
/// `[low, high]` sorted, and the counts below and above it. Inserting or removing costs a
/// comparison outside the band and a binary search plus a short move inside it.
struct SlopeMedianBand: Sendable {
    private var low: Double
    private var high: Double
    private var band: [Double]
    private var below: Int
    private var above: Int
    private let halfWidth: Int

    /// Takes ranks median ± `halfWidth` by selection.
    init(slopes: inout [Double], halfWidth: Int) {
        let count = slopes.count
        let lowRank = max(0, (count - 1) / 2 - halfWidth), highRank = min(count - 1, count / 2 + halfWidth)
        let high = MarketStateKernel.select(&slopes, highRank)
        let low = MarketStateKernel.select(&slopes, lowRank)
        // Selection leaves every slope of ranks lowRank…highRank between those two positions;
        // ties of `low` or `high` elsewhere belong in the band as well.
        var band = Array(slopes[lowRank...highRank])
        var below = 0, above = 0
        for index in slopes.indices where index < lowRank || index > highRank {
            let slope = slopes[index]
            if slope < low { below += 1 } else if slope > high { above += 1 } else { band.append(slope) }
        }
        band.sort()
        (self.low, self.high, self.band, self.below, self.above) = (low, high, band, below, above)
        self.halfWidth = halfWidth
    }

    /// One slide: every slope that left and every slope that came, applied in one merge pass
    /// over the band (a move per slope would copy the band hundreds of times). False when a
    /// removed slope is not there (it never happens for slopes computed by `pairSlope` from
    /// the same points; the caller then rebuilds rather than trust the band).
    mutating func apply(removing removed: inout [Double], inserting inserted: inout [Double]) -> Bool {
        var inBandRemoved = 0, inBandInserted = 0
        for index in removed.indices {
            let slope = removed[index]
            if slope < low { below -= 1 } else if slope > high { above -= 1 } else {
                removed[inBandRemoved] = slope
                inBandRemoved += 1
            }
        }
        for index in inserted.indices {
            let slope = inserted[index]
            if slope < low { below += 1 } else if slope > high { above += 1 } else {
                inserted[inBandInserted] = slope
                inBandInserted += 1
            }
        }
        guard below >= 0, above >= 0 else { return false }
        guard inBandRemoved > 0 || inBandInserted > 0 else { return true }
        removed.removeLast(removed.count - inBandRemoved)
        inserted.removeLast(inserted.count - inBandInserted)
        SortedDoubles.insertionSort(&removed)
        SortedDoubles.insertionSort(&inserted)

        let merged = band.count - removed.count + inserted.count
        guard merged >= 0 else { return false }
        // Where each change lands in the band: a removal is the next equal value at or after the
        // previous removal, an insertion goes before the first value not less than it. The
        // output is then the band's runs between those points, copied in bulk.
        var found = true
        let output = band.withUnsafeBufferPointer { source in
            [Double](unsafeUninitializedCapacity: merged) { target, count in
                var written = 0, cursor = 0, r = 0, i = 0
                func copyRun(to end: Int) {
                    guard end > cursor else { return }
                    (target.baseAddress! + written).initialize(from: source.baseAddress! + cursor, count: end - cursor)
                    written += end - cursor
                    cursor = end
                }
                func removal(at r: Int, from: Int) -> Int {
                    guard r < removed.count else { return Int.max }
                    let index = SortedDoubles.scanForward(band, removed[r], from: from)
                    guard index < source.count, source[index] == removed[r] else {
                        found = false
                        return Int.max
                    }
                    return index
                }
                var insertAt = i < inserted.count ? SortedDoubles.scanForward(band, inserted[i], from: 0) : Int.max
                var removeAt = removal(at: 0, from: 0)
                while found, removeAt != Int.max || i < inserted.count {
                    if insertAt <= removeAt {
                        copyRun(to: insertAt)
                        target[written] = inserted[i]
                        written += 1
                        i += 1
                        insertAt = i < inserted.count ? SortedDoubles.scanForward(band, inserted[i], from: insertAt) : Int.max
                    } else {
                        copyRun(to: removeAt)
                        cursor += 1
                        r += 1
                        removeAt = removal(at: r, from: cursor)
                    }
                }
                copyRun(to: found ? source.count : cursor)
                count = written
            }
        }
        guard found, output.count == merged else { return false }
        band = output
        return true
    }

    /// The median walked out of the band: move the band after it without a selection. The band
    /// is still exact; what is missing are the slopes just beyond the edge it was left by. Their
    /// value range is estimated from the band's own density, one pass over the window's slopes
    /// collects them, and they are sorted and joined to the part of the band that stays; the far
    /// end is trimmed. False (the caller then selects afresh) when the estimate fell short.
    mutating func recenter(points: [Double]) -> Bool {
        let count = below + band.count + above
        let lowerMiddle = (count - 1) / 2, upperMiddle = count / 2
        guard band.count >= 2, high > low else { return false }
        let density = Double(band.count) / (high - low)
        let goingDown = lowerMiddle < below
        // Ranks to add beyond the edge: up to the median, then half a band past it (×1.25 for
        // the estimate's error).
        let missing = goingDown ? below - (lowerMiddle - halfWidth / 2) : (upperMiddle + halfWidth / 2) - (below + band.count - 1)
        guard missing > 0 else { return false }
        let reach = 1.25 * Double(missing) / density
        let newLow = goingDown ? low - reach : low
        let newHigh = goingDown ? high : high + reach
        // Upward moves are mirrored (negation is exact) so one loop serves both directions. A
        // division per pair bounded this loop: each slope is first placed by multiplying with
        // the distance's reciprocal (within a few ulps of the quotient), and only slopes within
        // a wide margin of an edge are divided, to be placed exactly as the band holds them.
        let mirror: Double = goingDown ? 1 : -1
        let farEdge = mirror * (goingDown ? newLow : newHigh), nearEdge = mirror * (goingDown ? low : high)
        let reciprocals = (0..<points.count).map { $0 == 0 ? 0 : 1 / Double($0) }
        var outside = 0
        var extra: [Double] = []
        extra.reserveCapacity(2 * missing)
        points.withUnsafeBufferPointer { y in
            reciprocals.withUnsafeBufferPointer { reciprocals in
                for i in 0..<(y.count - 1) {
                    for j in (i + 1)..<y.count {
                        let estimate = mirror * (y[j] - y[i]) * reciprocals[j &- i]
                        let margin = abs(estimate) * 0x1p-44
                        if estimate + margin < farEdge {
                            outside &+= 1
                        } else if estimate - margin < nearEdge {
                            let slope = MarketStateKernel.pairSlope(y[i], y[j], distance: j - i)
                            if mirror * slope < farEdge { outside &+= 1 } else if mirror * slope < nearEdge { extra.append(slope) }
                        }
                    }
                }
            }
        }
        guard extra.count == (goingDown ? below - outside : above - outside) else { return false }
        SortedDoubles.sortSpread(&extra, from: goingDown ? newLow : high, to: goingDown ? low : newHigh)
        if goingDown {
            // Keep the old band's ranks up to half a band past the median; ties of the last kept
            // value stay with it (the band holds every slope in [low, high]).
            var keep = min(band.count, upperMiddle + halfWidth / 2 - below + 1)
            guard keep > 0 else { return false }
            while keep < band.count, band[keep] == band[keep - 1] { keep += 1 }
            above += band.count - keep
            if keep < band.count { high = band[keep - 1] }
            band = extra + band[0..<keep]
            below = outside
            low = newLow
        } else {
            let firstRank = lowerMiddle - halfWidth / 2
            var drop = max(0, firstRank - below)
            guard drop < band.count else { return false }
            while drop > 0, band[drop] == band[drop - 1] { drop -= 1 }
            below += drop
            if drop > 0 { low = band[drop] }
            band = Array(band[drop...]) + extra
            above = outside
            high = newHigh
        }
        return median() != nil
    }

    /// The kernel's median (the mean of the two middle values for an even count), or nil when
    /// the middle ranks have left the band.
    func median() -> Double? {
        let count = below + band.count + above
        let lowerMiddle = (count - 1) / 2, upperMiddle = count / 2
        guard count > 0, lowerMiddle >= below, upperMiddle < below + band.count else { return nil }
        return (band[lowerMiddle - below] + band[upperMiddle - below]) / 2
    }
}

enum SortedDoubles {
    /// For the few dozen slopes of one slide that land in the band, where a general sort's
    /// set-up costs more than the sorting.
    static func insertionSort(_ values: inout [Double]) {
        values.withUnsafeMutableBufferPointer { buffer in
            guard buffer.count > 1 else { return }
            for index in 1..<buffer.count {
                let value = buffer[index]
                var position = index
                while position > 0, buffer[position - 1] > value {
                    buffer[position] = buffer[position - 1]
                    position -= 1
                }
                buffer[position] = value
            }
        }
    }

    /// Sorts values spread about evenly over `[from, to]` (the slopes just beyond a band edge):
    /// dealt into buckets by value, then an insertion sort that only has to fix order inside
    /// each bucket. Linear for such input, where a comparison sort's n log n dominated a band move.
    static func sortSpread(_ values: inout [Double], from: Double, to: Double) {
        let count = values.count
        guard count > 32, to > from else { return values.sort() }
        let buckets = count / 4
        let scale = Double(buckets) / (to - from)
        func bucket(_ value: Double) -> Int {
            let position = (value - from) * scale
            return position >= 0 ? min(buckets - 1, Int(position)) : 0
        }
        var starts = [Int](repeating: 0, count: buckets + 1)
        for value in values { starts[bucket(value) + 1] += 1 }
        for index in 1...buckets { starts[index] += starts[index - 1] }
        let dealt = [Double](unsafeUninitializedCapacity: count) { target, initialized in
            for value in values {
                let index = bucket(value)
                target[starts[index]] = value
                starts[index] += 1
            }
            initialized = count
        }
        values = dealt
        insertionSort(&values)
    }

    /// `lowerBound` for a value expected shortly after `from`, by walking forward. Bisecting or
    /// galloping touch fewer values, but in an order the hardware cannot prefetch; a slide's
    /// band is read from L3 (every symbol's bands together exceed L2), and walking it in order
    /// measured faster (22.5 → 19.9 ms in the steady state).
    static func scanForward(_ sorted: [Double], _ value: Double, from: Int) -> Int {
        sorted.withUnsafeBufferPointer { sorted in
            var index = from
            while index < sorted.count, sorted[index] < value { index += 1 }
            return index
        }
    }

    /// The first index at or after `from` whose value is not less than `value`.
    static func lowerBound(_ sorted: [Double], _ value: Double, from: Int = 0) -> Int {
        var low = from, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
