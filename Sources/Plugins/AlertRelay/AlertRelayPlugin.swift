import Foundation
import Host
import Identity
import Messages

/// Alerts out to people (issue 21): every `qt.alert.*` to the sinks its routing picks, a generic
/// JSON webhook, a Slack-compatible webhook and the Telegram Bot API (`sendMessage`).
///
/// At least once: an alert is acknowledged only when every sink it is routed to accepted it or
/// the rate limit held it back; a sink that fails sends the alert back with the host's back-off,
/// and the sinks that accepted it already are not asked again (`SinkLedger`, in `qt_state`, so
/// this holds across a crash and across the hosts that share the durable). A sink that accepted
/// an alert just before a crash may get it a second time; the webhook's `id` lets a receiver drop it.
///
/// Rate limit: at most `limit_per_window` alerts per sink per `window_s`; the rest are held back,
/// and once the window is over one digest per sink says how many and of which kinds.
///
/// Dead man's switch: a host that heartbeated to `qt_hosts` and then stays silent for
/// `host_silence_s` raises a CRITICAL `host_silent` alert (published, so it reaches the sinks
/// like any other), and an INFO one when it heartbeats again.
///
/// Summary: every `summary_every_s` (a day) one message per sink with the trades filled and
/// rejected, their realized PnL and the alerts of the period, counted from `qt.exec.result.*`.
public final class AlertRelayPlugin: Plugin {
    public static let name = "alert-relay"
    static let defaultRoute = "critical=on, warning=on, info=silent"

    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: name, version: "1.0.0",
            inputs: [InputSpec("alerts", subject: "qt.alert.*", type: Alert.self),
                     InputSpec("results", subject: "qt.exec.result.*", type: OrderResult.self)],
            outputs: [OutputSpec("alerts", subject: "qt.alert.*", type: Alert.self)],
            kvReads: ["qt_state", "qt_hosts"],
            kvWrites: ["qt_state"],
            timers: [TimerSpec("check", intervalMs: 5_000, singleton: true, intervalSecondsSetting: "check_s")],
            config: [
                ConfigKey("webhook_url", .string, default: .string(""), help: "generic JSON webhook, POSTed one alert per request; empty: no webhook"),
                ConfigKey("webhook_route", .string, default: .string(defaultRoute), help: routeHelp),
                ConfigKey("slack_url", .string, default: .string(""), help: "Slack-compatible incoming webhook ({\"text\": …}); empty: no Slack"),
                ConfigKey("slack_route", .string, default: .string(defaultRoute), help: routeHelp),
                ConfigKey("telegram_base_url", .string, default: .string("https://api.telegram.org"),
                          help: "Telegram Bot API base URL (a local fake in tests)"),
                ConfigKey("telegram_token_file", .string, default: .string(""),
                          help: "file holding the bot token (never the token itself in a config); empty: no Telegram"),
                ConfigKey("telegram_chat_id", .string, default: .string(""), help: "the chat the bot writes to"),
                ConfigKey("telegram_route", .string, default: .string(defaultRoute), help: routeHelp),
                ConfigKey("limit_per_window", .int, default: .int(10), range: 1...100_000, help: "alerts per sink per window; the rest go into one digest"),
                ConfigKey("window_s", .double, default: .double(60), range: 1...86_400, help: "the rate limit's window in seconds"),
                ConfigKey("check_s", .double, default: .double(5), range: 0.2...3_600,
                          help: "seconds between checks for a digest that is due and for silent hosts"),
                ConfigKey("host_silence_s", .double, default: .double(60), range: 0...86_400,
                          help: "alert when a host has written no heartbeat to qt_hosts for this long; 0: no dead man's switch"),
                ConfigKey("summary_every_s", .double, default: .double(86_400), range: 0...604_800,
                          help: "seconds between summaries (trades, realized PnL, alerts) to every sink; 0: none"),
                ConfigKey("timeout_ms", .int, default: .int(5_000), range: 100...60_000, help: "a sink's answer time before the alert is retried"),
            ]),
        make: { setup in try AlertRelayPlugin(settings: setup.settings) })

    static let routeHelp = "which alerts go to this sink: severities and kinds = on, silent or off, e.g. \"critical=on, info=off, consumer_lag=silent\""

    let sinks: [AlertSink]
    private let limit: Int
    private let windowMs: Int64
    private let silenceMs: Int64
    private let summaryMs: Int64
    private let client: SinkClient
    private let rounds = StateRounds()

    init(settings: PluginSettings) throws {
        var sinks: [AlertSink] = []
        let webhook = try settings.string("webhook_url")
        if !webhook.isEmpty {
            sinks.append(AlertSink(kind: .webhook, url: webhook, route: try AlertRoute(parsing: try settings.string("webhook_route"), setting: "webhook_route")))
        }
        let slack = try settings.string("slack_url")
        if !slack.isEmpty {
            sinks.append(AlertSink(kind: .slack, url: slack, route: try AlertRoute(parsing: try settings.string("slack_route"), setting: "slack_route")))
        }
        let tokenFile = try settings.string("telegram_token_file")
        if !tokenFile.isEmpty {
            let token: String
            do {
                token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw PluginError.permanent("telegram_token_file \(tokenFile): cannot be read (\(error.localizedDescription))")
            }
            guard !token.isEmpty else { throw PluginError.permanent("telegram_token_file \(tokenFile): is empty, expected the bot token") }
            let chat = try settings.string("telegram_chat_id")
            guard !chat.isEmpty else { throw PluginError.permanent("telegram_chat_id: empty, but telegram_token_file is set: which chat?") }
            let base = try settings.string("telegram_base_url").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            sinks.append(AlertSink(kind: .telegram, url: "\(base)/bot\(token)/sendMessage",
                                   route: try AlertRoute(parsing: try settings.string("telegram_route"), setting: "telegram_route"), chatID: chat))
        }
        guard !sinks.isEmpty else {
            throw PluginError.permanent("no sink: set webhook_url, slack_url or telegram_token_file (with telegram_chat_id)")
        }
        self.sinks = sinks
        limit = try settings.int("limit_per_window")
        windowMs = Int64(try settings.double("window_s") * 1000)
        silenceMs = Int64(try settings.double("host_silence_s") * 1000)
        summaryMs = Int64(try settings.double("summary_every_s") * 1000)
        client = SinkClient(timeoutMs: try settings.int("timeout_ms"))
    }

    public func stop() async { client.shutdown() }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        let id = input.message.meta.id.isEmpty ? "\(input.subject)#\(input.streamSequence)" : input.message.meta.id
        if let result = input.message(as: OrderResult.self) {
            guard summaryMs > 0 else { return }
            return try await rewriteSummary(context) { summary in summary.add(result: id, result) }
        }
        guard let alert = input.message(as: Alert.self) else { throw PluginError.permanent("expected an Alert or an OrderResult") }
        let kind = AlertRoute.kindName(alert.kind) ?? "unknown"
        if summaryMs > 0 { try await rewriteSummary(context) { summary in summary.add(alert: id, severity: AlertSink.severityName(alert.severity)) } }
        for sink in sinks {
            let mode = sink.route.mode(for: alert)
            guard mode != .off else { continue }
            let admission = try await rewriteLedger(of: sink, context) { ledger in
                ledger.admit(id, kind: kind, limit: limit, windowMs: windowMs, nowMs: context.clock.nowMs())
            }
            switch admission {
            case .done:
                continue
            case .holdBack:
                context.count("alerts_held_back")
            case .send:
                try await client.post(sink.body(for: alert, id: id, silent: mode == .silent), to: sink)
                _ = try await rewriteLedger(of: sink, context) { ledger in ledger.accepted(id, nowMs: context.clock.nowMs()) }
                context.count("alerts_sent_\(sink.name)")
            }
        }
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        if silenceMs > 0 { try await checkHeartbeats(context) }
        if summaryMs > 0 { try await sendSummary(context) }
        for sink in sinks {
            let nowMs = context.clock.nowMs()
            guard let stored = try await context.loadState(Self.ledgerName(sink)),
                  let due = SinkLedger(stored.state).digestDue(windowMs: windowMs, nowMs: nowMs) else { continue }
            try await client.post(sink.digestBody(due, windowMs: windowMs), to: sink)
            _ = try await rewriteLedger(of: sink, context) { ledger in ledger.digestSent(due) }
            context.count("digests_sent_\(sink.name)")
        }
    }

    /// The alerts go out before the silence is recorded: a crash in between emits them again
    /// with the same content ids, which JetStream drops as duplicates.
    private func checkHeartbeats(_ context: HandlerContext) async throws {
        let hosts = try await context.kv("qt_hosts")
        var heartbeats: [String: Int64] = [:]
        for key in try await hosts.keys() {
            // A HostInfo that cannot be read is the topology check's to report, not a silence.
            guard case .value(let info, _) = try await hosts.read(HostInfo.self, key) else { continue }
            heartbeats[key] = info.heartbeatAtMs
        }
        let stored = try await context.loadState(Self.hostsState)
        let before = HostSilence(stored?.state)
        var silence = before
        let nowMs = context.clock.nowMs()
        let changes = silence.observe(heartbeats, nowMs: nowMs, silenceMs: silenceMs)
        for change in changes {
            try context.emit("alerts", Self.alert(change, nowMs: nowMs), subject: Subjects.alert(.hostSilent),
                             id: ContentID.hash(Self.name, "host-silent", change.key))
        }
        if !changes.isEmpty { try await context.publishNow() }
        if silence != before {
            _ = try await context.saveState(Self.hostsState, silence.state, expectedRevision: stored?.revision ?? 0)
        }
    }

    static let hostsState = "hosts"
    static let summaryState = "summary"

    /// Each sink that has not yet taken this period's summary gets it; once all have, the next
    /// period starts. A sink that fails is asked again at the next check, the others are not.
    private func sendSummary(_ context: HandlerContext) async throws {
        let nowMs = context.clock.nowMs()
        var summary = SummaryLedger()
        let due = try await rewriteSummary(context) { stored -> Bool in
            let isDue = stored.due(everyMs: summaryMs, nowMs: nowMs)
            summary = stored
            return isDue
        }
        guard due else { return }
        let text = summary.text(nowMs: nowMs)
        for sink in sinks where !summary.sentTo.contains(sink.name) {
            try await client.post(sink.summaryBody(summary, text: text, nowMs: nowMs), to: sink)
            _ = try await rewriteSummary(context) { stored in stored.sentTo.insert(sink.name) }
            context.count("summaries_sent_\(sink.name)")
        }
        let period = summary.periodStartMs
        try await rewriteSummary(context) { stored in
            if stored.periodStartMs == period, stored.sentTo.count >= sinks.count { stored.startNextPeriod(nowMs: nowMs) }
        }
    }

    private func rewriteSummary<T>(_ context: HandlerContext, _ change: (inout SummaryLedger) -> T) async throws -> T {
        try await rounds.rewrite(Self.summaryState, context: context, read: SummaryLedger.init, write: \.state, change)
    }

    static func alert(_ change: HostSilence.Change, nowMs: Int64) -> Alert {
        var alert = Alert()
        alert.kind = .hostSilent
        alert.plugin = name
        switch change {
        case .silent(let host, let at):
            alert.severity = .critical
            alert.subject = "qt_hosts/\(host)"
            alert.message = "host \(host) has written no heartbeat for \((nowMs - at) / 1000) s: its plugins' partitions move to the other hosts, "
                + "its singleton timers to another holder; is it down, or cut off from NATS?"
            alert.details = ["host": host, "last_heartbeat_ms": String(at)]
        case .back(let host, let at):
            alert.severity = .info
            alert.subject = "qt_hosts/\(host)"
            alert.message = "host \(host) heartbeats again"
            alert.details = ["host": host, "heartbeat_ms": String(at)]
        }
        alert.meta.eventTimeMs = nowMs
        return alert
    }

    static func ledgerName(_ sink: AlertSink) -> String { "sink-\(sink.name)" }

    /// Reads the sink's ledger, lets `change` decide, and writes it back by compare-and-set
    /// (another relay's write in between: read and decide again).
    private func rewriteLedger<T>(of sink: AlertSink, _ context: HandlerContext, _ change: (inout SinkLedger) -> T) async throws -> T {
        try await rounds.rewrite(Self.ledgerName(sink), context: context, read: SinkLedger.init,
                                 write: { $0.state(sink: sink.name) }, change)
    }
}
