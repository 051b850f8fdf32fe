import Host
import Messages

/// Checks every stage of the plan path makes of a `Plan` before acting on it (R2): a symbol, an
/// id, a kind and a side that are set, on the subject of its own symbol.
enum PlanCheck {
    static func validate(_ plan: Plan, subject: String, expected: String) throws {
        guard !plan.planID.isEmpty, !plan.symbol.isEmpty, subject == expected else {
            throw PluginError.permanent("plan on \(subject): plan_id \"\(plan.planID)\", symbol \"\(plan.symbol)\"; expected both set "
                                        + "and the subject \(expected)")
        }
        guard plan.kind != .unspecified, plan.side != .unspecified else {
            throw PluginError.permanent("plan \(plan.planID) on \(subject): kind \(plan.kind), side \(plan.side): neither may be UNSPECIFIED")
        }
        if case .UNRECOGNIZED(let value) = plan.kind { throw PluginError.permanent("plan \(plan.planID): unknown kind \(value)") }
        if case .UNRECOGNIZED(let value) = plan.side { throw PluginError.permanent("plan \(plan.planID): unknown side \(value)") }
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
