import Exchange
import Foundation
import Host
import Identity
import Messages

/// The last gate before the executor (DESIGN.md §5, seed "P3.3 + P2.6"). Every sized plan gets a
/// `Decision`; a pass writes a `Permit` to `qt_permits` (TTL 60 s) and publishes the plan on
/// `qt.plan.approved.<SYM>` with `expires_at` = now + the permit's life.
///
/// Entries (P33): trading state ACTIVE, symbol in the universe, no reconcile hold, margin ratio
/// below `max_margin_ratio` (from a fresh account snapshot), no open position, and a free entry
/// slot (`EntrySlots`: one `qt_state` key claimed by compare-and-set, so hosts together never
/// exceed `max_positions`). Exits (P26): not HALTED, a position on the other side of the order,
/// quantity clamped to |position|. Nothing else may stop an exit (R6).
public final class PortfolioGatePlugin: Plugin {
    public static let name = "portfolio-gate"

    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: name, version: "1.0.0",
            inputs: [InputSpec("sized", subject: "qt.plan.sized.*", type: Plan.self, replayLimit: InputSpec.planReplay)],
            outputs: [OutputSpec("approved", subject: "qt.plan.approved.*", type: Plan.self),
                      OutputSpec("decisions", subject: "qt.decision.portfolio-gate.*", type: Decision.self)],
            kvReads: ["qt_control", "qt_ledger", "qt_snapshot", "qt_universe", "qt_state", "qt_permits"],
            kvWrites: ["qt_permits", "qt_state"],
            config: [ConfigKey("max_positions", .int, default: .int(10), range: 1...100_000, help: "open positions plus live entry permits, over all hosts"),
                     ConfigKey("max_margin_ratio", .double, default: .double(0.5), range: 0.01...1, help: "entries blocked at or above this account margin ratio"),
                     ConfigKey("snapshot_max_age_s", .int, default: .int(15), range: 1...1_000_000,
                               help: "an account snapshot older than this blocks entries (STALE_INPUT): 3 position-brain polls"),
                     ConfigKey("permit_ttl_s", .int, default: .int(60), range: 1...60, help: "wall-clock seconds a permit and an approved plan stay valid")]),
        make: { setup in
            PortfolioGatePlugin(maxPositions: try setup.settings.int("max_positions"),
                                maxMarginRatio: try setup.settings.double("max_margin_ratio"),
                                snapshotMaxAgeMs: Int64(try setup.settings.int("snapshot_max_age_s")) * 1000,
                                permitTTLMs: Int64(try setup.settings.int("permit_ttl_s")) * 1000)
        })

    private let maxPositions: Int
    private let maxMarginRatio: Double
    private let snapshotMaxAgeMs: Int64
    private let permitTTLMs: Int64
    /// What every entry reads, kept by watches (exits read their symbol's ledger entry from the bucket).
    private let ledgerView = LedgerView()
    private let control = ControlView()
    private let slotRounds = StateRounds()
    private let universeView = UniverseView()
    private let account = BucketView<AccountSnapshot>("qt_snapshot", key: "_account")
    private let reconcileHolds = BucketView<PluginState>("qt_state", key: "position-brain.\(PositionBrainPlugin.holdState)")
    private let positionSnapshots = BucketView<PositionSnapshot>("qt_snapshot") { $0 != "_account" }

    init(maxPositions: Int, maxMarginRatio: Double, snapshotMaxAgeMs: Int64, permitTTLMs: Int64) {
        self.maxPositions = maxPositions
        self.maxMarginRatio = maxMarginRatio
        self.snapshotMaxAgeMs = snapshotMaxAgeMs
        self.permitTTLMs = permitTTLMs
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard var plan = input.message(as: Plan.self) else { throw PluginError.permanent("expected a Plan") }
        try PlanCheck.validate(plan, subject: input.subject, expected: Subjects.planSized(plan.symbol), sized: true)
        let before = ["kind": "\(plan.kind)", "side": "\(plan.side)", "quantity": plan.quantity, "permit_kind": "\(plan.permitKind)"]
        let nowMs = context.clock.nowMs()
        var reason = ReasonCode.passed
        do {
            switch plan.permitKind {
            case .p33: try await admitEntry(plan, context: context, nowMs: nowMs)
            case .p26: reason = try await admitExit(&plan, context: context)
            case .unspecified, .UNRECOGNIZED:
                throw PluginError.permanent("plan \(plan.planID) on \(input.subject): permit_kind \(plan.permitKind) is neither P33 nor P26")
            }
        } catch let refusal as GateRefusal {
            try context.decide(.block, reason: refusal.reason, about: plan.planID, kind: .plan, symbol: plan.symbol,
                               detail: refusal.detail, before: before)
            return
        }
        var permit = Permit()
        permit.planID = plan.planID
        permit.kind = plan.permitKind
        permit.symbol = plan.symbol
        permit.grantedAtMs = nowMs
        permit.expiresAtMs = nowMs + permitTTLMs
        permit.maxQuantity = plan.quantity
        permit.planDigest = PlanDigest.of(plan)
        // The permit travels in the plan's batch, ahead of it: one round trip for both. The two
        // streams store apart, so the executor may meet the plan first; it then waits a retry for
        // the permit before refusing the plan (docs/decisions.md, issue 20, fifth part).
        try await context.putWithOutputs("qt_permits", plan.planID, permit)
        plan.expiresAtMs = permit.expiresAtMs
        try context.emit("approved", plan, subject: Subjects.planApproved(plan.symbol))
        try context.decide(reason == .passed ? .pass : .modify, reason: reason, about: plan.planID, kind: .plan, symbol: plan.symbol,
                           before: before, after: ["quantity": plan.quantity, "expires_at_ms": String(plan.expiresAtMs)])
    }

    private func admitEntry(_ plan: Plan, context: HandlerContext, nowMs: Int64) async throws {
        guard plan.kind == .open, !plan.reduceOnly else {
            throw PluginError.permanent("plan \(plan.planID): a P33 permit is for OPEN plans without reduce_only, not \(plan.kind)")
        }
        try await control.check(context, entry: true)

        let universe = try await universeView.read(context, listing: plan.symbol)
        guard universe.contains(plan.symbol) else { throw GateRefusal(reason: .notInUniverse, detail: universe.absence(of: plan.symbol)) }
        let holds = try await reconcileHolds.read("position-brain.\(PositionBrainPlugin.holdState)", context) { reading in
            if case .unreadable = reading { return false }
            return reading.value?.symbols.contains(plan.symbol) != true
        }
        if case .unreadable(let why) = holds {
            throw GateRefusal(reason: .unreadableState, detail: "\(why): entries are held")
        }
        if holds.value?.symbols.contains(plan.symbol) == true {
            throw GateRefusal(reason: .reconcileHold, detail: "\(plan.symbol) is on reconcile hold: exchange and ledger disagree")
        }
        let snapshot = try await account.read("_account", context) { reading in
            reading.value.map { nowMs - $0.asOfMs <= snapshotMaxAgeMs } ?? false
        }
        if case .unreadable(let why) = snapshot {
            throw GateRefusal(reason: .unreadableState, detail: "\(why): entries are held")
        }
        guard let account = snapshot.value, nowMs - account.asOfMs <= snapshotMaxAgeMs else {
            throw GateRefusal(reason: .staleInput, detail: "no account snapshot newer than \(snapshotMaxAgeMs / 1000) s in qt_snapshot/_account")
        }
        if account.marginRatio >= maxMarginRatio {
            throw GateRefusal(reason: .marginRatio, detail: "margin ratio \(account.marginRatio) ≥ max_margin_ratio \(maxMarginRatio)")
        }
        if case .unreadable(let why) = try await positionSnapshots.read(plan.symbol, context) {
            throw GateRefusal(reason: .unreadableState, detail: "\(why): entries on \(plan.symbol) are held")
        }
        // The view may trail the bucket by a watch delivery: the executor's claim refuses an OPEN
        // on a symbol that holds a position, exactly.
        if let position = try await ledgerView.position(plan.symbol, context) {
            throw GateRefusal(reason: .positionExists, detail: "\(plan.symbol) already holds \(position.amount.plainString): no pyramiding")
        }
        let slots = EntrySlots(context: context, rounds: slotRounds, view: ledgerView, maxPositions: maxPositions)
        let claimed: Bool
        do {
            claimed = try await slots.claim(plan.symbol, untilMs: nowMs + permitTTLMs, nowMs: nowMs)
        } catch let unreadable as SlotStateUnreadable {
            throw GateRefusal(reason: .unreadableState, detail: "qt_state/\(Self.name).\(EntrySlots.stateName): \(unreadable): entries are held")
        } catch let unreadable as UnreadableValue {
            throw GateRefusal(reason: .unreadableState, detail: "\(unreadable): entries are held")
        }
        guard claimed else { throw GateRefusal(reason: .maxPositions, detail: "all \(maxPositions) entry slots are taken") }
    }

    private func admitExit(_ plan: inout Plan, context: HandlerContext) async throws -> ReasonCode {
        guard plan.kind != .open, plan.kind == .updateStop || plan.reduceOnly else {
            throw PluginError.permanent("plan \(plan.planID): a P26 permit is for reduce-only CLOSE, REDUCE or UPDATE_STOP, not \(plan.kind)")
        }
        try await control.check(context, entry: false)
        guard let position = try await LedgerPosition.read(plan.symbol, from: try await context.kv("qt_ledger")) else {
            throw GateRefusal(reason: .noPosition, detail: "the ledger holds no \(plan.symbol) position to exit")
        }
        guard plan.side == position.closingSide else {
            throw GateRefusal(reason: .wrongSide, detail: "a \(plan.side) order does not reduce a position of \(position.amount.plainString)")
        }
        guard plan.kind != .updateStop else { return .passed }
        guard let quantity = Decimal.parse(plan.quantity), quantity > 0 else {
            throw PluginError.permanent("plan \(plan.planID): quantity \"\(plan.quantity)\" is not a positive decimal")
        }
        let size = abs(position.amount)
        if plan.kind == .close || quantity > size {
            plan.quantity = size.plainString
            return quantity != size ? .quantityClamped : .passed
        }
        return .passed
    }
}
