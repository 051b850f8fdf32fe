import Exchange
import ExchangeSimulator

extension SimulatorConfig {
    /// A market that serves the same bars at the same simulated times for the same seed and start
    /// (for comparing runs), with 400 bars of history and a weight budget as compressed as its time.
    static func replayable(credentials: Credentials, symbols: Int, seed: UInt64, barMs: Int, startMs: Int64,
                           weightLimitPerMinute: Int = 1_000_000) -> SimulatorConfig {
        var config = SimulatorConfig(credentials: credentials)
        config.symbols = symbols
        config.seed = seed
        config.barMs = barMs
        config.historyBars = 400
        config.simulatedStartMs = startMs
        config.weightLimitPerMinute = weightLimitPerMinute
        return config
    }
}
