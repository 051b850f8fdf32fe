import Bus
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
    private let lock = NSLock()
    private var buckets: [String: KeyValueBucket] = [:]

    init(manifest: PluginManifest, settings: PluginSettings, plugin: any Plugin, hostID: String, bus: BusConnection,
         metrics: PluginMetrics) {
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
