import Bus
import Foundation
import Messages

/// What the pipeline did while `qt up` watched: every gate decision, alert, order result and
/// exchange-side fill, read from the streams (the same records `qt trace` follows), counted for
/// the summary and the latest few kept for the status view.
final class PipelineActivity: @unchecked Sendable {
    struct Line: Sendable {
        let wallMs: Int64
        let text: String
    }

    private let lock = NSLock()
    private var verdicts: [String: Int] = [:]
    private var recentDecisions: [Line] = []
    private var recentAlerts: [Line] = []
    private var alertCount = 0
    private var filled: [PlanKind: Int] = [:]
    private var rejected = 0
    private var exchangeFills: [FillOrigin: Int] = [:]
    private var undecodable = 0
    private var followers: [Task<Void, Never>] = []
    private static let keep = 6

    /// Follows the audit and execution subjects from their first message until `stop()`.
    func start(_ bus: BusConnection) {
        let subjects = ["qt.decision.*.*", "qt.alert.*", "qt.exec.result.*", "qt.exec.fill.*"]
        followers = subjects.map { subject in
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
    }

    func stop() {
        followers.forEach { $0.cancel() }
    }

    private func record(_ message: InboundMessage) {
        let wallMs = message.timestampNs / 1_000_000
        do {
            switch Topology.route(for: message.subject)?.messageType {
            case is Decision.Type: record(try Decision(serializedBytes: message.payload), wallMs: wallMs)
            case is Alert.Type: record(try Alert(serializedBytes: message.payload), wallMs: wallMs)
            case is OrderResult.Type: record(try OrderResult(serializedBytes: message.payload))
            case is Fill.Type: record(try Fill(serializedBytes: message.payload))
            default: lock.withLock { undecodable += 1 }
            }
        } catch {
            lock.withLock { undecodable += 1 }
        }
    }

    private func record(_ decision: Decision, wallMs: Int64) {
        let text = "\(decision.plugin.padded(16)) \(decision.symbol.padded(12)) \(shortName(decision.verdict).padded(6)) "
            + shortName(decision.reason) + (decision.detail.isEmpty ? "" : "  \(decision.detail.prefix(60))")
        lock.withLock {
            verdicts[shortName(decision.verdict), default: 0] += 1
            // An apply-layer HOLD comes with every bar of every position: counted, not shown.
            if decision.reason != .hold { Self.append(Line(wallMs: wallMs, text: text), to: &recentDecisions) }
        }
    }

    private func record(_ alert: Alert, wallMs: Int64) {
        let text = "\(shortName(alert.severity).padded(8)) \(shortName(alert.kind).padded(14)) \(alert.message.prefix(90))"
        lock.withLock {
            alertCount += 1
            Self.append(Line(wallMs: wallMs, text: text), to: &recentAlerts)
        }
    }

    private func record(_ result: OrderResult) {
        lock.withLock {
            switch result.status {
            case .filled, .applied: filled[result.planKind, default: 0] += 1
            case .rejected: rejected += 1
            default: break
            }
        }
    }

    private func record(_ fill: Fill) {
        lock.withLock { exchangeFills[fill.origin, default: 0] += 1 }
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
        lock.withLock {
            Counts(verdicts: verdicts, decisions: recentDecisions, alerts: recentAlerts, alertCount: alertCount,
                   entriesFilled: filled[.open, default: 0], exitsFilled: filled[.close, default: 0] + filled[.reduce, default: 0],
                   rejected: rejected, stopFills: exchangeFills[.stop, default: 0],
                   otherExchangeFills: exchangeFills.filter { $0.key != .stop }.values.reduce(0, +), undecodable: undecodable)
        }
    }
}

extension String {
    /// Left-aligned in a column of `width` characters (longer text is kept whole).
    func padded(_ width: Int) -> String {
        count >= width ? self + " " : padding(toLength: width, withPad: " ", startingAt: 0)
    }
}
