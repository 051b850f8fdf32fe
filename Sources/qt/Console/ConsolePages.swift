import Bus
import Foundation
import Messages
import Synchronization

/// The Overview and Pipeline pages: fragments keyed by element id, rendered from the sampler's
/// latest sample (the first page load and every `/events` update use the same functions).
enum OverviewPage {
    static func fragments(_ sample: ConsoleSampler.Sample, _ counts: PipelineActivity.Counts) -> [String: String] {
        guard let state = sample.state else {
            return ["summary": "<p class=\"empty\">\(ConsoleHTML.escape(sample.problem ?? "reading the pipeline…"))</p>"]
        }
        let account = state.account
        let figures: [(String, String)] = [
            ("trading state", state.tradingState),
            ("equity (USDT)", account.map { Decimal.parse($0.totalMarginBalance)?.rounded(2) ?? "?" } ?? "?"),
            ("realized PnL (USDT)", state.realizedPnl.rounded(4)),
            ("margin ratio", account.map { String(format: "%.2f%%", $0.marginRatio * 100) } ?? "?"),
            ("heat", state.heat),
            ("open positions", String(state.positions.count)),
            ("filled", "\(counts.entriesFilled) in / \(counts.exitsFilled) out"),
            ("consumer lag", String(state.consumerLag)),
            ("dead letters", String(state.deadLetters)),
        ]
        let summary = "<div class=\"figures\">" + figures.map { name, value in
            "<div class=\"figure\" data-figure=\"\(ConsoleHTML.escape(name))\"><b>\(ConsoleHTML.escape(value))</b>\(ConsoleHTML.escape(name))</div>"
        }.joined() + "</div>"
        let positions = ConsoleHTML.table(["symbol", "side", "quantity", "entry", "mark", "uPnL (USDT)"], state.positions.map { position in
            ["<a href=\"/symbol/\(ConsoleHTML.urlComponent(position.symbol))\">\(ConsoleHTML.escape(position.symbol))</a>",
             position.amount > 0 ? "LONG" : "SHORT", abs(position.amount).plainString, position.entryPrice.plainString,
             position.markPrice?.plainString ?? "?", position.unrealizedPnl?.rounded(4) ?? "?"]
        }, rowClass: "position", empty: "no open position")
        let startMs = sample.equity.first?.wallMs ?? 0
        let equity = ConsoleCharts.line(id: "equity", points: sample.equity.map { (Double($0.wallMs - startMs) / 1000, $0.equity) },
                                        yLabel: "equity USDT over seconds")
        let realized = ConsoleCharts.line(id: "realized", points: sample.equity.map { (Double($0.wallMs - startMs) / 1000, $0.realizedPnl) },
                                          yLabel: "realized PnL USDT")
        let alerts = counts.alerts.isEmpty ? "<p class=\"empty\">no alert</p>"
            : "<ul>" + counts.alerts.reversed().map { "<li class=\"alert\"><code>\(ConsoleHTML.escape($0.text))</code></li>" }.joined() + "</ul>"
        return ["summary": summary, "positions": positions, "equity-chart": equity, "realized-chart": realized,
                "alerts": "<p>\(counts.alertCount) alerts in all; the latest:</p>" + alerts]
    }

    static func body(_ fragments: [String: String]) -> String {
        ConsoleHTML.section("State", id: "summary", fragments["summary"] ?? "")
            + ConsoleHTML.section("Open positions", id: "positions", fragments["positions"] ?? "")
            + ConsoleHTML.section("Equity", id: "equity-chart", fragments["equity-chart"] ?? "")
            + ConsoleHTML.section("Realized PnL", id: "realized-chart", fragments["realized-chart"] ?? "")
            + ConsoleHTML.section("Alerts", id: "alerts", fragments["alerts"] ?? "")
    }
}

