package import Bus
import Messages

/// One gap in the fleet's graph (R3: no dark producers).
public struct TopologyProblem: Sendable, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        case noProducer = "no producer"
        case noStream = "no stream"
        case schemaMismatch = "schema mismatch"
        case bucketNotWritten = "bucket not written"
    }

    public let kind: Kind
    /// The subject, message type or bucket concerned.
    public let subject: String
    public let detail: String

    public var description: String { "\(kind.rawValue): \(subject): \(detail)" }
}

/// Checks the graph the live hosts declare in `qt_hosts` (their plugins' manifests).
public enum TopologyCheck {
    /// Buckets written by the host itself or by operators, not by plugins.
    static let bucketsWrittenOutsidePlugins: Set<String> = ["qt_control", "qt_hosts", "qt_leases"]
    /// Subjects every host publishes on itself (dead letters; redelivery, timer and topology alerts),
    /// so a consumer of them (alert-relay) has a producer wherever a host runs.
    static let subjectsPublishedByHosts: [SubjectPattern] = [SubjectPattern("qt.alert.*"), SubjectPattern("qt.dlq.*")]

    public static func problems(in hosts: [HostInfo]) -> [TopologyProblem] {
        let plugins = hosts.flatMap { host in host.plugins.map { (host: host.hostID, plugin: $0) } }
        let liveOutputs = plugins.filter { !$0.plugin.shadow }.flatMap { entry in entry.plugin.outputs.map { (entry, $0) } }
        var problems: [TopologyProblem] = []

        for entry in plugins {
            for input in entry.plugin.inputs {
                let pattern = SubjectPattern(input.subject)
                let producers = liveOutputs.filter { pattern.overlaps(SubjectPattern($0.1.subject)) }
                if producers.isEmpty, !subjectsPublishedByHosts.contains(where: pattern.overlaps) {
                    problems.append(TopologyProblem(kind: .noProducer, subject: input.subject,
                        detail: "consumed by \(entry.plugin.name)@\(entry.host) (input \(input.name)); no live plugin produces it"))
                }
            }
            for output in entry.plugin.outputs {
                let subject = entry.plugin.shadow ? Subjects.shadow(output.subject) : output.subject
                if Topology.route(forFilter: subject) == nil {
                    problems.append(TopologyProblem(kind: .noStream, subject: subject,
                        detail: "produced by \(entry.plugin.name)@\(entry.host); no stream owns it"))
                }
            }
        }

        let writers = Set(plugins.filter { !$0.plugin.shadow }.flatMap(\.plugin.kvWrites)).union(bucketsWrittenOutsidePlugins)
        for entry in plugins {
            for bucket in entry.plugin.kvReads where !writers.contains(bucket) {
                problems.append(TopologyProblem(kind: .bucketNotWritten, subject: bucket,
                    detail: "read by \(entry.plugin.name)@\(entry.host); no live plugin writes it"))
            }
        }

        var fingerprints: [String: [String: [String]]] = [:]
        for host in hosts {
            for (type, fingerprint) in host.typeFingerprints { fingerprints[type, default: [:]][fingerprint, default: []].append(host.hostID) }
        }
        for (type, byFingerprint) in fingerprints.sorted(by: { $0.key < $1.key }) where byFingerprint.count > 1 {
            let groups = byFingerprint.sorted { $0.key < $1.key }
                .map { "\($0.key.prefix(12)) on \($0.value.sorted().joined(separator: ", "))" }
            problems.append(TopologyProblem(kind: .schemaMismatch, subject: type, detail: groups.joined(separator: " vs ")))
        }
        return problems
    }

    /// The graph as text: hosts and plugins, then who produces and consumes each subject.
    public static func render(_ hosts: [HostInfo]) -> String {
        var lines: [String] = []
        for host in hosts.sorted(by: { $0.hostID < $1.hostID }) {
            lines.append("host \(host.hostID) (schema \(host.schemaFingerprint.prefix(12)))")
            for plugin in host.plugins {
                lines.append("  plugin \(plugin.name) \(plugin.version)\(plugin.shadow ? " [shadow]" : "")")
                for input in plugin.inputs { lines.append("    in  \(input.subject)  \(input.type)  (\(plugin.name)__\(input.name))") }
                for output in plugin.outputs { lines.append("    out \(output.subject)  \(output.type)") }
                if !plugin.kvReads.isEmpty { lines.append("    kv read  \(plugin.kvReads.joined(separator: ", "))") }
                if !plugin.kvWrites.isEmpty { lines.append("    kv write \(plugin.kvWrites.joined(separator: ", "))") }
                for timer in plugin.timers {
                    lines.append("    timer \(timer.name) every \(timer.intervalMs) ms\(timer.singleton ? " (singleton)" : "")")
                }
            }
        }
        var producers: [String: [String]] = [:]
        var consumers: [String: [String]] = [:]
        for host in hosts {
            for plugin in host.plugins {
                for output in plugin.outputs { producers[output.subject, default: []].append("\(plugin.name)@\(host.hostID)") }
                for input in plugin.inputs { consumers[input.subject, default: []].append("\(plugin.name)@\(host.hostID)") }
            }
        }
        lines.append("subjects")
        for subject in Set(producers.keys).union(consumers.keys).sorted() {
            lines.append("  \(subject): \(producers[subject]?.sorted().joined(separator: ", ") ?? "-") -> \(consumers[subject]?.sorted().joined(separator: ", ") ?? "-")")
        }
        return lines.joined(separator: "\n")
    }
}

/// The live fleet: every `HostInfo` in `qt_hosts` (dead hosts age out with the bucket's TTL).
public enum FleetReader {
    package static func read(_ bus: BusConnection) async throws -> [HostInfo] {
        let bucket = try await bus.keyValue("qt_hosts")
        var hosts: [HostInfo] = []
        for key in try await bucket.keys() {
            if let entry = try await bucket.get(HostInfo.self, key) { hosts.append(entry.value) }
        }
        return hosts
    }
}
