package import Bus
import Foundation
import Messages
import SwiftProtobuf

/// What a host checks at start instead of provisioning (DESIGN.md §3.3): the layout, every stream
/// and bucket with the node's replicas, and every durable its plugins read with the settings its
/// config asks for. A host creates and changes nothing; anything missing or different stops it
/// with the name of what differs and the command that fixes it.
enum ProvisioningCheck {
    static func verify(_ bus: BusConnection, config: NodeConfig, warn: (String) -> Void = { _ in },
                       consumers plan: (Partitioning) throws -> [ConsumerSpec]) async throws -> Partitioning {
        let fix = "run `qt streams provision --replicas \(config.replicas) --node-config \(config.file)` (an administrator's step)"
        guard let (layout, _) = try await bus.readLayout() else {
            throw HostError.startup("not provisioned: \(BusConnection.layoutBucket)/\(BusConnection.layoutKey) is missing on "
                                    + "\(config.nats.servers.joined(separator: ",")); \(fix)")
        }
        let partitioning = try Partitioning(count: Int(layout.partitions))
        let consumers = try plan(partitioning)
        var problems: [String] = []
        if Int(layout.replicas) != config.replicas {
            problems.append("the cluster layout has replicas \(layout.replicas), \(config.file) expects \(config.replicas)")
        }
        if layout.schemaFingerprint != SchemaFingerprint.value {
            problems += schemaBreaks(layout, warn: warn)
        }
        let expected = Topology.streams.map { ($0.name, $0.subjects, "stream \($0.name)") }
            + Topology.buckets.map { ("KV_" + $0.name, ["$KV.\($0.name).>"], "bucket \($0.name)") }
        for (stream, subjects, label) in expected {
            do {
                let info = try await bus.streamInfo(stream)
                if info.replicas != Int64(config.replicas) { problems.append("\(label) has \(info.replicas) replicas, expected \(config.replicas)") }
                if Set(info.subjects) != Set(subjects) { problems.append("\(label) has subjects \(info.subjects), expected \(subjects)") }
            } catch BusError.notFound {
                problems.append("\(label) is missing")
            }
        }
        for spec in consumers {
            do {
                let info = try await bus.consumerInfo(stream: spec.stream, durable: spec.durable)
                if info.filterSubject != spec.wireFilterSubject {
                    problems.append("durable \(spec.stream)/\(spec.durable) filters \(info.filterSubject), expected \(spec.wireFilterSubject)")
                }
                if info.ackWaitMs != spec.ackWaitMs {
                    problems.append("durable \(spec.stream)/\(spec.durable) has AckWait \(info.ackWaitMs) ms, expected \(spec.ackWaitMs) ms")
                }
            } catch BusError.notFound {
                problems.append("durable \(spec.stream)/\(spec.durable) is missing")
            }
        }
        guard problems.isEmpty else {
            let shown = problems.prefix(12).joined(separator: "\n  ")
            let more = problems.count > 12 ? "\n  … and \(problems.count - 12) more" : ""
            throw HostError.startup("the server is not provisioned for this host:\n  \(shown)\(more)\n\(fix)")
        }
        return partitioning
    }

    /// A host of another schema than the cluster's starts when the two differ only by additions
    /// (each is logged), and is refused when a field or enum value means something else on the
    /// two sides, naming the message type and the field.
    static func schemaBreaks(_ layout: ClusterLayout, warn: (String) -> Void) -> [String] {
        let mismatch = "the cluster was provisioned with schema \(layout.schemaFingerprint.prefix(12)), this host has \(SchemaFingerprint.value.prefix(12))"
        guard !layout.schemaDescriptor.isEmpty,
              let fleet = try? Google_Protobuf_FileDescriptorSet(serializedBytes: layout.schemaDescriptor),
              let mine = try? SchemaCompatibility.current else {
            return [mismatch + " and the layout records no schema to compare field by field (provision again with this release)"]
        }
        let differences = SchemaCompatibility.differences(from: fleet, to: mine)
        let breaks = differences.filter(\.breaking)
        guard breaks.isEmpty else { return breaks.map { "\(mismatch): breaking change in \($0)" } }
        for difference in differences { warn("schema differs from the cluster's by a compatible addition: \(difference)") }
        return []
    }
}
