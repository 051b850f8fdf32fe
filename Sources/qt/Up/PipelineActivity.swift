import Bus
import Foundation
import Synchronization
import Messages

/// What the pipeline did while `qt up` watched: every gate decision, alert, order result and
/// exchange-side fill, read from the streams (the same records `qt trace` follows), counted for
/// the summary and the latest few kept for the status view.
final class PipelineActivity: Sendable {
    struct Line: Sendable {
        let wallMs: Int64
        let text: String
    }

    private struct Tally {
        var verdicts: [String: Int] = [:]
        var recentDecisions: [Line] = []
        var recentAlerts: [Line] = []
        var alertCount = 0
        var filled: [PlanKind: Int] = [:]
        var rejected = 0
        var exchangeFills: [FillOrigin: Int] = [:]
        var undecodable = 0
    }

    private let tally = Mutex(Tally())
    private let followers = Mutex<[Task<Void, Never>]>([])
    private static let keep = 6

    /// Follows the audit and execution subjects from their first message until `stop()`.
    func start(_ bus: BusConnection) {
        let subjects = ["qt.decision.*.*", "qt.alert.*", "qt.exec.result.*", "qt.exec.fill.*"]
        let tails = subjects.map { subject in
            Task.detached { [self] in
                while !Task.isCancelled {
                    do {
                        try await bus.tail(subject, last: Int.max, follow: true) { [self] message in
                            record(message)
                            return !Task.isCancelled
                        }
                    } catch {
                        try? await Task.sleep(nanoseconds: 500_000_000)
                    }
                }
            }
        }
        followers.withLock { $0 = tails }
    }

    func stop() {
        followers.withLock { $0 }.forEach { $0.cancel() }
    }

    private func record(_ message: InboundMessage) {
        let wallMs = message.timestampNs / 1_000_000
        do {
            switch Topology.route(for: message.subject)?.messageType {
            case is Decision.Type: record(try Decision(serializedBytes: message.payload), wallMs: wallMs)
            case is Alert.Type: record(try Alert(serializedBytes: message.payload), wallMs: wallMs)
            case is OrderResult.Type: record(try OrderResult(serializedBytes: message.payload))
            case is Fill.Type: record(try Fill(serializedBytes: message.payload))
            default: tally.withLock { $0.undecodable += 1 }
            }
        } catch {
            tally.withLock { $0.undecodable += 1 }
        }
    }

    private func record(_ decision: Decision, wallMs: Int64) {
        let text = "\(decision.plugin.padded(16)) \(decision.symbol.padded(12)) \(shortName(decision.verdict).padded(6)) "
            + shortName(decision.reason) + (decision.detail.isEmpty ? "" : "  \(decision.detail.prefix(60))")
        tally.withLock { tally in
            tally.verdicts[shortName(decision.verdict), default: 0] += 1
            // An apply-layer HOLD comes with every bar of every position: counted, not shown.
            if decision.reason != .hold { Self.append(Line(wallMs: wallMs, text: text), to: &tally.recentDecisions) }
        }
    }

    private func record(_ alert: Alert, wallMs: Int64) {
        let text = "\(shortName(alert.severity).padded(8)) \(shortName(alert.kind).padded(14)) \(alert.message.prefix(90))"
        tally.withLock { tally in
            tally.alertCount += 1
            Self.append(Line(wallMs: wallMs, text: text), to: &tally.recentAlerts)
        }
    }

    private func record(_ result: OrderResult) {
        tally.withLock { tally in
            switch result.status {
            case .filled, .applied: tally.filled[result.planKind, default: 0] += 1
            case .rejected: tally.rejected += 1
            default: break
            }
        }
    }

    private func record(_ fill: Fill) {
        tally.withLock { $0.exchangeFills[fill.origin, default: 0] += 1 }
    }

    private static func append(_ line: Line, to lines: inout [Line]) {
        lines.append(line)
        if lines.count > keep { lines.removeFirst(lines.count - keep) }
    }

    struct Counts: Sendable {
        var verdicts: [String: Int]
        var decisions: [Line]
        var alerts: [Line]
        var alertCount: Int
        var entriesFilled: Int
        var exitsFilled: Int
        var rejected: Int
        /// Fills the exchange made on its own: triggered protective stops, liquidations.
        var stopFills: Int
        var otherExchangeFills: Int
        var undecodable: Int
    }

    var counts: Counts {
        let tally = tally.withLock { $0 }
        return Counts(verdicts: tally.verdicts, decisions: tally.recentDecisions, alerts: tally.recentAlerts, alertCount: tally.alertCount,
                      entriesFilled: tally.filled[.open, default: 0],
                      exitsFilled: tally.filled[.close, default: 0] + tally.filled[.reduce, default: 0],
                      rejected: tally.rejected, stopFills: tally.exchangeFills[.stop, default: 0],
                      otherExchangeFills: tally.exchangeFills.filter { $0.key != .stop }.values.reduce(0, +), undecodable: tally.undecodable)
    }
}

extension String {
    /// Left-aligned in a column of `width` characters (longer text is kept whole).
    func padded(_ width: Int) -> String {
        count >= width ? self + " " : padding(toLength: width, withPad: " ", startingAt: 0)
    }
}