enum PipelinePage {
    static func fragments(_ sample: ConsoleSampler.Sample) -> [String: String] {
        let nowMs = sample.wallMs
        var hostsByPlugin: [String: [String]] = [:]
        var manifests: [PluginManifestInfo] = []
        for host in sample.hosts {
            for plugin in host.plugins {
                hostsByPlugin[plugin.name, default: []].append(host.hostID)
                if !manifests.contains(where: { $0.name == plugin.name }) { manifests.append(plugin) }
            }
        }
        let hosts = ConsoleHTML.table(["host", "plugins", "version", "heartbeat", "up since"], sample.hosts.map { host in
            [ConsoleHTML.escape(host.hostID), ConsoleHTML.escape(host.plugins.map(\.name).sorted().joined(separator: ", ")),
             ConsoleHTML.escape(host.version), "\(max(0, nowMs - host.heartbeatAtMs) / 1000) s ago",
             ConsoleHTML.escape(CausalChain.timestamp(host.startedAtMs))]
        }, rowClass: "host", empty: "no host in qt_hosts")
        // Plugin durables are named <plugin>__<input>[__p<partition>]; tools' reading consumers
        // (tails, the console's own) are not part of the pipeline.
        let consumers = sample.streams.flatMap { stream in stream.consumers.map { (stream.name, $0) } }
            .filter { $0.1.name.contains("__") }
            .sorted { ($1.1.numPending, $0.1.name) < ($0.1.numPending, $1.1.name) }
        let lag = ConsoleHTML.table(["stream", "consumer", "filter (partition)", "pending", "ack pending", "redelivered"], consumers.prefix(80).map { stream, consumer in
            [stream, ConsoleHTML.escape(consumer.name), ConsoleHTML.escape(consumer.filterSubject), String(consumer.numPending),
             String(consumer.numAckPending), String(consumer.numRedelivered)]
        }, rowClass: "consumer", empty: "no consumer")
        let deadLetters = sample.streams.first { $0.name == "QT_DLQ" }?.messages ?? 0
        let dlq = "<p>\(deadLetters) messages in QT_DLQ; the newest 500 by consumer:</p>"
            + ConsoleHTML.table(["consumer", "dead letters"], sample.deadLettersByConsumer.map { [ConsoleHTML.escape($0.consumer), String($0.count)] },
                                empty: "none")
        let rates = ConsoleHTML.table(["stream", "messages stored", "messages per second"], sample.streams.map { stream in
            let rate = sample.rates.first { $0.stream == stream.name }?.perSecond
            return [stream.name, String(stream.messages), rate.map { String(format: "%.1f", $0) } ?? "…"]
        }, rowClass: "stream", empty: "no stream")
        return ["graph": ConsoleCharts.stageGraph(manifests, hostsByPlugin: hostsByPlugin), "hosts": hosts, "lag": lag, "dlq": dlq, "rates": rates]
    }

    static func body(_ fragments: [String: String]) -> String {
        ConsoleHTML.section("Stage graph (one box per plugin)", id: "graph", wide: true, fragments["graph"] ?? "")
            + ConsoleHTML.section("Hosts (qt_hosts)", id: "hosts", fragments["hosts"] ?? "")
            + ConsoleHTML.section("Messages per second", id: "rates", fragments["rates"] ?? "")
            + ConsoleHTML.section("Dead letters", id: "dlq", fragments["dlq"] ?? "")
            + ConsoleHTML.section("Consumer lag per partition", id: "lag", wide: true, fragments["lag"] ?? "")
    }
}

/// One symbol: its bars with the filled orders on them, the market state, and every gate's latest
/// decisions. Read per request from the streams and `qt_marketstate`.
enum SymbolPage {
    static func fragments(_ bus: BusConnection, symbol: String, withChains: Bool) async throws -> [String: String] {
        let bars = try await tail(Kline.self, Subjects.kline(symbol), last: 120, bus: bus)
        let results = try await tail(OrderResult.self, "qt.exec.result.\(symbol)", last: 100, bus: bus)
        let decisions = try await tail(Decision.self, "qt.decision.*.\(symbol)", last: 200, bus: bus)
        let points = bars.compactMap { bar in Double(bar.close).map { (Double(bar.closeTimeMs) / 1000, $0) } }
        let firstBarSeconds = points.first?.0 ?? 0
        let markers = results.filter { [.filled, .applied].contains($0.status) }.compactMap { result -> ConsoleCharts.Marker? in
            guard let price = Double(result.avgPrice), price > 0, result.meta.eventTimeMs > 0 else { return nil }
            let seconds = Double(result.meta.eventTimeMs) / 1000
            guard seconds >= firstBarSeconds else { return nil }
            return ConsoleCharts.Marker(x: seconds, y: price, kind: result.planKind == .open ? "entry" : "exit",
                                        label: "\(shortName(result.planKind)) \(shortName(result.side)) \(result.executedQty) @ \(result.avgPrice)")
        }
        let start = points.first?.0 ?? 0
        let chart = ConsoleCharts.line(id: "price", points: points.map { ($0.0 - start, $0.1) },
                                       markers: markers.map { .init(x: $0.x - start, y: $0.y, kind: $0.kind, label: $0.label) },
                                       yLabel: "close, seconds of market time")
        var fragments = ["price-chart": chart, "market-state": try await marketState(bus, symbol: symbol),
                         "decisions": decisionList(decisions)]
        if withChains { fragments["chains"] = try await chains(bus, symbol: symbol) }
        return fragments
    }

