import Host
import Messages

/// A plan or intent a gate does not let through: the decision's reason, and what the operator reads.
struct GateRefusal: Error {
    let reason: ReasonCode
    let detail: String
}

/// The operator's switches in `qt_control`: the trading state and the kill switch.
struct TradingControl {
    var state: TradingState
    var killSwitch: Bool

    /// No orders at all (R6: the one gate an exit does not pass).
    var isHalted: Bool { state == .halted || killSwitch }

    /// Why an order may not go out now, or nil: HALTED stops everything, REDUCING stops entries;
    /// nothing else in `qt_control` may stop an exit (R6).
    func refusal(entry: Bool) -> (reason: ReasonCode, detail: String)? {
        if isHalted { return (.tradingHalted, "trading state \(state), kill switch \(killSwitch)") }
        if entry, state == .reducing { return (.tradingReducing, "trading state REDUCING: exits only") }
        return nil
    }

    /// Throws the refusal for a gate to turn into its BLOCK decision.
    static func check(_ context: HandlerContext, entry: Bool) async throws {
        if let (reason, detail) = try await read(context).refusal(entry: entry) { throw GateRefusal(reason: reason, detail: detail) }
    }

    static func read(_ context: HandlerContext) async throws -> TradingControl {
        let control = try await context.kv("qt_control")
        return TradingControl(state: try await control.read(Control.self, "trading_state"), kill: try await control.read(Control.self, "kill_switch"))
    }

    init(state: TradingState, killSwitch: Bool) {
        self.state = state
        self.killSwitch = killSwitch
    }

    init(state: KeyReading<Control>, kill: KeyReading<Control>) {
        self.state = Self.effectiveState(state)
        switch kill {
        case .missing: killSwitch = false
        case .value(let value, _): killSwitch = value.killSwitch
        case .unreadable: killSwitch = true  // a switch that cannot be read may be on
        }
    }

    /// No `trading_state` key means ACTIVE (the state before any operator action). A key that
    /// cannot be read, or whose state is UNSPECIFIED or a value this build does not know, fails
    /// closed: HALTED (the sentinel raises the CRITICAL alert), never a default that lets entries
    /// through.
    static func effectiveState(_ stored: KeyReading<Control>) -> TradingState {
        switch stored {
        case .missing: return .active
        case .unreadable: return .halted
        case .value(let control, _): return isKnown(control.tradingState) ? control.tradingState : .halted
        }
    }

    static func isKnown(_ state: TradingState) -> Bool {
        switch state {
        case .active, .reducing, .halted: return true
        case .unspecified, .UNRECOGNIZED: return false
        }
    }
}

/// `qt_control` kept in memory by a watch (`BucketView`): the trading state and the kill switch
/// without a round trip per message, failing closed as a read of the bucket does. Anything but
/// ACTIVE with the switch off is confirmed from the bucket, so a view that has not seen a resume
/// yet never refuses an order on its own.
final class ControlView: Sendable {
    private let view = BucketView<Control>("qt_control")

    func read(_ context: HandlerContext) async throws -> TradingControl {
        let viewed = TradingControl(state: try await view.read("trading_state", context), kill: try await view.read("kill_switch", context))
        if viewed.state == .active, !viewed.killSwitch { return viewed }
        return try await TradingControl.read(context)
    }

    /// Throws the refusal for a gate to turn into its BLOCK decision.
    func check(_ context: HandlerContext, entry: Bool) async throws {
        if let (reason, detail) = try await read(context).refusal(entry: entry) { throw GateRefusal(reason: reason, detail: detail) }
    }
}
