import Foundation
import Synchronization

/// The fencing side of one held lease (DESIGN.md §3.3): the lease's KV revision is the token, and
/// the holder may act only until a local monotonic deadline (renewal sent + TTL − margin). The
/// host checks it before every publish, KV write and exchange call made for the lease's work.
public final class LeaseFence: Sendable {
    public let name: String
    /// The partition the lease covers; nil for a singleton lease.
    public let partition: Int?

    private struct Hold {
        var deadlineMs: Int64
        var revision: UInt64
        var revoked = false
    }

    private let hold: Mutex<Hold>

    init(name: String, partition: Int?, revision: UInt64, deadlineMs: Int64) {
        self.name = name
        self.partition = partition
        self.hold = Mutex(Hold(deadlineMs: deadlineMs, revision: revision))
    }

    /// The KV revision of the lease this host last wrote.
    public var token: UInt64 { hold.withLock { $0.revision } }

    public var isValid: Bool {
        let now = MonotonicClock.nowMs()
        return hold.withLock { !$0.revoked && now < $0.deadlineMs }
    }

    /// Throws `LeaseLost` once the deadline passed or the lease was given up.
    public func check() throws {
        guard isValid else { throw LeaseLost(name: name) }
    }

    func renewed(revision: UInt64, deadlineMs: Int64) {
        hold.withLock { hold in
            hold.revision = revision
            hold.deadlineMs = max(hold.deadlineMs, deadlineMs)
        }
    }

    func revoke() {
        hold.withLock { $0.revoked = true }
    }

    var remainingMs: Int64 { hold.withLock { $0.deadlineMs } - MonotonicClock.nowMs() }
}

/// This host no longer holds the lease the work belongs to: stop, publish nothing, write nothing,
/// ack nothing. The new holder handles the message again.
public struct LeaseLost: Error, CustomStringConvertible {
    public let name: String
    public var description: String { "lease \(name) is no longer held by this host" }
}
