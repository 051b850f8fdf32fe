import Exchange
import Foundation
import Host
import Identity
import Kernels
import Messages

/// On each market state of a symbol with an open position in `qt_ledger` (the ledger is the
/// only list: R4), runs §6.2 with the snapshot's mark and the ledger's entry, stop,
/// `stop_dist_pct` and `tranches_taken`, and publishes a `HarvestProposal` when something
/// changed: the action, the ledger revision, K or the proposed stop by more than 0.1 %, or 60 s
/// of event time since the last one. The proposal id is `H(harvest-proposer, proposal, symbol,
/// event time, ledger revision)`, so a replay reproduces it.
public final class HarvestProposerPlugin: Plugin {
    public static let name = "harvest-proposer"
    public static let republishAfterMs: Int64 = 60_000
    public static let relativeChange = 0.001

    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: name, version: "1.0.0",
            inputs: [InputSpec("states", subject: "qt.market.state.*", type: MarketState.self)],
            outputs: [OutputSpec("proposals", subject: "qt.harvest.proposed.*", type: HarvestProposal.self),
                      OutputSpec("alerts", subject: "qt.alert.*", type: Alert.self)],
            kvReads: ["qt_ledger", "qt_snapshot", "qt_state"],
            kvWrites: ["qt_state"],
            config: [ConfigKey("snapshot_stale_s", .double, default: .double(15), range: 1...86_400,
                               help: "a snapshot older than this (3 poll intervals) is used but raises an alert"),
                     ConfigKey("snapshot_grace_s", .int, default: .int(180), range: 0...86_400,
                               help: "event-time seconds a new position may wait for its first snapshot before an alert")]),
        make: { setup in
            HarvestProposerPlugin(snapshotStaleMs: Int64(try setup.settings.double("snapshot_stale_s") * 1000),
                                  snapshotGraceMs: Int64(try setup.settings.int("snapshot_grace_s")) * 1000)
        })

    private let snapshotStaleMs: Int64
    private let snapshotGraceMs: Int64

    init(snapshotStaleMs: Int64, snapshotGraceMs: Int64) {
        self.snapshotStaleMs = snapshotStaleMs
        self.snapshotGraceMs = snapshotGraceMs
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let market = input.message(as: MarketState.self) else { throw PluginError.permanent("expected a MarketState") }
        let symbol = market.symbol
        guard !symbol.isEmpty, input.subject == Subjects.marketState(symbol) else {
            throw PluginError.permanent("market state for \"\(symbol)\" arrived on \(input.subject)")
        }
        let position: LedgerPosition
        do {
            guard let open = try await LedgerPosition.read(symbol, from: try await context.kv("qt_ledger")) else { return }
            position = open
        } catch is GateRefusal {
            return  // an unreadable entry: the symbol is held, the sentinel alerts
        }
        let eventTimeMs = market.asOfMs

        let stored = try await context.kv("qt_snapshot").read(PositionSnapshot.self, symbol)
        if case .unreadable = stored { return }  // held: the sentinel alerts, position-brain's next poll rewrites it
        guard let snapshot = stored.value, let mark = Decimal.parse(snapshot.markPrice), mark > 0 else {
            // A position-brain poll or two after the fill is normal; past that, exits are stuck.
            if eventTimeMs - position.entry.openedAtMs > snapshotGraceMs {
                try alert(context, symbol: symbol, eventTimeMs: eventTimeMs,
                          "\(symbol): open in the ledger but no snapshot with a mark price; no exit proposal until position-brain writes one",
                          id: ContentID.hash(Self.name, "no-snapshot", symbol, String(position.revision)))
            }
            return
        }
        let wallMs = context.clock.nowMs()
        if wallMs - snapshot.asOfMs > snapshotStaleMs {
            try alert(context, symbol: symbol, eventTimeMs: eventTimeMs,
                      "\(symbol): snapshot is \((wallMs - snapshot.asOfMs) / 1000) s old; proposing with the last known mark")
        }

        let kernelPosition = HarvestKernel.Position(
            side: position.amount > 0 ? .long : .short, entryPrice: position.entryPrice.doubleValue, markPrice: mark.doubleValue,
            ageSec: max(0, Double(eventTimeMs - position.entry.openedAtMs) / 1000), currentStop: position.stopPrice,
            tranchesTaken: Int(position.entry.tranchesTaken),
            stopDistPct: position.entry.stopDistPct > 0 ? position.entry.stopDistPct : nil)
        let kernelMarket = HarvestKernel.Market(sigma: market.sigma, ts: market.ts, pTrend: market.pTrend, pMr: market.pMr,
                                                pChop: market.pChop)
        let result = HarvestKernel.propose(kernelPosition, market: kernelMarket)

        let last = try await context.loadState("last-\(symbol)")
        let previous = last.map { LastProposal($0.state) }
        let current = LastProposal(action: result.action, killScore: result.killScore, stop: result.newStop ?? 0,
                                   eventTimeMs: eventTimeMs, ledgerRevision: position.revision)
        guard previous.map({ current.differs(from: $0) || current.isSameEvent(as: $0) }) ?? true else { return }

        let proposal = Self.message(result, position: position, mark: mark, eventTimeMs: eventTimeMs)
        if !(previous.map { current.isSameEvent(as: $0) } ?? false) {
            _ = try await context.saveState("last-\(symbol)", current.state, expectedRevision: last?.revision ?? 0)
        }
        try context.emit("proposals", proposal, subject: Subjects.harvestProposed(symbol), id: proposal.proposalID)
    }

    static func message(_ result: HarvestKernel.Proposal, position: LedgerPosition, mark: Decimal, eventTimeMs: Int64) -> HarvestProposal {
        var proposal = HarvestProposal()
        proposal.proposalID = ContentID.content(plugin: name, kind: "proposal", symbol: position.symbol, eventTimeMs: eventTimeMs,
                                                revision: position.revision)
        proposal.symbol = position.symbol
        proposal.ledgerRevision = position.revision
        proposal.action = result.action
        proposal.rNet = result.rNet
        proposal.riskPerUnit = result.riskPerUnit
        proposal.killScore = result.killScore
        proposal.killComponents.regimeFlip = result.regimeFlip
        proposal.killComponents.sigmaSpike = result.sigmaSpike
        proposal.killComponents.tsDrop = result.tsDrop
        proposal.killComponents.agePenalty = result.agePenalty
        proposal.newStopPrice = result.newStop.map { Decimal($0).plainString } ?? ""
        proposal.reasons = result.reasons
        proposal.side = position.side
        proposal.positionAmt = position.amount.plainString
        proposal.entryPrice = position.entryPrice.plainString
        proposal.markPrice = mark.plainString
        proposal.tranchesTaken = position.entry.tranchesTaken
        proposal.meta.eventTimeMs = eventTimeMs
        return proposal
    }

    private func alert(_ context: HandlerContext, symbol: String, eventTimeMs: Int64, _ text: String, id: String? = nil) throws {
        var alert = Alert()
        alert.kind = .staleInput
        alert.severity = .warning
        alert.plugin = Self.name
        alert.symbol = symbol
        alert.message = text
        try context.emit("alerts", alert, subject: Subjects.alert(.staleInput), id: id)
    }
}

