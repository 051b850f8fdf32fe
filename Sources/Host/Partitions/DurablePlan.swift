package import Bus
import Foundation
import Messages

/// The durables a deployment needs (DESIGN.md §3.3): for each plugin instance, one per keyed input
/// and partition (`<instance>__<input>__p<k>`) and one per other input (`<instance>__<input>`).
/// Provisioning creates exactly these; a host checks they exist with these settings and binds to
/// them, never creating one itself.
public enum DurablePlan {
    /// A shadow instance has its own durables and lease names, so it never takes the live
    /// instance's messages or partitions.
    public static func instanceName(plugin: String, shadow: Bool) -> String { shadow ? "\(plugin)-shadow" : plugin }

    public static func isKeyed(_ input: InputSpec) -> Bool {
        Topology.route(forFilter: input.subject)?.keyed == true
    }

    /// One input's durable for `partition` (nil for an input that is not keyed).
    package static func consumer(_ input: InputSpec, instance: String, settings: PluginSettings, partition: Int?,
                                 manifest: PluginManifest? = nil) throws -> ConsumerSpec {
        var spec = try ConsumerSpec(plugin: instance, input: input.name, filterSubject: input.subject, partition: partition)
        spec.ackWaitMs = settings.ackWaitMs ?? input.ackWaitMs
        spec.fetchBatch = input.fetchBatch
        spec.replayWithinMs = replayWithinMs(input.replayLimit, settings: settings, manifest: manifest)
        return spec
    }

    package static func consumers(_ manifest: PluginManifest, settings: PluginSettings, partitioning: Partitioning) throws -> [ConsumerSpec] {
        let instance = instanceName(plugin: manifest.name, shadow: settings.shadow)
        return try manifest.inputs.flatMap { input in
            try (isKeyed(input) ? partitioning.all.map { Optional($0) } : [nil]).map {
                try consumer(input, instance: instance, settings: settings, partition: $0, manifest: manifest)
            }
        }
    }

    /// The replay limit in milliseconds: the setting as configured, else the manifest's default.
    static func replayWithinMs(_ limit: ReplayLimit?, settings: PluginSettings, manifest: PluginManifest?) -> Int64? {
        switch limit {
        case nil: return nil
        case .seconds(let seconds): return Int64(seconds) * 1000
        case .setting(let key):
            switch settings.values[key] ?? manifest?.config.first(where: { $0.name == key })?.defaultValue {
            case .int(let seconds)?: return Int64(seconds) * 1000
            case .double(let seconds)?: return Int64(seconds * 1000)
            default: return nil
            }
        }
    }

    /// Every durable the node configs' plugins read; with no config, every registered plugin with
    /// its manifest's settings. Two configs that want one durable with different settings are an
    /// error naming both files: AckWait is a property of the durable, not of a host.
    package static func consumers(configs: [NodeConfig], registry: PluginRegistry, partitioning: Partitioning) throws -> [ConsumerSpec] {
        var chosen: [String: (spec: ConsumerSpec, file: String)] = [:]
        var order: [String] = []
        let entries: [(file: String, name: String, settings: PluginSettings, registration: PluginRegistration?)] = configs.isEmpty
            ? registry.names.map { ("(manifest defaults)", $0, PluginSettings(values: [:], shadow: false), registry[$0]) }
            : configs.flatMap { config in config.plugins.map { (config.file, $0.name, $0.settings, $0.registration(in: registry)) } }
        for entry in entries {
            guard let registration = entry.registration else {
                throw HostError.startup("\(entry.file): plugin \(entry.name) is not registered")
            }
            for spec in try consumers(registration.manifest, settings: entry.settings, partitioning: partitioning) {
                if let earlier = chosen[spec.durable] {
                    guard earlier.spec.ackWaitMs == spec.ackWaitMs && earlier.spec.maxAckPending == spec.maxAckPending else {
                        throw HostError.startup("\(earlier.file) and \(entry.file) disagree on durable \(spec.durable): "
                                                + "ack_wait \(earlier.spec.ackWaitMs) ms vs \(spec.ackWaitMs) ms; make plugins.\(entry.name).ack_wait_s the same")
                    }
                    continue
                }
                chosen[spec.durable] = (spec, entry.file)
                order.append(spec.durable)
            }
        }
        return order.compactMap { chosen[$0]?.spec }
    }
}

/// The administrator's step (DESIGN.md §3.3) as one call: streams, buckets, the layout and every
/// durable the node configs' plugins read (every registered plugin's, with no config).
public enum DeploymentProvisioning {
    package static func provision(_ bus: BusConnection, replicas: Int, partitions: Int = Partitioning.defaultCount,
                                 configs: [NodeConfig] = [], registry: PluginRegistry, repartition: Bool = false,
                                 provisionedBy: String = "qt streams provision") async throws -> [ProvisionResult] {
        for config in configs where config.replicas != replicas {
            throw HostError.startup("\(config.file) says replicas \(config.replicas), provisioning was asked for \(replicas)")
        }
        let consumers = try DurablePlan.consumers(configs: configs, registry: registry, partitioning: try Partitioning(count: partitions))
        return try await bus.provision(replicas: replicas, partitions: partitions, consumers: consumers, repartition: repartition,
                                       schemaFingerprint: SchemaFingerprint.value, provisionedBy: provisionedBy)
    }
}
