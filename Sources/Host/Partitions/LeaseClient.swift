package import Bus
import Foundation
import Messages

/// Takes, renews and gives up keys of `qt_leases` by compare-and-set (TTL 15 s on the bucket).
/// A fence's deadline is the time the renewal was *sent* plus the TTL less a margin, so the server
/// cannot have expired the key before this host stops acting on it.
struct LeaseClient: Sendable {
    let bucket: KeyValueBucket
    let hostID: String
    let ttlMs: Int64
    /// Longer than the slowest single action taken under a lease (an exchange call with retries
    /// is bounded well below it), so an action checked just before the deadline ends before expiry.
    let marginMs: Int64

    enum Renewal { case renewed, lost, unreachable }

    /// Creates the key, or takes it over a holder's clean release (`released` at `revision`).
    /// Nil when another host got there first.
    func acquire(_ name: String, partition: Int? = nil, overReleased revision: UInt64? = nil) async throws -> LeaseFence? {
        let sentAtMs = MonotonicClock.nowMs()
        let lease = value(name, acquiredAtMs: Self.wallMs())
        do {
            let written: UInt64
            if let revision {
                written = try await bucket.update(name, message: lease, expectedRevision: revision)
            } else {
                written = try await bucket.create(name, message: lease)
            }
            return LeaseFence(name: name, partition: partition, revision: written, deadlineMs: sentAtMs + ttlMs - marginMs)
        } catch BusError.conflict {
            return nil
        }
    }

    /// Renews by compare-and-set. A conflict means another host holds it now: lost at once. A NATS
    /// error (a RAFT election takes 4–9 s) is tolerated: the fence stays valid until its deadline.
    func renew(_ fence: LeaseFence) async -> Renewal {
        let sentAtMs = MonotonicClock.nowMs()
        do {
            let written = try await bucket.update(fence.name, message: value(fence.name, acquiredAtMs: 0),
                                                  expectedRevision: fence.token)
            fence.renewed(revision: written, deadlineMs: sentAtMs + ttlMs - marginMs)
            return .renewed
        } catch BusError.conflict {
            fence.revoke()
            return .lost
        } catch {
            if !fence.isValid { return .lost }
            return .unreachable
        }
    }

    /// Marks the lease released (after the holder NAKed what it held), so the next holder fetches
    /// at once; the fence is revoked first so nothing more is done under it.
    func release(_ fence: LeaseFence) async {
        fence.revoke()
        var lease = value(fence.name, acquiredAtMs: 0)
        lease.released = true
        lease.holder = ""
        _ = try? await bucket.update(fence.name, message: lease, expectedRevision: fence.token)
    }

    /// A key that only says "this host is alive and runs this instance" (for balancing).
    func announce(_ name: String) async throws {
        _ = try await bucket.put(name, message: value(name, acquiredAtMs: 0))
    }

    func withdraw(_ name: String) async {
        try? await bucket.delete(name)
    }

    private func value(_ name: String, acquiredAtMs: Int64) -> Lease {
        var lease = Lease()
        lease.name = name
        lease.holder = hostID
        lease.acquiredAtMs = acquiredAtMs
        lease.renewedAtMs = Self.wallMs()
        return lease
    }

    static func wallMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
