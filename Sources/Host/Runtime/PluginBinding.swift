package import Bus
import Foundation
import Messages

/// One plugin as the host runs it: the instance, its manifest and settings, and the KV handles
/// it was allowed.
final class PluginBinding: @unchecked Sendable {
    let manifest: PluginManifest
    let settings: PluginSettings
    let plugin: any Plugin
    let hostID: String
    let bus: BusConnection
    let metrics: PluginMetrics
    /// `plugin@host`, the Qt-Producer of everything this plugin emits.
    let producer: String
    /// The name of its durables and leases: the plugin, or `<plugin>-shadow` for a shadow instance.
    let instance: String
    let journal: HandlingJournal?
    /// Which symbols this host's instance owns now; nil for a plugin without keyed inputs (all).
    var ownership: (@Sendable (String) -> Bool)? {
        get { lock.withLock { ownershipCheck } }
        set { lock.withLock { ownershipCheck = newValue } }
    }
    private var ownershipCheck: (@Sendable (String) -> Bool)?
    private let lock = NSLock()
    private var buckets: [String: KeyValueBucket] = [:]

    init(manifest: PluginManifest, settings: PluginSettings, plugin: any Plugin, hostID: String, bus: BusConnection,
         metrics: PluginMetrics, journal: HandlingJournal? = nil) {
        self.instance = DurablePlan.instanceName(plugin: manifest.name, shadow: settings.shadow)
        self.journal = journal
        self.manifest = manifest
        self.settings = settings
        self.plugin = plugin
        self.hostID = hostID
        self.bus = bus
        self.metrics = metrics
        self.producer = "\(manifest.name)@\(hostID)"
    }


    func bucket(_ name: String) async throws -> KeyValueBucket {
        if let cached = lock.withLock({ buckets[name] }) { return cached }
        let opened = try await bus.keyValue(name)
        lock.withLock { buckets[name] = opened }
        return opened
    }
}
