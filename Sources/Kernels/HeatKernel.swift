import Foundation
import Messages

/// DESIGN.md §6.3: portfolio heat and the calibration of exit proposals. Pure.
public enum HeatKernel {
    public struct Exposure: Sendable {
        public var notional: Double
        /// The 1-minute sigma of the symbol's market state.
        public var sigma: Double

        public init(notional: Double, sigma: Double) {
            self.notional = notional
            self.sigma = sigma
        }
    }

    public static let warmFrom = 0.25
    public static let hotFrom = 0.65

    /// `Σ |notional_i| · sigma_i · √1440 / max(equity, 1)`: each 1m sigma scaled to a day.
    public static func heat(_ exposures: [Exposure], equity: Double) -> Double {
        exposures.reduce(0) { $0 + abs($1.notional) * $1.sigma * 1_440.0.squareRoot() } / max(equity, 1)
    }

    public static func bucket(_ heat: Double) -> HeatBucket {
        heat < warmFrom ? .cold : heat < hotFrom ? .warm : .hot
    }

    /// A proposal with reason KILL_SCORE is never changed (R6); HOT takes more off the table
    /// (PARTIAL_25/50 → PARTIAL_75); COLD and WARM leave it. Never turns an exit into HOLD.
    public static func calibrate(_ action: HarvestAction, bucket: HeatBucket, reasons: [ReasonCode]) -> HarvestAction {
        if reasons.contains(.killScore) { return action }
        if bucket == .hot, action == .partial25 || action == .partial50 { return .partial75 }
        return action
    }
}
