package import Bus
import Foundation
import Messages

/// What the host does when this host gains or gives up a partition of one plugin instance.
struct PartitionWork: Sendable {
    /// Start consuming the partition's durables under `fence`. `afterCrash`: the previous holder
    /// did not hand over cleanly, so its unacknowledged messages may not be redeliverable yet.
    let start: @Sendable (_ partition: Int, _ fence: LeaseFence, _ afterCrash: Bool) async -> Void
    /// A clean hand-off: stop fetching, finish and ack what is in hand, NAK the rest.
    let stop: @Sendable (_ partition: Int) async -> Void
    /// The lease is gone (deadline passed or another host took it): drop everything, ack nothing.
    let abandon: @Sendable (_ partition: Int) async -> Void
}

/// Holds `qt_leases/<instance>.p<k>` for the partitions of every keyed plugin instance on this host
/// and balances them with the other hosts running the same instance (DESIGN.md §3.3).
///
/// Each step, per instance: announce this host (`<instance>.member.<host>`, expiring with the
/// bucket's TTL), renew what is held, then compare with the fair share ⌈P / live members⌉: give up
/// the excess by clean hand-off, take free partitions (missing keys: a crashed or never-started
/// holder; released keys: a clean hand-off) up to the share. A dead host's keys expire after the
/// TTL, so its partitions are taken within the TTL plus one step.
final class PartitionKeeper: @unchecked Sendable {
    let partitioning: Partitioning
    let stepIntervalMs: Int64
    private let client: LeaseClient
    private let hostID: String
    private let lock = NSLock()
    private var instances: [(name: String, work: PartitionWork)] = []
    private var held: [String: [Int: LeaseFence]] = [:]

    init(partitioning: Partitioning, client: LeaseClient, hostID: String, stepIntervalMs: Int64) {
        self.partitioning = partitioning
        self.client = client
        self.hostID = hostID
        self.stepIntervalMs = stepIntervalMs
    }

    static let nakSettleMs: UInt64 = 300

    static func leaseName(instance: String, partition: Int) -> String { "\(instance).\(Partitioning.token(partition))" }
    static func memberPrefix(instance: String) -> String { "\(instance).member." }

    func register(instance: String, work: PartitionWork) {
        lock.withLock { instances.append((instance, work)) }
    }

    /// The partitions of `instance` this host holds now (fences still valid).
    func owned(_ instance: String) -> Set<Int> {
        lock.withLock { Set((held[instance] ?? [:]).filter { $0.value.isValid }.keys) }
    }

    func fence(_ instance: String, partition: Int) -> LeaseFence? {
        lock.withLock { held[instance]?[partition] }
    }

    func step() async {
        let registered = lock.withLock { instances }
        guard !registered.isEmpty else { return }
        for instance in registered {
            try? await client.announce(Self.memberPrefix(instance: instance.name) + hostID)
            await renew(instance)
        }
        guard let keys = try? await client.bucket.keys() else { return }
        let present = Set(keys)
        for instance in registered {
            await balance(instance, keys: present)
        }
    }

    private func renew(_ instance: (name: String, work: PartitionWork)) async {
        for (partition, fence) in lock.withLock({ held[instance.name] ?? [:] }) {
            if await client.renew(fence) == .lost {
                lock.withLock { _ = held[instance.name]?.removeValue(forKey: partition) }
                await instance.work.abandon(partition)
            }
        }
    }

    private func balance(_ instance: (name: String, work: PartitionWork), keys: Set<String>) async {
        let prefix = Self.memberPrefix(instance: instance.name)
        let members = Set(keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }).union([hostID])
        let share = (partitioning.count + members.count - 1) / members.count
        let mine = lock.withLock { held[instance.name] ?? [:] }
        if mine.count > share {
            await handOff(instance, partitions: Array(mine.keys.sorted().reversed().prefix(mine.count - share)))
            return
        }
        guard mine.count < share else { return }
        var wanted = share - mine.count
        for partition in candidateOrder() where wanted > 0 && mine[partition] == nil {
            let name = Self.leaseName(instance: instance.name, partition: partition)
            let fence: LeaseFence?
            let afterCrash: Bool
            if !keys.contains(name) {
                fence = try? await client.acquire(name, partition: partition)
                afterCrash = true
            } else if let current = try? await client.bucket.get(Lease.self, name), current.value.released {
                fence = try? await client.acquire(name, partition: partition, overReleased: current.revision)
                afterCrash = false
            } else {
                continue
            }
            guard let fence else { continue }
            lock.withLock { held[instance.name, default: [:]][partition] = fence }
            wanted -= 1
            await instance.work.start(partition, fence, afterCrash)
        }
    }

    /// Hosts start their search at different partitions, so they rarely race for the same key.
    private func candidateOrder() -> [Int] {
        let offset = Int(Partitioning.fnv1a32(hostID) % UInt32(partitioning.count))
        return (0..<partitioning.count).map { ($0 + offset) % partitioning.count }
    }

    /// Partitions handed off at once: each stops fetching (a fetch in flight takes up to its
    /// timeout to return), finishes and acks what it holds, NAKs the rest, then its lease is released.
    private func handOff(_ instance: (name: String, work: PartitionWork), partitions: [Int]) async {
        await withTaskGroup(of: Void.self) { group in
            for partition in partitions {
                guard let fence = lock.withLock({ held[instance.name]?.removeValue(forKey: partition) }) else { continue }
                group.addTask { [client] in
                    await instance.work.stop(partition)
                    // The server takes acks and NAKs off a queue of its own, apart from pull requests
                    // and KV writes: the NAKs get a moment to be queued before the new owner may fetch.
                    try? await Task.sleep(nanoseconds: Self.nakSettleMs * 1_000_000)
                    await client.release(fence)
                }
            }
        }
    }

    /// Shutdown: every partition of every instance handed off cleanly, membership withdrawn.
    func releaseAll() async {
        let registered = lock.withLock { instances }
        await withTaskGroup(of: Void.self) { group in
            for instance in registered {
                let partitions = lock.withLock { Array((held[instance.name] ?? [:]).keys) }
                group.addTask { [self] in
                    await handOff(instance, partitions: partitions)
                    await client.withdraw(Self.memberPrefix(instance: instance.name) + hostID)
                }
            }
        }
    }

    /// Partitions held past their deadline (the renewals failed for too long): abandoned.
    func expire() async {
        let registered = lock.withLock { instances }
        for instance in registered {
            let expired = lock.withLock { (held[instance.name] ?? [:]).filter { !$0.value.isValid }.map(\.key) }
            for partition in expired {
                lock.withLock { _ = held[instance.name]?.removeValue(forKey: partition) }
                await instance.work.abandon(partition)
            }
        }
    }
}
