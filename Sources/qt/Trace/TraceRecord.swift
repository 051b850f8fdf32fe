import Bus
import Foundation
import Messages

/// One message of a causal chain as `qt trace` prints it: where it was, what it links to (its
/// own id, trace and cause, and the business ids it names), and a one-line description.
struct TraceRecord {
    let wallMs: Int64
    let subject: String
    let streamSequence: UInt64
    let kind: String
    let meta: Meta
    let symbol: String
    /// Intent, proposal, plan and client order ids the message is about or carries.
    let ids: Set<String>
    let summary: String
    private(set) var planID = ""
    private(set) var clientOrderID = ""

    var allIDs: Set<String> { ids.union([meta.id].filter { !$0.isEmpty }) }

    /// The subjects a chain can run through, in pipeline order (the market stream is not part
    /// of a chain: bars cause everything and explain nothing).
    static let patterns = ["qt.signal.intent.*", "qt.harvest.proposed.*", "qt.harvest.calibrated.*", "qt.plan.proposed.*",
                           "qt.plan.sized.*", "qt.plan.approved.*", "qt.exec.result.*", "qt.exec.fill.*", "qt.decision.*.*"]

    /// The concrete filter for one symbol (`qt.plan.sized.BTCUSDT`, `qt.decision.*.BTCUSDT`).
    static func filter(_ pattern: String, symbol: String?) -> String {
        guard let symbol else { return pattern }
        return String(pattern.dropLast()) + symbol
    }

    init?(_ message: InboundMessage) throws {
        guard let type = Topology.route(for: message.subject)?.messageType else { return nil }
        wallMs = message.timestampNs / 1_000_000
        subject = message.subject
        streamSequence = message.streamSequence
        let bytes = message.payload
        switch type {
        case is TradeIntent.Type:
            let intent = try TradeIntent(serializedBytes: bytes)
            (kind, meta, symbol, ids) = ("intent", intent.meta, intent.symbol, [intent.intentID])
            summary = "\(shortName(intent.action)) confidence \(String(format: "%.3f", intent.confidence)) leverage \(intent.leverage)"
                + " model \(intent.model)"
        case is HarvestProposal.Type:
            let proposal = try HarvestProposal(serializedBytes: bytes)
            (kind, meta, symbol, ids) = ("proposal", proposal.meta, proposal.symbol, [proposal.proposalID])
            summary = Self.describe(proposal)
        case is CalibratedProposal.Type:
            let calibrated = try CalibratedProposal(serializedBytes: bytes)
            (kind, meta, symbol, ids) = ("calibrated", calibrated.meta, calibrated.proposal.symbol, [calibrated.proposal.proposalID])
            summary = "\(shortName(calibrated.proposal.action)) → \(shortName(calibrated.calibratedAction)) heat "
                + String(format: "%.3f", calibrated.heat) + " \(shortName(calibrated.bucket)) (\(shortName(calibrated.mode)))"
        case is Plan.Type:
            let plan = try Plan(serializedBytes: bytes)
            (kind, meta, symbol, ids) = ("plan", plan.meta, plan.symbol, Set([plan.planID, plan.origin].filter { !$0.isEmpty }))
            planID = plan.planID
            summary = "\(shortName(plan.kind)) \(shortName(plan.side)) \(plan.quantity)\(plan.reduceOnly ? " reduce-only" : "")"
                + (plan.killScore > 0 ? " K=\(String(format: "%.3f", plan.killScore))" : "")
                + (plan.ledgerRevision > 0 ? " at ledger revision \(plan.ledgerRevision)" : "") + " plan \(plan.planID.prefix(12))"
        case is Decision.Type:
            let decision = try Decision(serializedBytes: bytes)
            (kind, meta, symbol, ids) = ("decision", decision.meta, decision.symbol, [decision.subjectID])
            summary = "\(decision.plugin): \(shortName(decision.verdict)) \(shortName(decision.reason))"
                + (decision.detail.isEmpty ? "" : " — \(decision.detail)")
                + (decision.after.isEmpty ? "" : " " + decision.after.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        case is OrderResult.Type:
            let result = try OrderResult(serializedBytes: bytes)
            (kind, meta, symbol, ids) = ("result", result.meta, result.symbol, [result.planID, result.clientOrderID])
            (planID, clientOrderID) = (result.planID, result.clientOrderID)
            summary = "\(shortName(result.status)) \(shortName(result.side)) \(result.executedQty) @ \(result.avgPrice)"
                + " order \(result.exchangeOrderID) client \(result.clientOrderID)"
                + (result.realizedPnl.isEmpty ? "" : " realized \(result.realizedPnl)")
                + (result.errorCode != 0 ? " error \(result.errorCode) \(result.errorMessage)" : "")
        case is Fill.Type:
            let fill = try Fill(serializedBytes: bytes)
            (kind, meta, symbol, ids) = ("fill", fill.meta, fill.symbol, [fill.clientOrderID])
            summary = "\(shortName(fill.origin)) \(shortName(fill.side)) \(fill.qty) @ \(fill.price) trade \(fill.tradeID)"
        default:
            return nil
        }
    }

    private static func describe(_ proposal: HarvestProposal) -> String {
        let components = proposal.killComponents
        return "\(shortName(proposal.action)) K=\(String(format: "%.3f", proposal.killScore))"
            + " (regime flip \(String(format: "%.3f", components.regimeFlip)), sigma spike \(String(format: "%.3f", components.sigmaSpike)),"
            + " ts drop \(String(format: "%.3f", components.tsDrop)), age \(String(format: "%.3f", components.agePenalty)))"
            + " R=\(String(format: "%.2f", proposal.rNet)) reasons \(proposal.reasons.map { shortName($0) }.joined(separator: ","))"
            + " at ledger revision \(proposal.ledgerRevision)"
    }
}
