package import Bus
import Foundation
import Messages

/// Holds `qt_leases/<plugin>` for a plugin's singleton timers: create to take it (or take it over
/// a clean release), renew by compare-and-set. A conflict loses it at once; a NATS error does
/// not, until the fence's monotonic deadline (DESIGN.md §3.3), so a RAFT election does not
/// stop the singleton, and a paused host does not act after another may have taken over.
final class LeaseKeeper: @unchecked Sendable {
    let name: String
    let renewIntervalMs: Int64
    private let client: LeaseClient
    private let lock = NSLock()
    private var fence: LeaseFence?

    init(name: String, client: LeaseClient, renewIntervalMs: Int64) {
        self.name = name
        self.client = client
        self.renewIntervalMs = renewIntervalMs
    }

    var isHeld: Bool { lock.withLock { fence }?.isValid ?? false }

    var currentFence: LeaseFence? { lock.withLock { fence } }

    /// One step: renew when held, try to take it otherwise. Returns whether it is held now.
    @discardableResult
    func step() async -> Bool {
        if let held = lock.withLock({ fence }) {
            if await client.renew(held) == .lost || !held.isValid {
                lock.withLock { fence = nil }
            }
            return isHeld
        }
        var taken = try? await client.acquire(name)
        if taken == nil, let current = try? await client.bucket.get(Lease.self, name), current.value.released {
            taken = try? await client.acquire(name, overReleased: current.revision)
        }
        lock.withLock { fence = taken }
        return isHeld
    }

    /// Gives the lease up at shutdown so a standby takes over at its next step.
    func release() async {
        guard let held = lock.withLock({ fence }) else { return }
        lock.withLock { fence = nil }
        await client.release(held)
    }
}
