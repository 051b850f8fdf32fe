import Foundation
import Messages

/// DESIGN.md §6.2: the harvest kernel for one position. Pure: every number arrives as an argument.
public enum HarvestKernel {
    /// The parameters, with the defaults of `shared/vectors/harvest.json` → `theta`.
    public struct Theta: Sendable, Equatable {
        /// `stop_dist_pct` when the ledger has none (absent or ≤ 0).
        public var fallbackStopPct = 0.02
        public var costBps = 10.0
        /// R_net levels of tranches 1, 2 and 3.
        public var t1R = 2.0, t2R = 4.0, t3R = 6.0
        /// Profit lock from this R_net, at break-even plus `bePlusPct`.
        public var lockR = 1.5, bePlusPct = 0.002
        public var trendMin = 0.3
        public var sigmaRef = 0.01, sigmaSpikeCap = 2.0
        public var tsRef = 0.3, tsDropCap = 0.5
        public var maxAgeSec = 86_400.0
        /// Weights of the kill-score components, and the score from which a position is closed.
        public var kRegimeFlip = 1.0, kSigmaSpike = 0.5, kTsDrop = 0.5, kAgePenalty = 0.3
        public var killThreshold = 0.6

        public init() {}
    }

    public enum Side: Sendable { case long, short }

    public struct Position: Sendable {
        public var side: Side
        public var entryPrice: Double
        public var markPrice: Double
        public var ageSec: Double
        /// The stop the ledger holds (nil: none).
        public var currentStop: Double?
        /// Highest tranche already executed (0–3).
        public var tranchesTaken: Int
        /// From the opening plan (nil or ≤ 0: `fallbackStopPct`).
        public var stopDistPct: Double?

        public init(side: Side, entryPrice: Double, markPrice: Double, ageSec: Double, currentStop: Double? = nil,
                    tranchesTaken: Int = 0, stopDistPct: Double? = nil) {
            self.side = side
            self.entryPrice = entryPrice
            self.markPrice = markPrice
            self.ageSec = ageSec
            self.currentStop = currentStop
            self.tranchesTaken = tranchesTaken
            self.stopDistPct = stopDistPct
        }
    }

    /// What the kill score reads of market state.
    public struct Market: Sendable {
        public var sigma, ts, pTrend, pMr, pChop: Double

        public init(sigma: Double, ts: Double, pTrend: Double, pMr: Double, pChop: Double) {
            self.sigma = sigma
            self.ts = ts
            self.pTrend = pTrend
            self.pMr = pMr
            self.pChop = pChop
        }
    }

    public struct Proposal: Sendable, Equatable {
        public var action: HarvestAction
        public var rNet, riskPerUnit, costPerUnit: Double
        public var newStop: Double?
        public var killScore: Double
        public var regimeFlip, sigmaSpike, tsDrop, agePenalty: Double
        public var reasons: [ReasonCode]
    }

    public static func propose(_ position: Position, market: Market, theta: Theta = Theta()) -> Proposal {
        let d = position.side == .long ? 1.0 : -1.0
        let entry = position.entryPrice
        let stopPct = position.stopDistPct.flatMap { $0 > 0 ? $0 : nil } ?? theta.fallbackStopPct
        let riskPerUnit = max(entry * stopPct, 1e-9)
        let costPerUnit = theta.costBps / 10_000 * entry
        let rNet = ((position.markPrice - entry) * d - costPerUnit) / riskPerUnit

        var reasons: [ReasonCode] = []
        var action = tranche(rNet: rNet, tranchesTaken: position.tranchesTaken, theta: theta)
        if action != .hold { reasons.append(.harvestTranche) }
        let newStop = profitLock(rNet: rNet, side: position.side, entry: entry, currentStop: position.currentStop, theta: theta)
        if newStop != nil {
            reasons.append(.profitLock)
            if action == .hold { action = .updateSl }
        }

        let rf = regimeFlip(market, theta: theta)
        let ss = sigmaSpike(market.sigma, theta: theta)
        let td = tsDrop(market.ts, theta: theta)
        let ap = agePenalty(position.ageSec, theta: theta)
        let k = killScore(regimeFlip: rf, sigmaSpike: ss, tsDrop: td, agePenalty: ap, theta: theta)
        if k >= theta.killThreshold {
            action = .fullClose
            reasons.append(.killScore)
            if rf > 0 { reasons.append(.regimeFlip) }
            if ss > 0.5 { reasons.append(.sigmaSpike) }
            if td > 0.2 { reasons.append(.tsDrop) }
            if ap > 0.5 { reasons.append(.agePenalty) }
        }
        return Proposal(action: action, rNet: rNet, riskPerUnit: riskPerUnit, costPerUnit: costPerUnit, newStop: newStop,
                        killScore: k, regimeFlip: rf, sigmaSpike: ss, tsDrop: td, agePenalty: ap, reasons: reasons)
    }

    /// Level 1/2/3 at R_net ≥ T1/T2/T3, proposed only above the highest tranche already taken.
    public static func tranche(rNet: Double, tranchesTaken: Int, theta: Theta) -> HarvestAction {
        let level = rNet >= theta.t3R ? 3 : rNet >= theta.t2R ? 2 : rNet >= theta.t1R ? 1 : 0
        guard level > tranchesTaken else { return .hold }
        return [.hold, .partial25, .partial50, .partial75][level]
    }

    /// Break-even plus a margin, only if it tightens the current stop (or there is none).
    public static func profitLock(rNet: Double, side: Side, entry: Double, currentStop: Double?, theta: Theta) -> Double? {
        guard rNet >= theta.lockR else { return nil }
        if side == .long {
            let breakEven = entry * (1 + theta.bePlusPct)
            let candidate = currentStop.map { max($0, breakEven) } ?? breakEven
            return currentStop.map { candidate > $0 } ?? true ? candidate : nil
        }
        let breakEven = entry * (1 - theta.bePlusPct)
        let candidate = currentStop.map { min($0, breakEven) } ?? breakEven
        return currentStop.map { candidate < $0 } ?? true ? candidate : nil
    }

    public static func regimeFlip(_ market: Market, theta: Theta) -> Double {
        market.pTrend < theta.trendMin && market.pChop + market.pMr > 0.5 ? 1 : 0
    }

    public static func sigmaSpike(_ sigma: Double, theta: Theta) -> Double {
        max(0, min(sigma / theta.sigmaRef - 1, theta.sigmaSpikeCap))
    }

    public static func tsDrop(_ ts: Double, theta: Theta) -> Double {
        max(0, min(theta.tsRef - ts, theta.tsDropCap))
    }

    public static func agePenalty(_ ageSec: Double, theta: Theta) -> Double {
        max(0, min(ageSec / theta.maxAgeSec, 1))
    }

    /// `K = 1/(1+e^(−z))`, `z = 1.0·rf + 0.5·ss + 0.5·td + 0.3·ap` with the default weights.
    public static func killScore(regimeFlip: Double, sigmaSpike: Double, tsDrop: Double, agePenalty: Double, theta: Theta) -> Double {
        let z = theta.kRegimeFlip * regimeFlip + theta.kSigmaSpike * sigmaSpike + theta.kTsDrop * tsDrop + theta.kAgePenalty * agePenalty
        return 1 / (1 + exp(-z))
    }
}
