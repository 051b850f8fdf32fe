import Host
import Messages
import Synchronization

/// The permits as a watch keeps them (`qt_permits`): the portfolio gate writes a plan's permit
/// before it publishes the plan, so the executor usually finds it here without a round trip.
///
/// The view only ever says yes: a permit it holds is taken while well inside the bucket's 60 s
/// TTL by this host's clock (granted less than 30 s ago and not more than 5 s in the future).
/// Anything else — missing, deleted, older, unreadable, a view that cannot be brought up to
/// date — is read from the bucket, whose TTL runs on the server's clock, as before. So a permit
/// the server has expired is never taken from the view unless this host's clock is more than
/// 25 s behind the gate's, and a permit the view has not seen yet is still found.
final class PermitView: Sendable {
    static let takenWithinMs: Int64 = 30_000
    static let futureToleranceMs: Int64 = 5_000
    /// Dropped from the view this long after their grant: twice the TTL.
    static let forgetAfterMs: Int64 = 120_000
    static let pruneEveryMs: Int64 = 10_000

    private let view = BucketView<Permit>("qt_permits")
    private let lastPruneMs = Mutex<Int64>(0)

    /// How long a permit the view has never seen is waited for before the bucket is read: the
    /// gate's put travels in the plan's batch, and its watch delivery and the plan race each
    /// other here (about a third of plans arrived first in `qt bench e2e`).
    static let arrivalTimeoutNs: UInt64 = 2_000_000

    /// `plan`'s permit, or nil when the bucket holds none.
    func permit(of planID: String, nowMs: Int64, context: HandlerContext) async throws -> Permit? {
        pruneIfDue(nowMs: nowMs)
        var viewed = try? await view.read(planID, context)
        // Only a key the view has never seen may still be on its way; anything else is read now.
        if viewed != nil, view.neverSaw(planID) {
            await view.awaitArrival(of: planID, timeoutNs: Self.arrivalTimeoutNs)
            viewed = try? await view.read(planID, context)
        }
        if case .value(let permit, _)? = viewed, Self.isTakenFromView(permit, nowMs: nowMs) { return permit }
        return try await context.kv("qt_permits").get(Permit.self, planID)?.value
    }

    static func isTakenFromView(_ permit: Permit, nowMs: Int64) -> Bool {
        let age = nowMs - permit.grantedAtMs
        return age < takenWithinMs && age > -futureToleranceMs
    }

    private func pruneIfDue(nowMs: Int64) {
        let due = lastPruneMs.withLock { last in
            guard nowMs - last >= Self.pruneEveryMs else { return false }
            last = nowMs
            return true
        }
        guard due else { return }
        view.prune { _, held in
            switch held {
            case .deleted: return true
            case .value(let permit, _): return nowMs - permit.grantedAtMs > Self.forgetAfterMs
            case .unreadable: return false
            }
        }
    }
}
