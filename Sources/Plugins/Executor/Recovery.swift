import Foundation
import Synchronization
import Host
import Logging
import Messages

/// The executor's pass over what a crash can leave behind (DESIGN.md §5: "a startup pass resumes
/// every record not APPLIED and every claim"), run at start, on every partition this host takes,
/// and then every `resume_s`, over the symbols whose partitions this host owns:
/// - a `qt_orders` record not APPLIED or REJECTED and untouched for `idleMs` is run on from its
///   state (its plan message may be waiting out a back-off; every step is safe to run twice);
/// - an APPLIED or REJECTED record older than a day is removed (the bucket has no TTL, so an
///   unfinished record survives any outage);
/// - a ledger claim with no record and no permit can never be finished by its plan (a
///   redelivery would be blocked for the missing permit): it is released once seen on two passes
///   in a row, so a handler between its claim and its record is never overtaken.
final class Recovery: Sendable {
    /// Longer than AckWait (30 s): a record a live handler works on is touched more often.
    static let idleMs: Int64 = 45_000
    /// A finished (APPLIED or REJECTED) record is kept this long for `qt trace`, then removed.
    static let finishedKeepMs: Int64 = 86_400_000

    /// Claims seen without a record or permit on the last pass.
    private let orphanClaims = Mutex<Set<String>>([])

    func pass(context: HandlerContext, resume: (OrderRecord, UInt64) async throws -> Void) async throws {
        let orders = try await context.kv("qt_orders")
        let nowMs = context.clock.nowMs()
        var recorded: Set<String> = []
        for key in try await orders.keys() {
            let found = try await orders.read(OrderRecord.self, key)
            if case .unreadable(let why) = found { context.logger.error("executor recovery: \(why)") }
            guard case .value(let record, let revision) = found else { continue }
            recorded.insert(key)
            guard context.owns(symbol: record.symbol) else { continue }
            if record.status == .applied || record.status == .rejected {
                if nowMs - record.updatedAtMs >= Self.finishedKeepMs { try await orders.delete(key) }
                continue
            }
            guard nowMs - record.updatedAtMs >= Self.idleMs else { continue }
            do {
                try await resume(record, revision)
                try await context.publishNow()
            } catch {
                context.logger.error("executor recovery: \(key): \(error)")
            }
        }

        let ledger = try await context.kv("qt_ledger")
        let permits = try await context.kv("qt_permits")
        var orphans: Set<String> = []
        for symbol in try await ledger.keys() where context.owns(symbol: symbol) {
            // An entry that cannot be read is held (the sentinel alerts); it stops no other claim.
            guard case .value(let entry, _) = try await ledger.read(LedgerEntry.self, symbol), !entry.pendingClientOrderID.isEmpty,
                  !recorded.contains(entry.pendingClientOrderID),
                  try await permits.get(Permit.self, entry.pendingPlanID) == nil else { continue }
            let claim = "\(symbol)|\(entry.pendingClientOrderID)"
            orphans.insert(claim)
            guard orphanClaims.withLock({ $0.contains(claim) }),
                  try await orders.get(OrderRecord.self, entry.pendingClientOrderID) == nil else { continue }
            try await LedgerClaims(ledger: ledger, symbol: symbol, clientOrderID: entry.pendingClientOrderID).release()
            orphans.remove(claim)
        }
        orphanClaims.withLock { $0 = orphans }
    }
}