/// What was last published for a symbol, kept in `qt_state/harvest-proposer.last-<SYM>`.
struct LastProposal {
    var action: HarvestAction
    var killScore: Double
    var stop: Double
    var eventTimeMs: Int64
    var ledgerRevision: UInt64

    init(action: HarvestAction, killScore: Double, stop: Double, eventTimeMs: Int64, ledgerRevision: UInt64) {
        self.action = action
        self.killScore = killScore
        self.stop = stop
        self.eventTimeMs = eventTimeMs
        self.ledgerRevision = ledgerRevision
    }

    init(_ state: PluginState) {
        let values = state.values
        action = HarvestAction(rawValue: Int(values["action"] ?? "") ?? 0) ?? .unspecified
        killScore = Double(values["kill_score"] ?? "") ?? .nan
        stop = Double(values["stop"] ?? "") ?? 0
        eventTimeMs = Int64(values["event_time_ms"] ?? "") ?? 0
        ledgerRevision = UInt64(values["ledger_revision"] ?? "") ?? 0
    }

    var state: PluginState {
        var state = PluginState()
        state.values = ["action": String(action.rawValue), "kill_score": String(killScore), "stop": String(stop),
                        "event_time_ms": String(eventTimeMs), "ledger_revision": String(ledgerRevision)]
        return state
    }

    func differs(from previous: LastProposal) -> Bool {
        action != previous.action || ledgerRevision != previous.ledgerRevision
            || Self.moved(killScore, from: previous.killScore) || Self.moved(stop, from: previous.stop)
            || eventTimeMs - previous.eventTimeMs >= HarvestProposerPlugin.republishAfterMs
    }

    /// The same bar and ledger revision: a redelivery, published again under the same id.
    func isSameEvent(as previous: LastProposal) -> Bool {
        eventTimeMs == previous.eventTimeMs && ledgerRevision == previous.ledgerRevision
    }

    static func moved(_ value: Double, from previous: Double) -> Bool {
        guard previous.isFinite, previous != 0 else { return value != previous }
        return abs(value - previous) / abs(previous) > HarvestProposerPlugin.relativeChange
    }
}
