import Foundation
import Host
import Identity
import Messages

/// Turns ai-agent intents into proposed plans on `qt.plan.proposed.<SYM>` (DESIGN.md §5). Every
/// intent gets a `Decision`:
/// - HOLD → SKIP (`HOLD`); an intent id already bridged → SKIP (`DUPLICATE`);
/// - OPEN_LONG / OPEN_SHORT: the symbol active in `qt_universe` (`NOT_IN_UNIVERSE`), confidence
///   ≥ `min_confidence` (`LOW_CONFIDENCE`), and a flat ledger: no pyramiding, no implicit flip
///   (`POSITION_EXISTS`);
/// - CLOSE: a position in the ledger (`NO_POSITION`).
/// An OPEN plan carries side, leverage and confidence and no quantity (the governor sizes it);
/// a CLOSE plan is reduce-only on the closing side. `plan_id = H(intent-bridge, intent_id)`.
public final class IntentBridgePlugin: Plugin {
    public static let name = "intent-bridge"
    /// Event time an intent id is remembered per symbol.
    static let memoryMs: Int64 = 24 * 3_600_000

    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: name, version: "1.0.0",
            inputs: [InputSpec("intents", subject: "qt.signal.intent.*", type: TradeIntent.self,
                               replayLimit: .setting("max_intent_age_s"))],
            outputs: [OutputSpec("proposed", subject: "qt.plan.proposed.*", type: Plan.self),
                      OutputSpec("decisions", subject: "qt.decision.intent-bridge.*", type: Decision.self)],
            kvReads: ["qt_universe", "qt_ledger", "qt_state"],
            kvWrites: ["qt_state"],
            config: [ConfigKey("min_confidence", .double, default: .double(0.55), range: 0...1, help: "OPEN intents below this confidence are skipped"),
                     ConfigKey("max_intent_age_s", .double, default: .double(120), range: 1...86_400,
                               help: "intents that waited longer in their stream (JetStream's stored time, wall clock) are skipped STALE")]),
        make: { setup in
            IntentBridgePlugin(minConfidence: try setup.settings.double("min_confidence"),
                               maxAgeMs: Int64(try setup.settings.double("max_intent_age_s") * 1000))
        })

    private let minConfidence: Double
    private let maxAgeMs: Int64

    /// Entries read the universe and the ledger from views (no round trip); a close reads its
    /// symbol's entry from the bucket.
    private let universeView = UniverseView()
    private let ledgerView = LedgerView()
    /// The intent ids bridged per symbol (`OnceMemory`), kept by a watch.
    private let bridgedIntents = BucketView<PluginState>.ownState(of: name, prefix: "intents-")

    init(minConfidence: Double, maxAgeMs: Int64) {
        self.minConfidence = minConfidence
        self.maxAgeMs = maxAgeMs
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let intent = input.message(as: TradeIntent.self) else { throw PluginError.permanent("expected a TradeIntent") }
        let symbol = intent.symbol
        guard Symbols.isValid(symbol), input.subject == Subjects.intent(symbol), !intent.intentID.isEmpty else {
            throw PluginError.permanent("intent on \(input.subject): symbol \"\(symbol)\", intent_id \"\(intent.intentID)\"; "
                                        + "expected an id and a symbol of \(Symbols.rule), on the subject of the symbol")
        }
        guard input.eventTimeMs > 0 else {
            throw PluginError.permanent("intent \(intent.intentID) on \(input.subject): event time \(input.eventTimeMs), expected a time")
        }
        guard intent.confidence.isFinite, (0...1).contains(intent.confidence) else {
            throw PluginError.permanent("intent \(intent.intentID) on \(input.subject): confidence \(intent.confidence) is not in [0, 1]")
        }
        let about = intent.intentID
        let before = ["action": "\(intent.action)", "confidence": String(intent.confidence), "model": intent.model]
        func skip(_ reason: ReasonCode, _ detail: String) throws {
            try context.decide(.skip, reason: reason, about: about, kind: .intent, symbol: symbol, detail: detail, before: before)
        }

        let waitedMs = context.clock.nowMs() - input.storedAtMs
        if waitedMs > maxAgeMs {
            // A backlog (a new durable replaying history, a host that was down): the model's view
            // of then is not a reason to trade now.
            return try skip(.stale, "intent waited \(waitedMs / 1000) s in its stream, more than max_intent_age_s \(maxAgeMs / 1000)")
        }

        var plan = Plan()
        do {
            switch intent.action {
            case .hold:
                return try skip(.hold, "HOLD makes no plan")
            case .openLong, .openShort:
                let universe = try await universeView.read(context, listing: symbol)
                guard universe.contains(symbol) else { return try skip(.notInUniverse, universe.absence(of: symbol)) }
                guard intent.confidence >= minConfidence else {
                    return try skip(.lowConfidence, "confidence \(intent.confidence) < min_confidence \(minConfidence)")
                }
                if let position = try await ledgerView.position(symbol, context) {
                    return try skip(.positionExists, "\(symbol) holds \(position.amount.plainString): no pyramiding, no implicit flip")
                }
                guard intent.leverage > 0 else {
                    throw PluginError.permanent("intent \(intent.intentID) on \(input.subject): leverage \(intent.leverage), expected ≥ 1")
                }
                plan.kind = .open
                plan.side = intent.action == .openLong ? .buy : .sell
                plan.leverage = intent.leverage
                plan.permitKind = .p33
            case .close:
                guard let position = try await LedgerPosition.read(symbol, from: try await context.kv("qt_ledger")) else {
                    return try skip(.noPosition, "the ledger holds no \(symbol) position to close")
                }
                plan.closeAll(position)
            case .unspecified, .UNRECOGNIZED:
                throw PluginError.permanent("intent \(intent.intentID) on \(input.subject): action \(intent.action) is not an IntentAction")
            }
        } catch let refusal as GateRefusal {
            return try skip(refusal.reason, refusal.detail)  // an unreadable ledger entry holds the symbol
        }

        let memory = OnceMemory(context: context, view: bridgedIntents, name: "intents-\(symbol)", keepMs: Self.memoryMs)
        if try await memory.record(intent.intentID, eventTimeMs: input.eventTimeMs, inputSequence: input.streamSequence,
                                   symbol: symbol) == .duplicate {
            return try skip(.duplicate, "intent \(intent.intentID) was already bridged")
        }
        plan.planID = ContentID.hash(Self.name, intent.intentID)
        plan.symbol = symbol
        plan.confidence = intent.confidence
        plan.origin = intent.intentID
        plan.meta.eventTimeMs = input.eventTimeMs
        try context.emit("proposed", plan, subject: Subjects.planProposed(symbol), id: plan.planID)
        try context.decide(.pass, reason: .passed, about: about, kind: .intent, symbol: symbol, before: before,
                           after: ["plan_id": plan.planID, "kind": "\(plan.kind)", "side": "\(plan.side)"])
    }
}
