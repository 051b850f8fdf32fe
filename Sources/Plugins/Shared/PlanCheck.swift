import Exchange
import Foundation
import Host
import Messages

/// Checks every stage of the plan path makes of a `Plan` before acting on it (R2): a symbol, an
/// id, a kind and a side that are set, on the subject of its own symbol, and numbers that are
/// finite and in range. A plan that fails is a permanent error (dead letter, naming the field and
/// the value), never rounded into something tradable.
enum PlanCheck {
    /// `sized`: the plan must carry its quantity (after the governor); before, an OPEN has none.
    static func validate(_ plan: Plan, subject: String, expected: String, sized: Bool = false) throws {
        guard !plan.planID.isEmpty, Symbols.isValid(plan.symbol), subject == expected else {
            throw PluginError.permanent("plan on \(subject): plan_id \"\(plan.planID)\", symbol \"\(plan.symbol)\"; expected an id, a symbol of "
                                        + "\(Symbols.rule) and the subject \(expected)")
        }
        guard plan.kind != .unspecified, plan.side != .unspecified else {
            throw PluginError.permanent("plan \(plan.planID) on \(subject): kind \(plan.kind), side \(plan.side): neither may be UNSPECIFIED")
        }
        if case .UNRECOGNIZED(let value) = plan.kind { throw PluginError.permanent("plan \(plan.planID): unknown kind \(value)") }
        if case .UNRECOGNIZED(let value) = plan.side { throw PluginError.permanent("plan \(plan.planID): unknown side \(value)") }
        if let problem = numberProblem(plan, sized: sized) {
            throw PluginError.permanent("plan \(plan.planID) on \(subject): \(problem)")
        }
    }

    /// The first field whose value no stage may act on, or nil.
    static func numberProblem(_ plan: Plan, sized: Bool) -> String? {
        if sized || !plan.quantity.isEmpty {
            guard let quantity = Decimal.parse(plan.quantity), quantity > 0 else {
                return "quantity \"\(plan.quantity)\", expected a positive decimal string"
            }
        }
        if !plan.stopPrice.isEmpty {
            guard let stop = Decimal.parse(plan.stopPrice), stop > 0 else {
                return "stop_price \"\(plan.stopPrice)\", expected empty or a positive decimal string"
            }
        }
        if !(plan.stopDistPct.isFinite && plan.stopDistPct >= 0 && plan.stopDistPct < 1) {
            return "stop_dist_pct \(plan.stopDistPct), expected 0 (none) or a fraction below 1"
        }
        if !(plan.confidence.isFinite && (0...1).contains(plan.confidence)) { return "confidence \(plan.confidence), expected 0…1" }
        if !(plan.killScore.isFinite && (0...1).contains(plan.killScore)) { return "kill_score \(plan.killScore), expected 0…1" }
        if !(0...125).contains(plan.leverage) { return "leverage \(plan.leverage), expected 0 (unset) to 125" }
        if !(0...100).contains(plan.reducePercent) { return "reduce_percent \(plan.reducePercent), expected 0…100" }
        if plan.expiresAtMs < 0 { return "expires_at_ms \(plan.expiresAtMs) is negative" }
        return nil
    }
}

extension Plan {
    /// Makes this a reduce-only CLOSE of all of `position`, against the revision it was read at.
    mutating func closeAll(_ position: LedgerPosition) {
        kind = .close
        side = position.closingSide
        quantity = abs(position.amount).plainString
        reduceOnly = true
        reducePercent = 100
        ledgerRevision = position.revision
        permitKind = .p26
    }
}
