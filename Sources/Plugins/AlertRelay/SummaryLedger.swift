import Foundation
import Messages
import Numbers

/// What the periodic summary reports, gathered as results and alerts arrive, in
/// `qt_state/alert-relay.summary` (compare-and-set, shared by every relay): trades filled and
/// rejected, their realized PnL, alerts by severity, and which sinks already got the summary of
/// the period that ended. Pure: the plugin reads, folds in here, writes.
struct SummaryLedger: Equatable {
    var periodStartMs: Int64 = 0
    var filled = 0
    var rejected = 0
    var realizedPnl = Decimal(0)
    var alertsBySeverity: [String: Int] = [:]
    /// Ids counted this period, so a redelivery is not counted twice; at most `countedIDLimit`.
    var counted: Set<String> = []
    /// Sinks that accepted the summary of the period starting at `periodStartMs`.
    var sentTo: Set<String> = []

    static let countedIDLimit = 5_000

    init() {}

    init(_ state: PluginState?) {
        guard let state else { return }
        for (key, value) in state.values {
            switch key {
            case "period_start_ms": periodStartMs = Int64(value) ?? 0
            case "filled": filled = Int(value) ?? 0
            case "rejected": rejected = Int(value) ?? 0
            case "realized_pnl": realizedPnl = Decimal.parse(value) ?? 0
            default:
                if key.hasPrefix("a:") { alertsBySeverity[String(key.dropFirst(2))] = Int(value) ?? 0 }
                if key.hasPrefix("c:") { counted.insert(String(key.dropFirst(2))) }
                if key.hasPrefix("s:") { sentTo.insert(String(key.dropFirst(2))) }
            }
        }
    }

    var state: PluginState {
        var state = PluginState()
        state.values = ["period_start_ms": String(periodStartMs), "filled": String(filled), "rejected": String(rejected),
                        "realized_pnl": realizedPnl.plainString]
        for (severity, count) in alertsBySeverity { state.values["a:" + severity] = String(count) }
        for id in counted { state.values["c:" + id] = "1" }
        for sink in sentTo { state.values["s:" + sink] = "1" }
        return state
    }

    /// Whether `id` is new this period (and remembers it while there is room).
    private mutating func firstTime(_ id: String) -> Bool {
        guard !counted.contains(id) else { return false }
        if counted.count < Self.countedIDLimit { counted.insert(id) }
        return true
    }

    /// An executor's `OrderResult`: APPLIED counts as filled, REJECTED as rejected.
    mutating func add(result id: String, _ result: OrderResult) {
        guard firstTime(id) else { return }
        switch result.status {
        case .applied:
            filled += 1
            realizedPnl += Decimal.parse(result.realizedPnl) ?? 0
        case .rejected:
            rejected += 1
        default:
            break
        }
    }

    mutating func add(alert id: String, severity: String) {
        guard firstTime(id) else { return }
        alertsBySeverity[severity, default: 0] += 1
    }

    /// Starts the first period; true when the current one is over and a summary is due.
    mutating func due(everyMs: Int64, nowMs: Int64) -> Bool {
        if periodStartMs == 0 { periodStartMs = nowMs }
        return nowMs >= periodStartMs + everyMs
    }

    /// Every sink got the summary: the next period starts with nothing counted.
    mutating func startNextPeriod(nowMs: Int64) {
        self = SummaryLedger()
        periodStartMs = nowMs
    }

    func text(nowMs: Int64) -> String {
        let hours = Double(nowMs - periodStartMs) / 3_600_000
        let alerts = alertsBySeverity.values.reduce(0, +)
        let bySeverity = alertsBySeverity.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        let sign = realizedPnl > 0 ? "+" : ""
        return "Summary of the last \(String(format: "%.1f", hours)) h: \(filled) trade(s) filled, \(rejected) rejected; "
            + "realized PnL \(sign)\(realizedPnl.plainString) USDT; \(alerts) alert(s)" + (bySeverity.isEmpty ? "" : " (\(bySeverity))")
    }
}
