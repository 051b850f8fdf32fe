package import Bus
import Foundation
import Messages

/// One NATS identity of a deployment and what the server lets it do (DESIGN.md §10, least
/// privilege). Plugins' permissions come from their manifests, so a plugin can publish only what
/// it declares, write only the buckets it declares, and consume only its own durables.
public struct FleetIdentity: Sendable, Equatable {
    public enum Role: String, Sendable { case plugin, host, administrator, `operator`, reader }

    public let name: String
    public let role: Role
    public let publishAllow: [String]
    public let publishDeny: [String]
    public let subscribeAllow: [String]

    /// Replies to this identity's requests arrive under it, and only it may subscribe there.
    public var inboxPrefix: String { Self.inboxPrefix(name) }
    public static func inboxPrefix(_ identity: String) -> String { ConnectionOptions.inboxPrefix(identity) }
    /// The seed file `qt auth generate` writes for it, and a host reads.
    public var seedFileName: String { Self.seedFileName(name) }
    public static func seedFileName(_ identity: String) -> String { ConnectionOptions.seedFileName(identity) }
    public static func hostIdentity(_ hostID: String) -> String { "host-\(hostID)" }
}

/// The subjects of the JetStream and KV APIs an identity needs, named once.
enum JetStreamSubjects {
    static func kvRead(_ bucket: String) -> [String] {
        let stream = "KV_\(bucket)"
        return ["$JS.API.STREAM.INFO.\(stream)", "$JS.API.DIRECT.GET.\(stream)", "$JS.API.DIRECT.GET.\(stream).>",
                "$JS.API.STREAM.MSG.GET.\(stream)"]
    }

    /// Watches and key listings run ordered consumers: ephemeral, on the bucket's own stream only
    /// (the legacy create subject, which the server refuses for a durable name). libnats first
    /// looks the stream up by subject (`STREAM.NAMES`, a read of stream names).
    static func kvWatch(_ bucket: String) -> [String] {
        let stream = "KV_\(bucket)"
        return ["$JS.API.STREAM.NAMES", "$JS.API.CONSUMER.CREATE.\(stream)", "$JS.API.CONSUMER.DELETE.\(stream).>", "$JS.FC.\(stream).>"]
    }

    static func kvWrite(_ bucket: String, keys: String = ">") -> [String] { ["$KV.\(bucket).\(keys)"] }

    /// Fetching from, acking and asking about one existing durable: never creating or changing it.
    static func durable(_ spec: ConsumerSpec) -> [String] {
        ["$JS.API.CONSUMER.MSG.NEXT.\(spec.stream).\(spec.durable)", "$JS.API.CONSUMER.INFO.\(spec.stream).\(spec.durable)",
         "$JS.ACK.\(spec.stream).\(spec.durable).>"]
    }

    static let inspection = ["$JS.API.INFO", "$JS.API.STREAM.INFO.>", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST",
                             "$JS.API.CONSUMER.INFO.>", "$JS.API.CONSUMER.NAMES.>", "$JS.API.CONSUMER.LIST.>"]
}

public enum FleetIdentities {
    /// Buckets every plugin reads whatever it declares: the cluster layout (its partition count).
    static let readByEveryPlugin = ["qt_cluster"]
    /// Alerts the host raises on a plugin's connection (a dead letter, a redelivery storm).
    static let hostAlertsOnPluginConnections = [Subjects.alert(.deadLetter), Subjects.alert(.redelivery)]

    /// Every identity the node configs need: one per plugin instance they run, one per host, and
    /// the administrator, the operator and the read-only identity.
    package static func plan(configs: [NodeConfig], registry: PluginRegistry, partitioning: Partitioning) throws -> [FleetIdentity] {
        var plugins: [String: FleetIdentity] = [:]
        for config in configs {
            for entry in config.plugins {
                guard let registration = entry.registration(in: registry) else {
                    throw HostError.startup("\(config.file): plugin \(entry.name) is not registered")
                }
                let identity = try plugin(registration.manifest, settings: entry.settings, partitioning: partitioning)
                if let earlier = plugins[identity.name], earlier != identity {
                    throw HostError.startup("\(config.file): plugin \(identity.name) needs other permissions than in another node config "
                                            + "(its settings change its durables); make plugins.\(entry.name) the same everywhere")
                }
                plugins[identity.name] = identity
            }
        }
        let durables = try DurablePlan.consumers(configs: configs, registry: registry, partitioning: partitioning)
        let hosts = Set(configs.map(\.hostID)).sorted().map(host)
        return plugins.keys.sorted().compactMap { plugins[$0] } + hosts
            + [administrator, operatorIdentity(protecting: durables), reader(protecting: durables)]
    }

