package import Bus
import Foundation
import Messages

/// One plugin as the host runs it: the instance, its manifest and settings, the connection its
/// inputs and timers use, and the scope its handlers' contexts see.
final class PluginBinding: Sendable {
    let plugin: any Plugin
    let bus: BusConnection
    let scope: PluginScope
    var manifest: PluginManifest { scope.manifest }
    var settings: PluginSettings { scope.settings }
    var hostID: String { scope.hostID }
    var metrics: PluginMetrics { scope.metrics }
    var producer: String { scope.producer }
    var instance: String { scope.instance }
    var journal: HandlingJournal? { scope.journal }
    /// Which symbols this host's instance owns now; nil for a plugin without keyed inputs (all).
    var ownership: (@Sendable (String) -> Bool)? {
        get { scope.ownership.current }
        set { scope.ownership.current = newValue }
    }

    init(manifest: PluginManifest, settings: PluginSettings, plugin: any Plugin, hostID: String, bus: BusConnection,
         hostBus: BusConnection, metrics: PluginMetrics, journal: HandlingJournal?, clock: any PluginClock) {
        self.plugin = plugin
        self.bus = bus
        self.scope = PluginScope(manifest: manifest, settings: settings, hostID: hostID, metrics: metrics, journal: journal,
                                 backend: NatsPluginBackend(bus: bus, observer: hostBus, operations: metrics.busOperations), clock: clock, ownership: Ownership())
    }
}
