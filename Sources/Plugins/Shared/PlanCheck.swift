import Exchange
import Foundation
import Host
import Messages

/// Checks every stage of the plan path makes of a `Plan` before acting on it (R2): a symbol, an
/// id, a kind and a side that are set, on the subject of its own symbol, and numbers that are
/// finite and in range. A plan that fails is a permanent error (dead letter, naming the field and
/// the value), never rounded into something tradable.
enum PlanCheck {
    /// `sized`: the plan must carry its quantity (after the governor; before, an OPEN has none),
    /// except an UPDATE_STOP, which carries the new stop price instead (the stop closes the whole position).
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

    /// The first field whose value no stage may act on, or nil: the plan's field rules
    /// (`FieldRules`, which the host also applies on consume), and a quantity once it is sized.
    static func numberProblem(_ plan: Plan, sized: Bool) -> String? {
        if sized, plan.kind == .updateStop, plan.stopPrice.isEmpty { return "stop_price is empty, expected the price an UPDATE_STOP moves the stop to" }
        if sized, plan.kind != .updateStop, plan.quantity.isEmpty { return "quantity is empty, expected a positive decimal string once sized" }
        return FieldRules.problem(plan)
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
