import Messages

/// The dead man's switch over `qt_hosts`: every host that heartbeated there, its last heartbeat,
/// and whether its silence was reported. Kept in `qt_state/alert-relay.hosts`, because a silent
/// host's key leaves `qt_hosts` with the bucket's TTL (30 s) and the relay must still know it.
/// Pure: the plugin reads the heartbeats, folds them in here, and emits what comes out.
struct HostSilence: Equatable {
    var lastHeartbeatMs: [String: Int64] = [:]
    var silent: Set<String> = []

    /// A host silent this long is forgotten (decommissioned, renamed).
    static let forgetAfterMs: Int64 = 86_400_000

    enum Change: Equatable {
        case silent(host: String, lastHeartbeatMs: Int64)
        case back(host: String, heartbeatMs: Int64)

        /// What makes the alert's content id: one per silence, one per return.
        var key: String {
            switch self {
            case .silent(let host, let at): return "silent|\(host)|\(at)"
            case .back(let host, let at): return "back|\(host)|\(at)"
            }
        }
    }

    init() {}

    init(_ state: PluginState?) {
        guard let state else { return }
        for (key, value) in state.values {
            if key.hasPrefix("h:"), let at = Int64(value) { lastHeartbeatMs[String(key.dropFirst(2))] = at }
            if key.hasPrefix("s:") { silent.insert(String(key.dropFirst(2))) }
        }
    }

    var state: PluginState {
        var state = PluginState()
        for (host, at) in lastHeartbeatMs { state.values["h:" + host] = String(at) }
        for host in silent { state.values["s:" + host] = "1" }
        state.symbols = lastHeartbeatMs.keys.sorted()
        return state
    }

    /// Folds in the heartbeats `qt_hosts` holds now (host → heartbeat_at_ms) and returns the hosts
    /// that fell silent for `silenceMs` and those that heartbeat again after a reported silence.
    mutating func observe(_ heartbeats: [String: Int64], nowMs: Int64, silenceMs: Int64) -> [Change] {
        var changes: [Change] = []
        for (host, at) in heartbeats.sorted(by: { $0.key < $1.key }) where at > (lastHeartbeatMs[host] ?? Int64.min) {
            lastHeartbeatMs[host] = at
            if silent.contains(host), nowMs - at < silenceMs {
                silent.remove(host)
                changes.append(.back(host: host, heartbeatMs: at))
            }
        }
        for (host, at) in lastHeartbeatMs.sorted(by: { $0.key < $1.key }) {
            if nowMs - at >= Self.forgetAfterMs {
                lastHeartbeatMs[host] = nil
                silent.remove(host)
            } else if nowMs - at >= silenceMs, !silent.contains(host) {
                silent.insert(host)
                changes.append(.silent(host: host, lastHeartbeatMs: at))
            }
        }
        return changes
    }
}
