import Host

/// The KV and JetStream round trips each plugin of a host made between two readings, per
/// trade: what `qt bench e2e` reports beside the latencies (issue 20).
struct RoundTripTally {
    let perPlugin: [String: [String: Int]]
    let trades: Int

    /// What `host`'s plugins did since `before` (a `HostMetrics.roundTrips` reading), over `trades`.
    init(_ host: PluginHost, since before: [String: [String: Int]], trades: Int) {
        var spent: [String: [String: Int]] = [:]
        for (plugin, counts) in host.metrics.roundTrips {
            let earlier = before[plugin] ?? [:]
            var difference: [String: Int] = [:]
            for (kind, count) in counts where count > earlier[kind] ?? 0 { difference[kind] = count - (earlier[kind] ?? 0) }
            if !difference.isEmpty { spent[plugin] = difference }
        }
        perPlugin = spent
        self.trades = trades
    }

    /// Round trips per trade over the plugins named (all when nil).
    func perTrade(of plugins: [String]? = nil) -> Double {
        let counted = perPlugin.filter { plugins?.contains($0.key) ?? true }
        return Double(counted.values.flatMap(\.values).reduce(0, +)) / Double(max(1, trades))
    }

    /// "governor 3.0 (kv_read 2.0, publish 1.0), …" for the plugins named, in that order.
    func describe(_ plugins: [String]) -> String {
        plugins.compactMap { plugin -> String? in
            guard let counts = perPlugin[plugin] else { return nil }
            let total = Double(counts.values.reduce(0, +)) / Double(max(1, trades))
            let parts = counts.sorted { $0.key < $1.key }
                .map { String(format: "%@ %.1f", $0.key, Double($0.value) / Double(max(1, trades))) }
            return String(format: "%@ %.1f (%@)", plugin, total, parts.joined(separator: ", "))
        }.joined(separator: ", ")
    }
}
