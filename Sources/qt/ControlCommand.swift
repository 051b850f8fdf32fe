import ArgumentParser
import Bus
import Foundation
import Messages

/// `qt control halt|reduce|resume|status`: the operator's switch in `qt_control/trading_state`.
/// Every gate reads it per message, so a change holds from the next message on.
struct ControlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control",
        abstract: "Read or set the trading state: ACTIVE (everything), REDUCING (exits only), HALTED (no orders).",
        subcommands: [Halt.self, Reduce.self, Resume.self, Status.self])

    struct Change: ParsableArguments {
        @OptionGroup var connection: ConnectionArguments
        @Option(help: "Why (recorded with the change).") var reason = ""
        @Option(help: "Who (default: $USER).") var by: String?
    }

    struct Halt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "No orders at all, exits included.")
        @OptionGroup var change: Change
        func run() async throws { try await ControlCommand.set(.halted, change) }
    }

    struct Reduce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reduce-only: exits pass, entries are blocked.")
        @OptionGroup var change: Change
        func run() async throws { try await ControlCommand.set(.reducing, change) }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Back to ACTIVE; also releases the kill switch.")
        @OptionGroup var change: Change
        func run() async throws { try await ControlCommand.set(.active, change) }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the trading state and the kill switch.")
        @OptionGroup var connection: ConnectionArguments
        func run() async throws {
            try await reportingErrors {
                let bus = try connection.connect()
                defer { bus.close() }
                let bucket = try await bus.keyValue("qt_control")
                let state = try await bucket.get(Control.self, "trading_state")
                let kill = try await bucket.get(Control.self, "kill_switch")
                printLine(describe("trading_state", state, value: state.map { name($0.value.tradingState) } ?? "ACTIVE (never set)"))
                printLine(describe("kill_switch", kill, value: kill.map { $0.value.killSwitch ? "ON" : "off" } ?? "off (never set)"))
            }
        }

        func describe(_ key: String, _ entry: (value: Control, revision: UInt64)?, value: String) -> String {
            guard let entry else { return "\(key): \(value)" }
            let at = Date(timeIntervalSince1970: Double(entry.value.setAtMs) / 1000).formatted(.iso8601)
            let reason = entry.value.reason.isEmpty ? "" : ", reason: \(entry.value.reason)"
            return "\(key): \(value) (revision \(entry.revision), set by \(entry.value.setBy) at \(at)\(reason))"
        }
    }

    static func name(_ state: TradingState) -> String {
        switch state {
        case .active, .unspecified: return "ACTIVE"
        case .reducing: return "REDUCING"
        case .halted: return "HALTED"
        case .UNRECOGNIZED(let value): return "unknown (\(value))"
        }
    }

    static func set(_ state: TradingState, _ change: Change) async throws {
        try await reportingErrors {
            let bus = try change.connection.connect()
            defer { bus.close() }
            let by = change.by ?? ProcessInfo.processInfo.environment["USER"] ?? "operator"
            let revision = try await write(state, reason: change.reason, by: by, bus: bus)
            printLine("trading_state: \(name(state)) (revision \(revision))")
        }
    }

    /// Sets `qt_control/trading_state` (who and when recorded with it, and in the key's history);
    /// ACTIVE also releases a tripped kill switch. Returns the new revision.
    static func write(_ state: TradingState, reason: String, by: String, bus: BusConnection) async throws -> UInt64 {
        let bucket = try await bus.keyValue("qt_control")
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        var control = Control()
        control.tradingState = state
        control.reason = reason
        control.setBy = by
        control.setAtMs = nowMs
        control.meta.eventTimeMs = nowMs
        let revision = try await bucket.put("trading_state", message: control)
        if state == .active, let kill = try await bucket.get(Control.self, "kill_switch"), kill.value.killSwitch {
            var released = control
            released.killSwitch = false
            try await bucket.put("kill_switch", message: released)
        }
        return revision
    }
}
