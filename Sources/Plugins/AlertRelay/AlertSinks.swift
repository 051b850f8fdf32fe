import CurlHTTP
import Foundation
import Host
import Messages

/// A place alerts go (a generic JSON webhook, a Slack-compatible webhook, the Telegram Bot API),
/// how an alert and a digest are written for it, and how it says it accepted one.
struct AlertSink: Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case webhook, slack, telegram
    }

    let kind: Kind
    /// Where the POST goes (Telegram: `<base>/bot<token>/sendMessage`).
    let url: String
    let route: AlertRoute
    /// Telegram's chat.
    var chatID = ""

    var name: String { kind.rawValue }

    func body(for alert: Alert, id: String, silent: Bool) -> Data {
        switch kind {
        case .webhook:
            return Self.json([
                "id": id, "kind": AlertRoute.kindName(alert.kind) ?? "unknown", "severity": Self.severityName(alert.severity),
                "plugin": alert.plugin, "symbol": alert.symbol, "subject": alert.subject, "message": alert.message,
                "details": alert.details, "event_time_ms": alert.meta.eventTimeMs, "silent": silent,
            ])
        case .slack:
            return Self.json(["text": Self.text(alert)])
        case .telegram:
            return Self.json(["chat_id": chatID, "text": Self.text(alert), "disable_notification": silent])
        }
    }

    /// One message for the alerts the rate limit held back.
    func digestBody(_ byKind: [String: Int], windowMs: Int64) -> Data {
        let total = byKind.values.reduce(0, +)
        let text = "Rate limit: \(total) more alert(s) in \(windowMs / 1000) s were held back ("
            + byKind.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + ")"
        switch kind {
        case .webhook: return Self.json(["digest": true, "held_back": total, "by_kind": byKind, "text": text])
        case .slack: return Self.json(["text": text])
        case .telegram: return Self.json(["chat_id": chatID, "text": text, "disable_notification": true])
        }
    }

    /// The periodic summary, without a notification sound where the sink has one.
    func summaryBody(_ summary: SummaryLedger, text: String, nowMs: Int64) -> Data {
        switch kind {
        case .webhook:
            return Self.json(["summary": true, "period_start_ms": summary.periodStartMs, "period_end_ms": nowMs, "filled": summary.filled,
                              "rejected": summary.rejected, "realized_pnl": summary.realizedPnl.plainString,
                              "alerts_by_severity": summary.alertsBySeverity, "text": text])
        case .slack: return Self.json(["text": text])
        case .telegram: return Self.json(["chat_id": chatID, "text": text, "disable_notification": true])
        }
    }

    /// Nil when the sink accepted what it answered with, else why not.
    func refusal(_ response: TransportResponse) -> String? {
        let answer = String(decoding: response.body.prefix(300), as: UTF8.self)
        guard (200..<300).contains(response.status) else { return "HTTP \(response.status): \(answer)" }
        if kind == .telegram {
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            guard object?["ok"] as? Bool == true else { return "Telegram did not answer ok: \(answer)" }
        }
        return nil
    }

    /// Telegram refuses a text over 4,096 characters; alerts that list problems can be longer.
    static let maxTextCharacters = 3_500

    static func text(_ alert: Alert) -> String {
        var text = "[\(severityName(alert.severity).uppercased())] \((AlertRoute.kindName(alert.kind) ?? "unknown").uppercased())"
        if !alert.plugin.isEmpty { text += " · \(alert.plugin)" }
        if !alert.symbol.isEmpty { text += " · \(alert.symbol)" }
        if !alert.subject.isEmpty { text += " · \(alert.subject)" }
        text += "\n" + alert.message
        return text.count > maxTextCharacters ? String(text.prefix(maxTextCharacters)) + " …" : text
    }

    static func severityName(_ severity: AlertSeverity) -> String {
        switch severity {
        case .critical: return "critical"
        case .warning: return "warning"
        case .info: return "info"
        default: return "unspecified"
        }
    }

    private static func json(_ object: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}

/// The POSTs, on libcurl's own threads (never the cooperative pool).
final class SinkClient: Sendable {
    private let transport: CurlTransport

    init(timeoutMs: Int) {
        transport = CurlTransport(threads: 1, timeoutMs: timeoutMs, connectTimeoutMs: min(timeoutMs, 3_000))
    }

    /// Throws `PluginError.transient` unless the sink accepted the body: the input comes back
    /// with the host's back-off (1 s doubling to 30 s), and sinks that accepted it are not asked again.
    func post(_ body: Data, to sink: AlertSink) async throws {
        let request = TransportRequest(method: "POST", url: sink.url, headers: ["Content-Type: application/json"], body: body)
        let response: TransportResponse
        do {
            response = try await transport.perform(request)
        } catch {
            throw PluginError.transient("\(sink.name) sink \(Self.redacted(sink.url)): \(error)")
        }
        if let refusal = sink.refusal(response) {
            throw PluginError.transient("\(sink.name) sink \(Self.redacted(sink.url)) refused: \(refusal)")
        }
    }

    func shutdown() { transport.shutdown() }

    /// Scheme, host and port only, for logs and errors: a webhook's path is often its secret
    /// (Slack's), and Telegram's holds the bot token.
    static func redacted(_ url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return "(a URL)" }
        return "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "") + "/…"
    }
}
