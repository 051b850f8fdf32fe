import Host

/// Every built-in plugin of this module; `qt` (the composition root) registers them, giving the
/// plugins that reach the exchange the host's clients.
public enum PluginCatalog {
    public static func registrations(exchanges: ExchangeClients, crashHook: @escaping CrashHook = { _ in }) -> [PluginRegistration] {
        [
            MarketFeedPlugin.registration(exchanges: exchanges),
            MarketStatePlugin.registration,
            UniversePlugin.registration(exchanges: exchanges),
            AIAgentPlugin.registration,
            IntentBridgePlugin.registration,
            GovernorPlugin.registration(exchanges: exchanges),
            PositionBrainPlugin.registration(exchanges: exchanges),
            HarvestProposerPlugin.registration,
            HeatGatePlugin.registration,
            ApplyLayerPlugin.registration(exchanges: exchanges),
            PortfolioGatePlugin.registration,
            ExecutorPlugin.registration(exchanges: exchanges, crashHook: crashHook),
            SentinelPlugin.registration,
            AlertRelayPlugin.registration,
        ]
    }

    public static func registry(exchanges: ExchangeClients, crashHook: @escaping CrashHook = { _ in }) -> PluginRegistry {
        PluginRegistry(registrations(exchanges: exchanges, crashHook: crashHook))
    }

    /// The catalog with clients built from each node config's `exchange:` section (fresh ones per
    /// call: one registry per host process).
    public static var registry: PluginRegistry { registry(exchanges: ExchangeClients()) }
}
