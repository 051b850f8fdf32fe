import Bus
import Foundation
import Messages

/// Holds `qt_leases/<plugin>` for a plugin's singleton timers: create to take it, renew by
/// compare-and-set, lose it on a conflict. Server 2.9 writes no expiry marker, so a standby polls
/// `create`, which succeeds once the holder's last write has aged out (TTL 15 s): a takeover
/// within the TTL plus one renew interval.
final class LeaseKeeper: @unchecked Sendable {
    let name: String
    let hostID: String
    let renewIntervalMs: Int64
    private let bucket: KeyValueBucket
    private let lock = NSLock()
    private var revision: UInt64 = 0
    private var term: UInt64 = 0

    init(name: String, hostID: String, bucket: KeyValueBucket, renewIntervalMs: Int64) {
        self.name = name
        self.hostID = hostID
        self.bucket = bucket
        self.renewIntervalMs = renewIntervalMs
    }

    var isHeld: Bool { lock.withLock { revision != 0 } }

    /// One step: renew when held, try to take it otherwise. Returns whether it is held now.
    @discardableResult
    func step(nowMs: Int64) async -> Bool {
        let held = lock.withLock { revision }
        var lease = Lease()
        lease.name = name
        lease.holder = hostID
        lease.renewedAtMs = nowMs
        do {
            if held != 0 {
                lease.term = lock.withLock { term }
                let next = try await bucket.update(name, message: lease, expectedRevision: held)
                lock.withLock { revision = next }
            } else {
                lease.acquiredAtMs = nowMs
                lease.term = UInt64(nowMs)
                let next = try await bucket.create(name, message: lease)
                lock.withLock { revision = next; term = lease.term }
            }
        } catch BusError.conflict {
            lock.withLock { revision = 0 }
        } catch {
            // NATS unreachable: we cannot prove we hold it, so we stop acting as holder.
            lock.withLock { revision = 0 }
        }
        return isHeld
    }

    /// Gives the lease up at shutdown so a standby takes over at its next poll.
    func release() async {
        let held = lock.withLock { revision }
        guard held != 0 else { return }
        lock.withLock { revision = 0 }
        try? await bucket.delete(name)
    }
}
