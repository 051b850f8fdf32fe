import Foundation

/// DESIGN.md §6.4: the governor's OPEN gate from the entry kill score. Pure.
public enum GovernorKernel {
    public enum Decision: String, Sendable { case allow = "ALLOW", scale = "SCALE", block = "BLOCK" }

    public struct Result: Sendable, Equatable {
        public var threshold: Double
        public var decision: Decision
        public var quantity: Double
        public var scale: Double
    }

    public static let blockFrom = 0.95

    /// `thr = clamp(0.85 − 0.15·regime_flip + 0.1·(confidence − 0.5), 0.6, 0.95)`; K ≥ 0.95 → BLOCK;
    /// K < thr → ALLOW; otherwise SCALE by `clamp(e^(−2(K−thr)), 0.25, 1)`.
    public static func openGate(killScore k: Double, regimeFlip: Double, confidence: Double, quantity: Double) -> Result {
        let threshold = min(0.95, max(0.6, 0.85 - 0.15 * regimeFlip + 0.1 * (confidence - 0.5)))
        if k >= blockFrom { return Result(threshold: threshold, decision: .block, quantity: 0, scale: 0) }
        if k < threshold { return Result(threshold: threshold, decision: .allow, quantity: quantity, scale: 1) }
        let scale = min(1, max(0.25, exp(-2 * (k - threshold))))
        return Result(threshold: threshold, decision: .scale, quantity: quantity * scale, scale: scale)
    }
}