    static func body(symbol: String, _ fragments: [String: String]) -> String {
        "<section><h2>\(ConsoleHTML.escape(symbol))</h2><div id=\"price-chart\">\(fragments["price-chart"] ?? "")</div></section>"
            + ConsoleHTML.section("Market state", id: "market-state", fragments["market-state"] ?? "")
            + ConsoleHTML.section("Gate decisions (latest per gate, then the newest)", id: "decisions", fragments["decisions"] ?? "")
            + ConsoleHTML.section("Latest chains (trace)", id: "chains", fragments["chains"] ?? "")
    }

    private static func marketState(_ bus: BusConnection, symbol: String) async throws -> String {
        guard let state = try await bus.keyValue("qt_marketstate").get(MarketState.self, symbol)?.value else {
            return "<p class=\"empty\">no market state for \(ConsoleHTML.escape(symbol)) in qt_marketstate</p>"
        }
        let rows: [(String, Double)] = [("P(trend)", state.pTrend), ("P(mean reversion)", state.pMr), ("P(chop)", state.pChop),
                                        ("sigma", state.sigma), ("sigma EWMA", state.sigmaEwma), ("trend strength", state.ts),
                                        ("spike proxy", state.spikeProxy)]
        return ConsoleHTML.table(["", "value"], rows.map { [$0.0, String(format: "%.5g", $0.1)] }, rowClass: "market-state", empty: "")
            + "<p>\(state.barsUsed) bars, as of \(ConsoleHTML.escape(CausalChain.timestamp(state.asOfMs)))</p>"
    }

    private static func decisionList(_ decisions: [Decision]) -> String {
        guard !decisions.isEmpty else { return "<p class=\"empty\">no decision yet</p>" }
        var latestPerGate: [String: Decision] = [:]
        for decision in decisions { latestPerGate[decision.plugin] = decision }
        func item(_ decision: Decision) -> String {
            "<li class=\"decision \(shortName(decision.verdict).lowercased())\" data-plugin=\"\(ConsoleHTML.escape(decision.plugin))\">"
                + "<b>\(ConsoleHTML.escape(decision.plugin))</b> \(ConsoleHTML.escape(shortName(decision.verdict))) "
                + "\(ConsoleHTML.escape(shortName(decision.reason)))"
                + (decision.detail.isEmpty ? "" : " — \(ConsoleHTML.escape(String(decision.detail.prefix(140))))")
                + " <a href=\"/trace?id=\(ConsoleHTML.urlComponent(decision.subjectID))\">trace</a></li>"
        }
        return "<ul id=\"latest-per-gate\">" + latestPerGate.keys.sorted().map { item(latestPerGate[$0]!) }.joined() + "</ul>"
            + "<h3>newest</h3><ul>" + decisions.suffix(20).reversed().map(item).joined() + "</ul>"
    }

    private static func chains(_ bus: BusConnection, symbol: String) async throws -> String {
        let chains = CausalChain.latest(5, in: try await CausalChain.load(bus, symbol: symbol))
        guard !chains.isEmpty else { return "<p class=\"empty\">no chain yet</p>" }
        return "<ul>" + chains.reversed().map { chain in
            let id = chain.planIDs.first ?? chain.traceIDs.sorted().first ?? ""
            let kinds = chain.records.map(\.kind)
            return "<li class=\"chain\"><a href=\"/trace?id=\(ConsoleHTML.urlComponent(id))\">\(ConsoleHTML.escape(String(id.prefix(16))))</a> "
                + "\(chain.records.count) messages: \(ConsoleHTML.escape(kinds.joined(separator: " → ")))</li>"
        }.joined() + "</ul>"
    }

    static func tail<M: BusMessage>(_ type: M.Type, _ subject: String, last: Int, bus: BusConnection) async throws -> [M] {
        let collected = Mutex<[M]>([])
        try await bus.tail(subject, last: last, follow: false) { message in
            if let decoded = try? M(serializedBytes: message.payload) { collected.withLock { $0.append(decoded) } }
            return true
        }
        return collected.withLock { $0 }
    }
}
