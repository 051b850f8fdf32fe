import Exchange
import Foundation
import Host
import Identity
import Messages

/// Turns calibrated exit proposals into exit plans on `qt.plan.sized.<SYM>` (DESIGN.md §5):
/// the effective action is `calibrated_action` under ENFORCE and the proposed one under SHADOW;
/// HOLD → SKIP; UPDATE_SL → UPDATE_STOP; PARTIAL_x → REDUCE of x % of |position| rounded down to
/// the step, or CLOSE 100 % when the rest would be dust (`DUST`); FULL_CLOSE → CLOSE 100 %,
/// reduce-only. Only HALTED or the kill switch blocks (R6: no kill-score gate on exits).
///
/// `plan_id = H(symbol, ledger_revision, effective action, ⌊event_time / 60 s⌋)`: repeats within
/// a minute make one plan; an exit that did not execute (the ledger revision did not move) is
/// planned again the next minute. Plans already made are remembered per symbol in `qt_state`
/// so a repeat is a SKIP (`DUPLICATE`) even after the duplicate window has passed.
public final class ApplyLayerPlugin: Plugin {
    public static let name = "apply-layer"
    public static let planBucketMs: Int64 = 60_000
    /// How long (event time) a made plan id is remembered.
    public static let memoryMs: Int64 = 10 * 60_000

    public static func registration(exchanges: ExchangeClients) -> PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: name, version: "1.0.0",
                inputs: [InputSpec("calibrated", subject: "qt.harvest.calibrated.*", type: CalibratedProposal.self)],
                outputs: [OutputSpec("plans", subject: "qt.plan.sized.*", type: Plan.self),
                          OutputSpec("decisions", subject: "qt.decision.apply-layer.*", type: Decision.self)],
                kvReads: ["qt_control", "qt_state"],
                kvWrites: ["qt_state"],
                config: [ConfigKey("plan_ttl_s", .int, default: .int(60), range: 1...600, help: "wall-clock seconds an exit plan stays valid")]),
            make: { setup in
                ApplyLayerPlugin(filters: FilterCache(exchange: try exchanges.client(setup, plugin: name)),
                                 planTTLMs: Int64(try setup.settings.int("plan_ttl_s")) * 1000)
            })
    }

    private let filters: FilterCache
    private let control = ControlView()
    /// The plan ids made per symbol (`OnceMemory`), kept by a watch.
    private let madePlans = BucketView<PluginState>.ownState(of: name, prefix: "plans-")
    private let planTTLMs: Int64

    init(filters: FilterCache, planTTLMs: Int64) {
        self.filters = filters
        self.planTTLMs = planTTLMs
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let calibrated = input.message(as: CalibratedProposal.self) else { throw PluginError.permanent("expected a CalibratedProposal") }
        let proposal = calibrated.proposal
        let symbol = proposal.symbol
        guard calibrated.hasProposal, !symbol.isEmpty, input.subject == Subjects.harvestCalibrated(symbol) else {
            throw PluginError.permanent("calibrated proposal without a proposal for \(input.subject)")
        }
        guard proposal.action != .unspecified, calibrated.calibratedAction != .unspecified, calibrated.mode != .unspecified else {
            throw PluginError.permanent("\(input.subject) proposal \(proposal.proposalID): action \(proposal.action), "
                                        + "calibrated_action \(calibrated.calibratedAction), mode \(calibrated.mode): none may be UNSPECIFIED")
        }
        let action = calibrated.mode == .enforce ? calibrated.calibratedAction : proposal.action
        let about = proposal.proposalID
        let before = ["action": "\(proposal.action)", "calibrated_action": "\(calibrated.calibratedAction)", "mode": "\(calibrated.mode)"]

        if action == .hold {
            try context.decide(.skip, reason: .hold, about: about, kind: .proposal, symbol: symbol, before: before)
            return
        }
        if let (reason, detail) = try await control.read(context).refusal(entry: false) {
            try context.decide(.block, reason: reason, about: about, kind: .proposal, symbol: symbol, detail: detail, before: before)
            return
        }

        let eventTimeMs = input.eventTimeMs
        let planID = ContentID.hash(symbol, String(proposal.ledgerRevision), String(action.rawValue),
                                    String(Self.floorDiv(eventTimeMs, Self.planBucketMs)))
        let memory = OnceMemory(context: context, view: madePlans, name: "plans-\(symbol)", keepMs: Self.memoryMs)
        if try await memory.record(planID, eventTimeMs: eventTimeMs, inputSequence: input.streamSequence, symbol: symbol) == .duplicate {
            try context.decide(.skip, reason: .duplicate, about: about, kind: .proposal, symbol: symbol,
                               detail: "plan \(planID) was already made this minute for this ledger revision", before: before,
                               after: ["plan_id": planID])
            return
        }

        var (plan, reason) = try await makePlan(action: action, proposal: proposal, symbol: symbol)
        plan.planID = planID
        plan.origin = about
        plan.ledgerRevision = proposal.ledgerRevision
        plan.killScore = proposal.killScore
        plan.permitKind = .p26
        plan.expiresAtMs = context.clock.nowMs() + planTTLMs
        plan.meta.eventTimeMs = eventTimeMs

        try context.emit("plans", plan, subject: Subjects.planSized(symbol), id: planID)
        try context.decide(reason == .passed ? .pass : .modify, reason: reason, about: about, kind: .proposal, symbol: symbol,
                           before: before, after: ["plan_id": planID, "kind": "\(plan.kind)", "quantity": plan.quantity])
    }

    /// The plan for an exit action, and PASSED or the reason it differs from the plain mapping.
    private func makePlan(action: HarvestAction, proposal: HarvestProposal, symbol: String) async throws -> (Plan, ReasonCode) {
        guard let signed = Decimal.parse(proposal.positionAmt), signed != 0 else {
            throw PluginError.permanent("proposal \(proposal.proposalID): position_amt \"\(proposal.positionAmt)\" is not an open position")
        }
        let size = abs(signed)
        var plan = Plan()
        plan.symbol = symbol
        plan.side = signed > 0 ? .sell : .buy
        plan.reduceOnly = true
        switch action {
        case .updateSl:
            guard let stop = Decimal.parse(proposal.newStopPrice), stop > 0 else {
                throw PluginError.permanent("proposal \(proposal.proposalID): UPDATE_SL without a new_stop_price")
            }
            let rules = try await filters.filters(for: symbol)
            plan.kind = .updateStop
            plan.stopPrice = rules.roundPrice(stop, signed > 0 ? .down : .up).plainString
            return (plan, .passed)
        case .fullClose:
            plan.kind = .close
            plan.quantity = size.plainString
            plan.reducePercent = 100
            return (plan, .passed)
        case .partial25, .partial50, .partial75:
            let percent = action == .partial25 ? 25 : action == .partial50 ? 50 : 75
            let rules = try await filters.filters(for: symbol)
            let quantity = rules.roundQuantityDown(size * Decimal(percent) / 100)
            let rest = size - quantity
            let mark = Decimal.parse(proposal.markPrice) ?? 0
            if quantity <= 0 || quantity < rules.minQty || rest < rules.minQty || rest * mark < rules.minNotional {
                plan.kind = .close
                plan.quantity = size.plainString
                plan.reducePercent = 100
                return (plan, .dust)
            }
            plan.kind = .reduce
            plan.quantity = quantity.plainString
            plan.reducePercent = Int32(percent)
            return (plan, .passed)
        case .hold, .unspecified, .UNRECOGNIZED:
            throw PluginError.permanent("no exit plan for action \(action)")
        }
    }

    static func floorDiv(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
    }
}
