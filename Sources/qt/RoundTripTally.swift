import ExchangeSimulator
import Foundation
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

/// What one kind of trade costs over a measured run: the host's round trips (the Bus's counts)
/// and the simulator's requests, read before the run and reported after it.
struct TradeCosts {
    let host: PluginHost
    let simulator: SimulatorServer
    private let tripsBefore: [String: [String: Int]]
    private let requestsBefore: [String: Int]

    init(host: PluginHost, simulator: SimulatorServer) {
        self.host = host
        self.simulator = simulator
        tripsBefore = host.metrics.roundTrips
        requestsBefore = Self.requests(simulator)
    }

    /// Prints the round trips and exchange requests per `kind` (OPEN, exit) of the plugins on `path`.
    /// Returns the round trips and the exchange requests per trade.
    @discardableResult
    func report(_ kind: String, path: [String], trades: Int) -> (roundTrips: Double, exchangeRequests: Double) {
        let trips = RoundTripTally(host, since: tripsBefore, trades: trades)
        var calls = Self.requests(simulator)
        for (endpoint, count) in requestsBefore { calls[endpoint, default: 0] -= count }
        calls = calls.filter { $0.value > 0 }
        let perTrade = { (count: Int) in Double(count) / Double(max(1, trades)) }
        printLine(String(format: "KV and JetStream round trips per %@ (counted by the Bus): %.1f — ", kind, trips.perTrade(of: path))
                  + trips.describe(path))
        printLine(String(format: "exchange requests per %@: %.2f — ", kind, perTrade(calls.values.reduce(0, +)))
                  + calls.sorted { $0.value > $1.value }.map { String(format: "%@ %.2f", $0.key, perTrade($0.value)) }.joined(separator: ", "))
        return (trips.perTrade(of: path), perTrade(calls.values.reduce(0, +)))
    }

    /// Requests the simulator has answered so far, by endpoint (`GET /fapi/v1/klines`).
    static func requests(_ simulator: SimulatorServer) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: simulator.exchange.weightByEndpoint.map { ($0.endpoint, $0.requests) })
    }
}
