import Host

/// Every built-in plugin of this module; `qt` (the composition root) registers them.
public enum PluginCatalog {
    public static let registrations: [PluginRegistration] = [
        MarketFeedPlugin.registration,
        MarketStatePlugin.registration,
        UniversePlugin.registration,
        AIAgentPlugin.registration,
        IntentBridgePlugin.registration,
        GovernorPlugin.registration,
        PositionBrainPlugin.registration,
        HarvestProposerPlugin.registration,
        HeatGatePlugin.registration,
        ApplyLayerPlugin.registration,
        PortfolioGatePlugin.registration,
        ExecutorPlugin.registration,
        SentinelPlugin.registration,
    ]

    public static var registry: PluginRegistry { PluginRegistry(registrations) }
}
