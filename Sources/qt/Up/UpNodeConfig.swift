import Foundation

/// The node config `qt up` runs: every built-in plugin against the local NATS and simulator.
/// Wall-clock intervals are scaled to the simulator's bar speed (DESIGN.md §3.3: "a demo behaves
/// like a compressed trading day"); event-time settings (rate limits, cooldowns, staleness of
/// market state) need no scaling because they follow the simulated bar times.
struct UpNodeConfig {
    var hostID = "up"
    var natsURL: String
    var exchangeURL: String
    /// The simulator's WebSocket base; nil: market-feed and position-brain poll REST (the fallback).
    var streamURL: String?
    var keyFile: String
    var secretFile: String
    /// Wall milliseconds per simulated minute.
    var barMs: Int
    /// The share of the IP's weight limit this host's client spends (nil: the default, 0.8).
    var weightShare: Double?
    /// Symbols made active at once (every candidate, no trend filter); nil: the universe's own rollout.
    var active: Int?

    /// Wall seconds for `simulatedSeconds` of market time, never below `floor`.
    func wall(_ simulatedSeconds: Double, floor: Double) -> Double {
        max(floor, simulatedSeconds * Double(barMs) / 60_000)
    }

    private func seconds(_ value: Double) -> String { String(format: "%.2f", value) }

    /// The exchange section's optional keys: the stream URLs (Binance's 2026 layout: market streams
    /// under `/market`, the user data stream under `/private`) and the weight share.
    private var optionalExchangeKeys: String {
        (streamURL.map { ", stream_url: \($0)/market, user_stream_url: \($0)/private" } ?? "")
            + (weightShare.map { ", weight_share: \(String(format: "%.3f", $0))" } ?? "")
    }

    /// A rollout steps once per simulated day and needs a refresh per simulated hour to see it; a
    /// fixed active set (`active`) has no steps, so it refreshes as production does, hourly on the
    /// wall clock, instead of spending the all-symbol ticker's weight (40) every few seconds.
    private var universeRefreshSeconds: Int { active == nil ? Int(wall(3_600, floor: 10)) : 3_600 }

    var yaml: String {
        let barSeconds = Double(barMs) / 1000
        return """
        # Written by `qt up`; run the same pipeline elsewhere with `qt host --config <this file>`.
        host_id: \(hostID)
        nats: { servers: [\(natsURL)] }
        http_port: 0
        exchange: { base_url: \(exchangeURL)\(optionalExchangeKeys), key_file: \(keyFile), secret_file: \(secretFile) }
        plugins:
          market-feed: { interval_s: \(seconds(max(0.5, 2 * barSeconds))) }
          market-state: {}
          universe: { check_s: 1,\(active.map { " candidates: \($0), rollout: \"\($0)\", min_ts: 0," } ?? "") refresh_s: \(universeRefreshSeconds), rollout_step_s: \(Int(wall(86_400, floor: 60))) }
          ai-agent: {}
          intent-bridge: {}
          governor: {}
          portfolio-gate: {}
          executor: { resume_s: 10 }
          position-brain: { interval_s: \(streamURL == nil ? seconds(max(0.5, 2 * barSeconds)) : "5") }
          harvest-proposer: { snapshot_grace_s: \(Int(max(180, 5 * 60_000 / Double(barMs)))) }
          heat-gate: {}
          apply-layer: {}
          sentinel: { interval_s: 2 }

        """
    }
}
