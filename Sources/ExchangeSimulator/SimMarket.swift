import Exchange
import Foundation
import Kernels

/// A closed or forming 1m bar, in simulated time.
struct SimBar: Sendable {
    var openTime: Int64
    var open: Double
    var high: Double
    var low: Double
    var close: Double
    var volume: Double
    var quoteVolume: Double
    var trades: Int64
}

/// The clocks of the simulator: wall time for `/fapi/v1/time` and signature checks; simulated
/// time, which runs one minute per `barMs` of wall time, for every market and order time.
struct SimClock: Sendable {
    let wallStartMs: Int64
    let simStartMs: Int64
    let barMs: Int64

    static let barLengthMs: Int64 = 60_000

    init(wallStartMs: Int64, barMs: Int, simulatedStartMs: Int64? = nil) {
        self.wallStartMs = wallStartMs
        let start = simulatedStartMs ?? wallStartMs
        simStartMs = start - start % Self.barLengthMs
        self.barMs = Int64(max(1, barMs))
    }

    func simulatedMs(wallMs: Int64) -> Int64 {
        simStartMs + (wallMs - wallStartMs) * Self.barLengthMs / barMs
    }
}

/// Prices of every listed symbol, generated step by step up to the simulated present. Steps
/// are generated only when asked for, in order, from each symbol's own seeded stream, so the
/// same seed gives the same bars however the requests are timed.
struct SimMarket: Sendable {
    let listings: [SimListing]
    let index: [String: Int]
    private(set) var processes: [PriceProcess]
    /// Closed bars, oldest first, at most `maxHistory` of them.
    private(set) var closed: [[SimBar]]
    private(set) var forming: [SimBar?]
    /// Steps generated so far, counted from the simulated start (history steps are negative).
    private(set) var stepsDone: Int64
    let maxHistory: Int
    static let stepMs = SimClock.barLengthMs / Int64(PriceProcess.stepsPerBar)
    let simStartMs: Int64

    init(listings: [SimListing], seed: UInt64, historyBars: Int, simStartMs: Int64) {
        self.listings = listings
        self.simStartMs = simStartMs
        index = Dictionary(uniqueKeysWithValues: listings.enumerated().map { ($1.symbol, $0) })
        processes = listings.map {
            PriceProcess(startPrice: $0.startPrice, barSigma: $0.barSigma, random: SeededGenerator(seed: seed, stream: $0.symbol))
        }
        closed = Array(repeating: [], count: listings.count)
        forming = Array(repeating: nil, count: listings.count)
        maxHistory = max(1_500, historyBars)
        stepsDone = -Int64(historyBars * PriceProcess.stepsPerBar)
        advance(toStep: 0, onStep: { _, _, _ in })
    }

    /// The latest price of `symbol`: the mark.
    func mark(_ symbol: Int) -> Double { exp(processes[symbol].logPrice) }

    func regime(_ symbol: Int) -> MarketRegime { processes[symbol].regime }

    mutating func force(_ symbol: Int, regime: MarketRegime, bars: Int, trendUp: Bool) {
        processes[symbol].force(regime, bars: bars, trendUp: trendUp)
    }

    /// Generates every step up to `simulatedMs`; `onStep(symbol, price, stepTimeMs)` runs after
    /// each (for stop triggers).
    mutating func advance(toSimulatedMs simulatedMs: Int64, onStep: (Int, Double, Int64) -> Void) {
        advance(toStep: (simulatedMs - simStartMs) / Self.stepMs, onStep: onStep)
    }

    private mutating func advance(toStep target: Int64, onStep: (Int, Double, Int64) -> Void) {
        while stepsDone < target {
            let stepStart = simStartMs + stepsDone * Self.stepMs
            let barOpen = stepStart - ((stepStart - simStartMs) % SimClock.barLengthMs + SimClock.barLengthMs) % SimClock.barLengthMs
            let lastStepOfBar = stepStart + Self.stepMs == barOpen + SimClock.barLengthMs
            for symbol in listings.indices {
                let previous = exp(processes[symbol].logPrice)
                let price = processes[symbol].step()
                let quote = listings[symbol].barQuoteVolume / Double(PriceProcess.stepsPerBar) * processes[symbol].volumeFactor()
                var bar = forming[symbol] ?? SimBar(openTime: barOpen, open: previous, high: previous, low: previous, close: previous,
                                                    volume: 0, quoteVolume: 0, trades: 0)
                bar.high = max(bar.high, price)
                bar.low = min(bar.low, price)
                bar.close = price
                bar.quoteVolume += quote
                bar.volume += quote / price
                bar.trades += Int64(max(1, quote / 2_000))
                if lastStepOfBar {
                    closed[symbol].append(bar)
                    if closed[symbol].count > maxHistory + 500 { closed[symbol].removeFirst(500) }
                    forming[symbol] = nil
                } else {
                    forming[symbol] = bar
                }
                onStep(symbol, price, stepStart + Self.stepMs)
            }
            stepsDone += 1
        }
    }

    /// Closed bars with `openTime` in [start, end], then the forming bar (as Binance does), at
    /// most `limit`, the newest when only a limit is given.
    func klines(_ symbol: Int, startTime: Int64?, endTime: Int64?, limit: Int) -> [SimBar] {
        var bars = closed[symbol]
        if let bar = forming[symbol] { bars.append(bar) }
        if let startTime { bars = bars.filter { $0.openTime >= startTime } }
        if let endTime { bars = bars.filter { $0.openTime <= endTime } }
        if startTime != nil { return Array(bars.prefix(limit)) }
        return Array(bars.suffix(limit))
    }

    /// The last 1,440 closed bars (24 h) or as many as there are.
    func lastDay(_ symbol: Int) -> ArraySlice<SimBar> {
        closed[symbol].suffix(1_440)
    }
}
