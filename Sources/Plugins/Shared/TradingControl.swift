import Host
import Messages

/// The operator's switches in `qt_control`: the trading state and the kill switch.
struct TradingControl {
    var state: TradingState
    var killSwitch: Bool

    /// No orders at all (R6: the one gate an exit does not pass).
    var isHalted: Bool { state == .halted || killSwitch }

    /// A bucket without entries means ACTIVE (the state before any operator action).
    static func read(_ context: HandlerContext) async throws -> TradingControl {
        let control = try await context.kv("qt_control")
        let state = try await control.get(Control.self, "trading_state")?.value.tradingState ?? .active
        let kill = try await control.get(Control.self, "kill_switch")?.value.killSwitch ?? false
        return TradingControl(state: state == .unspecified ? .active : state, killSwitch: kill)
    }
}
