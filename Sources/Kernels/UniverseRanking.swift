import Foundation
import Messages

/// DESIGN.md §5 universe: rank by 24 h quote volume, filter the top candidates by market state
/// when there is one, take the first `maxActive`. Pure.
public enum UniverseRanking {
    public struct Listing: Sendable {
        public var symbol: String
        public var quoteVolume: Double
        public init(symbol: String, quoteVolume: Double) {
            self.symbol = symbol
            self.quoteVolume = quoteVolume
        }
    }

    public struct Filter: Sendable {
        public var candidates: Int
        public var minSigma: Double
        public var minTs: Double
        public var maxActive: Int
        public init(candidates: Int, minSigma: Double, minTs: Double, maxActive: Int) {
            self.candidates = candidates
            self.minSigma = minSigma
            self.minTs = minTs
            self.maxActive = maxActive
        }
    }

    /// The top `candidates` by quote volume each with
    /// its reason. A candidate without market state is not filtered (`NO_MARKET_STATE`, active
    /// while there is room): a fresh system has no state yet, and the volume rank still holds.
    public static func rank(_ listings: [Listing], states: [String: MarketState], filter: Filter) -> [UniverseEntry] {
        let ranked = candidates(listings, count: filter.candidates)
        var activeCount = 0
        return ranked.enumerated().map { index, listing in
            var entry = UniverseEntry()
            entry.symbol = listing.symbol
            entry.rank = Int32(index + 1)
            entry.quoteVolume = listing.quoteVolume
            let state = states[listing.symbol]
            entry.sigma = state?.sigma ?? 0
            entry.ts = state?.ts ?? 0
            if let state, state.sigma < filter.minSigma {
                entry.reason = .belowMinSigma
            } else if let state, state.ts < filter.minTs {
                entry.reason = .belowMinTs
            } else if activeCount >= filter.maxActive {
                entry.reason = .overMaxActive
            } else {
                entry.active = true
                entry.reason = state == nil ? .noMarketState : .active
                activeCount += 1
            }
            return entry
        }
    }

    /// The `count` listings with the most quote volume, ties by symbol so every host ranks alike.
    public static func candidates(_ listings: [Listing], count: Int) -> [Listing] {
        Array(listings.sorted { ($0.quoteVolume, $1.symbol) > ($1.quoteVolume, $0.symbol) }.prefix(count))
    }

    /// The next `max_active` of a rollout schedule (e.g. 10 → 20 → 30): one step up, never past the last.
    public static func nextStep(_ schedule: [Int], current: Int) -> Int {
        schedule.first { $0 > current } ?? current
    }
}
