import Exchange
import Foundation
import Identity
import Messages
import Numbers
import Synchronization

/// What portfolio-gate approved, bound into the permit (DESIGN.md §10, trust between plugins):
/// SHA-256 of `plan_id|symbol|side|kind|quantity|reduce_only|stop_price|stop_dist_pct`. The executor recomputes it from
/// the plan it received and sends nothing when the two differ, so a plan published by anyone
/// else with a real permit id cannot change what is traded.
public enum PlanDigest {
    /// Set only by `qt bench e2e`, between two exit runs in one process, to measure the path
    /// without the digest beside the path with it; nothing in a node config or the bus reaches it.
    package static let skippedForBenchmark = Atomic<Bool>(false)

    public static func of(_ plan: Plan) -> String {
        if skippedForBenchmark.load(ordering: .relaxed) { return "" }
        // The quantity as a number, so "0.50" and "0.5" are the same approval.
        func number(_ text: String) -> String { DecimalLiteral.canonical(text) ?? Decimal.parse(text)?.plainString ?? text }
        return ContentID.sha256Hex([plan.planID, plan.symbol, "\(plan.side.rawValue)", "\(plan.kind.rawValue)", number(plan.quantity),
                                    plan.reduceOnly ? "1" : "0", number(plan.stopPrice), "\(plan.stopDistPct)"].joined(separator: "|"))
    }

    /// Why `plan` may not be executed under `permit`, or nil when it is what was approved.
    public static func mismatch(_ plan: Plan, permit: Permit) -> String? {
        if skippedForBenchmark.load(ordering: .relaxed) { return nil }
        if permit.planDigest.isEmpty {
            return "permit qt_permits/\(plan.planID) carries no plan digest (written by a portfolio-gate older than the executor?)"
        }
        guard permit.planDigest != of(plan) else { return nil }
        var differences: [String] = []
        if !permit.symbol.isEmpty && permit.symbol != plan.symbol { differences.append("symbol \(plan.symbol), permit \(permit.symbol)") }
        if let approved = Decimal.parse(permit.maxQuantity), let asked = Decimal.parse(plan.quantity), approved != asked {
            differences.append("quantity \(plan.quantity), permit \(permit.maxQuantity)")
        }
        if differences.isEmpty { differences.append("side, kind, reduce_only or stop") }
        return "plan \(plan.planID) differs from what portfolio-gate approved: " + differences.joined(separator: "; ")
    }
}
