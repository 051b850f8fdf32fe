package import Bus
import Foundation
import Messages

/// Who owns which partition of which plugin instance, as any client can read it: the live hosts
/// (`qt_hosts`), the partition leases (`qt_leases/<instance>.p<k>`), and each partition durable's
/// backlog. `qt fleet` prints it; the sentinel alerts on it.
public struct PartitionView: Sendable {
    public struct Backlog: Sendable, Equatable {
        public let durable: String
        public let partition: Int
        /// Messages not yet delivered plus delivered and not yet acked.
        public let lag: UInt64
    }

    public let partitions: Int
    public let hosts: [HostInfo]
    /// Keyed plugin instances some live host runs (a shadow instance as `<plugin>-shadow`).
    public let instances: [String]
    /// instance → partition → holder.
    public let owners: [String: [Int: String]]
    public let backlogs: [String: [Backlog]]

    /// Partitions of running instances that no host holds now.
    public var unowned: [(instance: String, partition: Int)] {
        instances.flatMap { instance in
            (0..<partitions).filter { owners[instance]?[$0] == nil }.map { (instance, $0) }
        }
    }

    package static func read(_ bus: BusConnection) async throws -> PartitionView {
        let hosts = try await FleetReader.read(bus).sorted { $0.hostID < $1.hostID }
        let partitions = Int(try await bus.readLayout()?.layout.partitions ?? 0)
        var instances = Set<String>()
        var keyedInputs: [String: Set<String>] = [:]
        for host in hosts {
            for plugin in host.plugins {
                let keyed = plugin.inputs.filter { Topology.route(forFilter: $0.subject)?.keyed == true }
                guard !keyed.isEmpty else { continue }
                let instance = DurablePlan.instanceName(plugin: plugin.name, shadow: plugin.shadow)
                instances.insert(instance)
                keyedInputs[instance, default: []].formUnion(keyed.map(\.name))
            }
        }
        let leases = try await bus.keyValue("qt_leases")
        var owners: [String: [Int: String]] = [:]
        for key in try await leases.keys() {
            guard let dot = key.lastIndex(of: "."), key[key.index(after: dot)...].hasPrefix("p"),
                  let partition = Int(key[key.index(key.index(after: dot), offsetBy: 1)...]),
                  let lease = try await leases.get(Lease.self, key)?.value, !lease.released, !lease.holder.isEmpty else { continue }
            owners[String(key[..<dot]), default: [:]][partition] = lease.holder
        }
        var backlogs: [String: [Backlog]] = [:]
        let wanted = Set(instances.flatMap { instance in keyedInputs[instance, default: []].map { "\(instance)__\($0)__p" } })
        for stream in Topology.streams where stream.routes.contains(where: \.keyed) {
            guard let info = try? await bus.streamInfo(stream.name) else { continue }
            for consumer in info.consumers {
                guard let marker = consumer.name.range(of: "__p", options: .backwards),
                      wanted.contains(String(consumer.name[..<marker.upperBound])),
                      let partition = Int(consumer.name[marker.upperBound...]) else { continue }
                let instance = String(consumer.name[..<consumer.name.range(of: "__")!.lowerBound])
                backlogs[instance, default: []].append(Backlog(durable: consumer.name, partition: partition,
                                                               lag: consumer.numPending + UInt64(max(0, consumer.numAckPending))))
            }
        }
        return PartitionView(partitions: partitions, hosts: hosts, instances: instances.sorted(), owners: owners,
                             backlogs: backlogs.mapValues { $0.sorted { ($0.partition, $0.durable) < ($1.partition, $1.durable) } })
    }
}
