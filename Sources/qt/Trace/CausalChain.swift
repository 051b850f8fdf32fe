import Bus
import Exchange
import Foundation
import Synchronization
import Messages

/// The records of one causal chain: everything sharing a `Qt-Trace` id with the message asked
/// about, plus what names one of the chain's ids (an order's fills polled by position-brain, a
/// result the executor's recovery timer finished), with the order, permit and ledger revisions
/// the chain left in KV.
struct CausalChain {
    let records: [TraceRecord]

    var traceIDs: Set<String> { Set(records.map(\.meta.traceID).filter { !$0.isEmpty }) }
    var planIDs: [String] { unique(records.map(\.planID).filter { !$0.isEmpty }) }
    var clientOrderIDs: [String] { unique(records.map(\.clientOrderID).filter { !$0.isEmpty }) }
    var symbol: String { records.first { !$0.symbol.isEmpty }?.symbol ?? "" }

    /// Reads the chain-bearing streams (one symbol's subjects when `symbol` is given).
    static func load(_ bus: BusConnection, symbol: String?) async throws -> [TraceRecord] {
        var records: [TraceRecord] = []
        for pattern in TraceRecord.patterns {
            let collected = RecordCollector()
            try await bus.tail(TraceRecord.filter(pattern, symbol: symbol), last: Int.max, follow: false) { message in
                collected.add(message)
                return true
            }
            records += try collected.records()
        }
        return records.sorted { ($0.wallMs, $0.streamSequence) < ($1.wallMs, $1.streamSequence) }
    }

    /// The chain of the message whose id (or intent, proposal, plan or client order id, or a
    /// prefix of 8 characters or more) is `id`; nil when no message names it.
    static func find(_ id: String, in records: [TraceRecord]) -> CausalChain? {
        let matches: (String) -> Bool = id.count >= 8 ? { $0.hasPrefix(id) } : { $0 == id }
        let seeds = records.filter { record in record.allIDs.contains(where: matches) || matches(record.meta.traceID) }
        guard !seeds.isEmpty else { return nil }
        var traces = Set(seeds.map(\.meta.traceID).filter { !$0.isEmpty })
        var ids = seeds.reduce(into: Set<String>()) { $0.formUnion($1.allIDs) }
        var members = Set<Int>()
        var grew = true
        while grew {
            grew = false
            for (index, record) in records.enumerated() where !members.contains(index) {
                guard traces.contains(record.meta.traceID) || !record.ids.isDisjoint(with: ids) else { continue }
                members.insert(index)
                if !record.meta.traceID.isEmpty { traces.insert(record.meta.traceID) }
                ids.formUnion(record.allIDs)
                grew = true
            }
        }
        return CausalChain(records: members.sorted().map { records[$0] })
    }

    /// The latest `count` chains on a symbol, oldest first.
    static func latest(_ count: Int, in records: [TraceRecord]) -> [CausalChain] {
        var chains: [CausalChain] = []
        var covered = Set<String>()
        for record in records.reversed() where chains.count < count && !record.meta.traceID.isEmpty && !covered.contains(record.meta.traceID) {
            guard let chain = find(record.meta.traceID, in: records) else { continue }
            covered.formUnion(chain.traceIDs)
            chains.append(chain)
        }
        return chains.reversed()
    }

    /// The chain as text, with the permit, order record and ledger revisions it left in KV.
    func render(_ bus: BusConnection) async throws -> [String] {
        guard let first = records.first else { return [] }
        var lines = ["trace \(traceIDs.sorted().map { String($0.prefix(16)) }.joined(separator: ", ")) · \(symbol)"
                     + " · \(records.count) messages from \(Self.timestamp(first.wallMs))"]
        for record in records {
            let offset = String(format: "+%6d ms", record.wallMs - first.wallMs)
            let cause = record.meta.causeID.isEmpty ? "" : " ← \(record.meta.causeID.prefix(8))"
            lines.append("  \(offset)  \(record.kind.padded(10)) \(record.subject.padded(34)) \(record.summary)")
            lines.append("             id \(record.meta.id.prefix(8))\(cause) · \(record.meta.producer)")
        }
        let permits = try await bus.keyValue("qt_permits")
        for planID in planIDs {
            let history = try await permits.history(planID)
            guard let last = history.last else { continue }
            let state = last.operation == .put ? "live (not yet used)" : "used and deleted (revision \(last.revision))"
            lines.append("  permit     qt_permits/\(planID.prefix(12)): \(state)")
        }
        let orders = try await bus.keyValue("qt_orders")
        for clientOrderID in clientOrderIDs {
            guard let record = try await orders.get(OrderRecord.self, clientOrderID) else { continue }
            let order = record.value
            lines.append("  order      qt_orders/\(clientOrderID) revision \(record.revision): \(shortName(order.status))"
                         + " exchange order \(order.exchangeOrderID), \(order.executedQty) @ \(order.avgPrice), fee \(order.fee),"
                         + " fills \(order.fillIds.joined(separator: ","))")
        }
        let plans = Set(planIDs)
        for entry in try await bus.keyValue("qt_ledger").history(symbol) {
            guard let ledger = try entry.decoded(as: LedgerEntry.self),
                  plans.contains(ledger.lastPlanID) || plans.contains(ledger.pendingPlanID) else { continue }
            let role = plans.contains(ledger.pendingPlanID) ? "claimed for the plan" : "committed"
            lines.append("  ledger     qt_ledger/\(symbol) revision \(entry.revision) (\(role)): position \(ledger.positionAmt.isEmpty ? "0" : ledger.positionAmt)"
                         + " entry \(ledger.entryPrice.isEmpty ? "-" : ledger.entryPrice) realized \(ledger.realizedPnl.isEmpty ? "0" : ledger.realizedPnl)"
                         + (ledger.stopPrice.isEmpty ? "" : " stop \(ledger.stopPrice)"))
        }
        return lines
    }

    private func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }

    static func timestamp(_ wallMs: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(wallMs) / 1000))
    }
}

/// Collects a tail's messages (its callback is synchronous and `@Sendable`).
private final class RecordCollector: Sendable {
    private let messages = Mutex<[InboundMessage]>([])

    func add(_ message: InboundMessage) { messages.withLock { $0.append(message) } }

    func records() throws -> [TraceRecord] {
        try messages.withLock { $0 }.compactMap { try TraceRecord($0) }
    }
}
