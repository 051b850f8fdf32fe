package import Bus
import Foundation
import Logging
import Messages
import Synchronization

/// What a plugin's context reaches beyond the plugin: its buckets, publishing a timer's outputs
/// at once, and the fleet's state for a watchdog. A host serves it from NATS; the in-memory host
/// from memory.
package protocol PluginBackend: Sendable {
    func store(_ bucket: String) async throws -> any KeyValueStore
    /// Publishes and waits for every PubAck; returns each emission's stream sequence (a KV
    /// write's: the key's new revision), in order.
    func publishNow(_ emissions: [Emission]) async throws -> [UInt64]
    func observeFleet() async throws -> FleetObservation
}

/// A message a plugin emitted: checked against its output and the topology, `Meta` filled and
/// serialized, waiting for the host to publish it.
public struct Emission: Sendable {
    package let outgoing: OutgoingMessage

    public var subject: String { outgoing.subject }
    public var id: String { outgoing.id }
    public var typeName: String { outgoing.typeName }
    /// Set for a KV write that goes out with the outputs (`HandlerContext.updateWithOutputs`).
    package var keyValueWrite: KeyValueWrite? { outgoing.keyValueWrite }

    /// A KV write's value bytes (empty for a delete).
    package var payload: [UInt8] { outgoing.payload }

    /// The message as it will be published, decoded from its bytes.
    public func message() throws -> any BusMessage {
        guard let route = Topology.route(for: subject) else { throw PluginError.contract("no route for \(subject)") }
        return try route.messageType.init(serializedBytes: outgoing.payload)
    }
}

/// Everything a handler's context needs of the plugin it runs for, whichever host runs it.
package final class PluginScope: Sendable {
    package let manifest: PluginManifest
    package let settings: PluginSettings
    package let hostID: String
    /// `plugin@host`, the Qt-Producer of everything this plugin emits.
    package let producer: String
    /// The name of its durables and leases: the plugin, or `<plugin>-shadow` for a shadow instance.
    package let instance: String
    package let metrics: PluginMetrics
    let journal: HandlingJournal?
    package let backend: any PluginBackend
    package let clock: any PluginClock
    /// Which symbols this host owns now.
    package let ownership: Ownership
    /// Labelled with the host, and with the plugin as metadata.
    package let logger: Logger

    package convenience init(manifest: PluginManifest, settings: PluginSettings, hostID: String, metrics: PluginMetrics,
                             backend: any PluginBackend, clock: any PluginClock, ownership: Ownership = Ownership()) {
        self.init(manifest: manifest, settings: settings, hostID: hostID, metrics: metrics, journal: nil, backend: backend,
                  clock: clock, ownership: ownership)
    }

    init(manifest: PluginManifest, settings: PluginSettings, hostID: String, metrics: PluginMetrics,
         journal: HandlingJournal?, backend: any PluginBackend, clock: any PluginClock, ownership: Ownership) {
        self.manifest = manifest
        self.settings = settings
        self.hostID = hostID
        self.producer = "\(manifest.name)@\(hostID)"
        self.instance = DurablePlan.instanceName(plugin: manifest.name, shadow: settings.shadow)
        self.metrics = metrics
        self.journal = journal
        self.backend = backend
        self.clock = clock
        self.ownership = ownership
        self.logger = HostLog.logger(host: hostID, plugin: manifest.name)
    }
}

/// Which symbols a host owns now for one plugin: set once a keyed plugin's partitions are
/// registered; nil (every symbol) for a plugin without keyed inputs.
package final class Ownership: Sendable {
    /// The check inside a struct, not as the Mutex's value: a function value passed `inout` to
    /// `withLock` is reabstracted on the way in and written back wrapped on the way out, so every
    /// read of a `Mutex<(String) -> Bool>` wrapped the stored closure in two more thunks. Each
    /// ownership check grew the chain the next one walked (profiled at 100 intents/s: 7 % of the
    /// CPU in those thunks, and a long-running host would have overflowed its stack).
    private struct Check: Sendable {
        let owns: @Sendable (String) -> Bool
    }

    private let check = Mutex<Check?>(nil)

    package init() {}

    package var current: (@Sendable (String) -> Bool)? {
        get { check.withLock { $0?.owns } }
        set { check.withLock { $0 = newValue.map(Check.init) } }
    }
}

/// The plugin backend on a live NATS connection; buckets are opened once and kept.
final class NatsPluginBackend: PluginBackend {
    let bus: BusConnection
    /// Stream and consumer information for `observeFleet`: the host's connection, since it is
    /// the host's view and every host identity may read it (DESIGN.md §10).
    let observer: BusConnection
    /// The plugin's round trips (`qt_bus_operations_total`).
    let operations: BusOperationCounter?
    private let stores = Mutex<[String: NatsKeyValueStore]>([:])

    init(bus: BusConnection, observer: BusConnection, operations: BusOperationCounter? = nil) {
        self.bus = bus
        self.observer = observer
        self.operations = operations
    }

    func store(_ bucket: String) async throws -> any KeyValueStore { try await natsStore(bucket) }

    func natsStore(_ bucket: String) async throws -> NatsKeyValueStore {
        if let cached = stores.withLock({ $0[bucket] }) { return cached }
        let opened = NatsKeyValueStore(bucket: try await bus.keyValue(bucket, countingIn: operations))
        stores.withLock { $0[bucket] = opened }
        return opened
    }

    func publishNow(_ emissions: [Emission]) async throws -> [UInt64] {
        try await bus.publishBatch(emissions.map(\.outgoing), countingIn: operations).map(\.sequence)
    }

    func observeFleet() async throws -> FleetObservation { try await FleetObservation.read(observer) }
}