    package static func plugin(_ manifest: PluginManifest, settings: PluginSettings, partitioning: Partitioning) throws -> FleetIdentity {
        let instance = DurablePlan.instanceName(plugin: manifest.name, shadow: settings.shadow)
        let durables = try DurablePlan.consumers(manifest, settings: settings, partitioning: partitioning)
        // Keyed subjects travel with their partition token (`qt.signal.intent.<SYM>.p<k>`).
        var publish: [String] = manifest.outputs.flatMap { output -> [String] in
            let wire = Partitioning.wireFilter(output.subject)
            return settings.shadow ? [Subjects.shadow(output.subject), Subjects.shadow(wire)] : [wire]
        }
        publish += hostAlertsOnPluginConnections
        for spec in durables {
            publish.append(Subjects.deadLetter(consumer: spec.durable))
            publish += JetStreamSubjects.durable(spec)
        }
        let read = Set(manifest.kvReads + manifest.kvWrites + readByEveryPlugin).sorted()
        for bucket in read { publish += JetStreamSubjects.kvRead(bucket) + JetStreamSubjects.kvWatch(bucket) }
        // A shadow instance writes no KV (its handler context skips every write).
        if !settings.shadow {
            for bucket in Set(manifest.kvWrites).sorted() {
                // qt_state is shared: each plugin owns the keys under its name (`PluginState` keys).
                publish += JetStreamSubjects.kvWrite(bucket, keys: bucket == "qt_state" ? "\(manifest.name).>" : ">")
            }
        }
        return FleetIdentity(name: instance, role: .plugin, publishAllow: unique(publish), publishDeny: [],
                             subscribeAllow: [FleetIdentity.inboxPrefix(instance) + ".>"])
    }

    /// A host: its own `qt_hosts` key, the leases every host competes for, the provisioning check
    /// (read-only JetStream information) and the topology and timer alerts it raises itself.
    package static func host(_ hostID: String) -> FleetIdentity {
        let name = FleetIdentity.hostIdentity(hostID)
        var publish = JetStreamSubjects.inspection
        for bucket in ["qt_hosts", "qt_leases", "qt_cluster"] { publish += JetStreamSubjects.kvRead(bucket) + JetStreamSubjects.kvWatch(bucket) }
        publish += JetStreamSubjects.kvWrite("qt_hosts", keys: hostID) + JetStreamSubjects.kvWrite("qt_leases")
        publish += [Subjects.alert(.topology), Subjects.alert(.timer)]
        return FleetIdentity(name: name, role: .host, publishAllow: unique(publish), publishDeny: [],
                             subscribeAllow: [FleetIdentity.inboxPrefix(name) + ".>"])
    }

    /// Provisioning and repair: everything (`qt streams provision`, `qt cluster`, purges).
    static let administrator = FleetIdentity(name: "admin", role: .administrator, publishAllow: [">"], publishDeny: [],
                                             subscribeAllow: [">"])

    /// `qt control` and `qt ledger adopt`: the trading state and the ledger, plus what the read-only
    /// identity may do.
    static func operatorIdentity(protecting durables: [ConsumerSpec]) -> FleetIdentity {
        let writes = JetStreamSubjects.kvWrite("qt_control") + JetStreamSubjects.kvWrite("qt_ledger")
        return FleetIdentity(name: "operator", role: .operator, publishAllow: readerPublish + writes, publishDeny: durableChanges(durables),
                             subscribeAllow: [FleetIdentity.inboxPrefix("operator") + ".>", "qt.>"])
    }

    /// Reads every stream and bucket (`qt tail`, `qt trace`, `qt kv`, `qt streams`, `qt fleet`):
    /// it may create short-lived consumers of its own to read a stream, never one of the pipeline's
    /// durables, and it publishes nothing into a stream or bucket.
    static func reader(protecting durables: [ConsumerSpec]) -> FleetIdentity {
        FleetIdentity(name: "reader", role: .reader, publishAllow: readerPublish, publishDeny: durableChanges(durables),
                             subscribeAllow: [FleetIdentity.inboxPrefix("reader") + ".>", "qt.>"])
    }

    /// Fetching from (which would hold its messages for an AckWait) or deleting one of the
    /// pipeline's durables.
    static func durableChanges(_ durables: [ConsumerSpec]) -> [String] {
        durables.flatMap { ["$JS.API.CONSUMER.MSG.NEXT.\($0.stream).\($0.durable)", "$JS.API.CONSUMER.DELETE.\($0.stream).\($0.durable)"] }
    }

    /// Reading: information, direct gets, and ephemeral consumers of its own (`$JS.API.CONSUMER.CREATE.<stream>`
    /// creates only ephemerals; named and durable creates are other subjects, not allowed).
    static let readerPublish = JetStreamSubjects.inspection + ["$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>",
                                                               "$JS.API.CONSUMER.CREATE.*", "$JS.API.CONSUMER.MSG.NEXT.>",
                                                               "$JS.API.CONSUMER.DELETE.>", "$JS.FC.>"]

    private static func unique(_ subjects: [String]) -> [String] {
        var seen = Set<String>()
        return subjects.filter { seen.insert($0).inserted }
    }
}
