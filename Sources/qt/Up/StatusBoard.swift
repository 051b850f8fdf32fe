import Bus
import Exchange
import Foundation
import Kernels
import Messages
import Plugins

/// One look at the pipeline's state through the buckets it writes (the ledger, the exchange
/// snapshots, the trading state) and the streams' consumers; read with a tool's own connection,
/// the way any operator's client would.
struct PipelineState {
    struct Position {
        let symbol: String
        let amount: Decimal
        let entryPrice: Decimal
        let markPrice: Decimal?
        let unrealizedPnl: Decimal?
    }

    var positions: [Position] = []
    var realizedPnl: Decimal = 0
    var account: AccountSnapshot?
    var tradingState = "ACTIVE"
    var heat = "unknown"
    var consumerLag: UInt64 = 0
    var mostBehind: String?
    var deadLetters: UInt64 = 0
    /// Every stream, the pipeline's with their consumers.
    var streams: [StreamSummary] = []

    static func read(_ bus: BusConnection) async throws -> PipelineState {
        var state = PipelineState()
        let ledger = try await bus.keyValue("qt_ledger")
        let snapshots = try await bus.keyValue("qt_snapshot")
        for symbol in try await ledger.keys().sorted() {
            guard let entry = try await ledger.get(LedgerEntry.self, symbol)?.value else { continue }
            state.realizedPnl += Decimal.parse(entry.realizedPnl) ?? 0
            guard let amount = Decimal.parse(entry.positionAmt), amount != 0 else { continue }
            let snapshot = try await snapshots.get(PositionSnapshot.self, symbol)?.value
            state.positions.append(Position(symbol: symbol, amount: amount, entryPrice: Decimal.parse(entry.entryPrice) ?? 0,
                                            markPrice: snapshot.flatMap { Decimal.parse($0.markPrice) },
                                            unrealizedPnl: snapshot.flatMap { Decimal.parse($0.unrealizedPnl) }))
        }
        state.account = try await snapshots.get(AccountSnapshot.self, "_account")?.value
        if let control = try await bus.keyValue("qt_control").get(Control.self, "trading_state")?.value {
            state.tradingState = ControlCommand.name(control.tradingState)
        }
        switch try await HeatGatePlugin.read(snapshots: snapshots, states: bus.keyValue("qt_marketstate")) {
        case .known(let heat): state.heat = String(format: "%.3f %@", heat, shortName(HeatKernel.bucket(heat)))
        case .unknown(let why): state.heat = "UNKNOWN (\(why))"
        }
        // The stream list carries no consumers; each pipeline stream's info does (KV streams have none).
        var streams: [StreamSummary] = []
        for stream in try await bus.streams() {
            streams.append(stream.name.hasPrefix("KV_") ? stream : try await bus.streamInfo(stream.name))
        }
        state.streams = streams
        state.deadLetters = streams.first { $0.name == "QT_DLQ" }?.messages ?? 0
        // The view's own tails are not part of the pipeline.
        let consumers = streams.flatMap(\.consumers).filter { !$0.name.hasPrefix("qt_tail_") }
        state.consumerLag = consumers.reduce(0) { $0 + $1.numPending }
        if let behind = consumers.max(by: { $0.numPending < $1.numPending }), behind.numPending > 0 {
            state.mostBehind = "\(behind.name) \(behind.numPending)"
        }
        return state
    }
}

/// The screen `qt up` refreshes every second (or, when stdout is not a terminal, one line).
struct StatusBoard {
    let natsURL: String
    let simulatorURL: String
    let startedAt: Date
    let maxPositions: Int

    func render(_ state: PipelineState, _ activity: PipelineActivity.Counts, now: Date = Date()) -> String {
        var lines: [String] = []
        let account = state.account
        let equity = account.map { Decimal.parse($0.totalMarginBalance)?.rounded(2) ?? "?" } ?? "?"
        let marginRatio = account.map { String(format: "%.2f%%", $0.marginRatio * 100) } ?? "?"
        lines.append("Quantum Trader · up \(elapsed(now)) · NATS \(natsURL) · simulator \(simulatorURL)")
        lines.append("trading \(state.tradingState) · equity \(equity) USDT · margin ratio \(marginRatio) · heat \(state.heat)")
        lines.append("")
        lines.append("open positions \(state.positions.count)/\(maxPositions) · realized PnL \(state.realizedPnl.rounded(2)) USDT")
        if !state.positions.isEmpty {
            lines.append("  " + "SYMBOL".padded(14) + "SIDE".padded(7) + "QTY".padded(14) + "ENTRY".padded(14) + "MARK".padded(14) + "uPnL")
            for position in state.positions {
                lines.append("  " + position.symbol.padded(14) + (position.amount > 0 ? "LONG" : "SHORT").padded(7)
                             + abs(position.amount).plainString.padded(14) + position.entryPrice.plainString.padded(14)
                             + (position.markPrice?.plainString ?? "?").padded(14) + (position.unrealizedPnl?.rounded(2) ?? "?"))
            }
        }
        lines.append("")
        lines.append("orders filled: \(activity.entriesFilled) entries, \(activity.exitsFilled) exits · stops triggered \(activity.stopFills)"
                     + " · rejected \(activity.rejected)")
        lines.append("decisions: " + verdictSummary(activity.verdicts) + " (latest, apply-layer HOLDs not listed:)")
        for line in activity.decisions { lines.append("  \(clock(line.wallMs)) \(line.text)") }
        lines.append("")
        lines.append("consumer lag \(state.consumerLag)" + (state.mostBehind.map { " (most behind: \($0))" } ?? "")
                     + " · dead letters \(state.deadLetters) · alerts \(activity.alertCount)")
        for line in activity.alerts { lines.append("  \(clock(line.wallMs)) \(line.text)") }
        return lines.joined(separator: "\n")
    }

    /// The one-line form for logs and pipes.
    func line(_ state: PipelineState, _ activity: PipelineActivity.Counts, now: Date = Date()) -> String {
        "[\(elapsed(now))] \(state.tradingState) positions \(state.positions.count) · filled \(activity.entriesFilled) in /"
            + " \(activity.exitsFilled) out · stops \(activity.stopFills) · realized \(state.realizedPnl.rounded(2)) · heat \(state.heat)"
            + " · lag \(state.consumerLag) · DLQ \(state.deadLetters) · alerts \(activity.alertCount)"
    }

    func verdictSummary(_ verdicts: [String: Int]) -> String {
        verdicts.isEmpty ? "none yet" : verdicts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    private func elapsed(_ now: Date) -> String {
        let seconds = Int(now.timeIntervalSince(startedAt))
        return String(format: "%02d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
    }

    private static let clockFormat: DateFormatter = {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        return formatter
    }()

    private func clock(_ wallMs: Int64) -> String {
        Self.clockFormat.string(from: Date(timeIntervalSince1970: Double(wallMs) / 1000))
    }
}

extension Decimal {
    /// Rounded to `places` decimals for display.
    func rounded(_ places: Int) -> String {
        var value = self, result = Decimal()
        NSDecimalRound(&result, &value, places, .plain)
        return result.plainString
    }
}
