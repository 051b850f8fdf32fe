import Messages

/// One sink's record in `qt_state/alert-relay.sink-<name>`, shared by every relay in the fleet
/// and changed by compare-and-set: the rate window (which alerts it counted), which alerts the
/// sink accepted (a redelivery sends no second copy), and which the limit held back for the
/// next digest. Pure: the plugin reads, decides here, writes.
struct SinkLedger: Equatable {
    var windowStartMs: Int64 = 0
    /// Alerts counted against the limit in the current window.
    var counted: Set<String> = []
    /// Alert id → when the sink accepted it.
    var delivered: [String: Int64] = [:]
    /// Alerts held back for the digest, by kind.
    var heldBackByKind: [String: Int] = [:]
    /// Their ids, so a redelivered one is not counted twice; at most `heldBackIDLimit`, so an
    /// alert storm cannot grow the record past a KV value's size (beyond it, counts may repeat).
    var heldBackIDs: Set<String> = []

    /// How long an accepted alert's id is remembered: far beyond any redelivery (30 s back-off).
    static let deliveredKeepMs: Int64 = 3_600_000
    static let heldBackIDLimit = 1_000

    enum Admission: Equatable {
        /// Already accepted or already held back: nothing to do for this sink.
        case done
        /// Send it (counted in the window now, or already).
        case send
        /// Over the limit: held back for the digest.
        case holdBack
    }

    init() {}

    init(_ state: PluginState?) {
        guard let state else { return }
        for (key, value) in state.values {
            if key == "window_start_ms" {
                windowStartMs = Int64(value) ?? 0
            } else if key.hasPrefix("n:") {
                counted.insert(String(key.dropFirst(2)))
            } else if key.hasPrefix("d:") {
                delivered[String(key.dropFirst(2))] = Int64(value) ?? 0
            } else if key.hasPrefix("h:") {
                heldBackIDs.insert(String(key.dropFirst(2)))
            } else if key.hasPrefix("k:") {
                heldBackByKind[String(key.dropFirst(2))] = Int(value) ?? 0
            }
        }
    }

    func state(sink: String) -> PluginState {
        var state = PluginState()
        state.values["window_start_ms"] = String(windowStartMs)
        for id in counted { state.values["n:" + id] = "1" }
        for (id, atMs) in delivered { state.values["d:" + id] = String(atMs) }
        for id in heldBackIDs { state.values["h:" + id] = "1" }
        for (kind, count) in heldBackByKind { state.values["k:" + kind] = String(count) }
        state.symbols = [sink]
        return state
    }

    /// Whether `id` goes to the sink now: at most `limit` alerts per window of `windowMs`.
    mutating func admit(_ id: String, kind: String, limit: Int, windowMs: Int64, nowMs: Int64) -> Admission {
        if delivered[id] != nil || heldBackIDs.contains(id) { return .done }
        if nowMs >= windowStartMs + windowMs {
            windowStartMs = nowMs
            counted = []
        }
        if counted.contains(id) { return .send }
        guard counted.count < limit else {
            heldBackByKind[kind, default: 0] += 1
            if heldBackIDs.count < Self.heldBackIDLimit { heldBackIDs.insert(id) }
            return .holdBack
        }
        counted.insert(id)
        return .send
    }

    mutating func accepted(_ id: String, nowMs: Int64) {
        delivered[id] = nowMs
        delivered = delivered.filter { $0.value > nowMs - Self.deliveredKeepMs }
    }

    /// The held-back alerts by kind once the window that held them back is over, for one digest.
    func digestDue(windowMs: Int64, nowMs: Int64) -> [String: Int]? {
        guard !heldBackByKind.isEmpty, nowMs >= windowStartMs + windowMs else { return nil }
        return heldBackByKind
    }

    /// Takes what a digest reported off the record; alerts held back since it was read stay.
    mutating func digestSent(_ reported: [String: Int]) {
        for (kind, count) in reported {
            let left = (heldBackByKind[kind] ?? 0) - count
            heldBackByKind[kind] = left > 0 ? left : nil
        }
        if heldBackByKind.isEmpty { heldBackIDs = [] }
    }
}
