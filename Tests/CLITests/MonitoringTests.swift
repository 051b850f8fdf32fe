import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NatsServerKit
import XCTest

/// Issue 21: `deploy/prometheus` and `deploy/grafana` are checked by the tools that read them
/// (promtool; Grafana has no linter in Debian, so the dashboard is read as JSON here), and every
/// series they read must be one a real host serves: a panel or a rule over a name nobody
/// exports stays empty and never fires, which is the failure this guards against.
final class MonitoringTests: XCTestCase {
    private static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy")
    private static let promtool = "/usr/bin/promtool"

    func testPromtoolAcceptsTheScrapeConfigAndTheRulesAndTheRulesUnitTestsPass() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.promtool) else {
            return XCTFail("promtool is missing: scripts/deps installs Debian's prometheus package")
        }
        let prometheus = Self.deploy.appendingPathComponent("prometheus")
        for arguments in [["check", "config", prometheus.appendingPathComponent("prometheus.yml").path],
                          ["check", "rules", prometheus.appendingPathComponent("rules.yml").path],
                          ["test", "rules", prometheus.appendingPathComponent("rules-test.yml").path]] {
            let result = try ChildProcess.run(URL(fileURLWithPath: Self.promtool), arguments)
            XCTAssertEqual(result.status, 0, "promtool \(arguments.joined(separator: " ")):\n\(result.stdout)\n\(result.stderr)")
        }
    }

    func testTheDashboardIsGrafanaJSONWhosePanelsAllQueryPrometheus() throws {
        let panels = try Self.dashboardPanels()
        XCTAssertGreaterThanOrEqual(panels.filter { $0.type != "row" }.count, 15)
        for panel in panels where panel.type != "row" {
            XCTAssertFalse(panel.exprs.isEmpty, "panel \"\(panel.title)\" has no query")
            XCTAssertTrue(panel.exprs.allSatisfy { !Self.selectors(in: $0).isEmpty || $0.contains("up{") },
                          "panel \"\(panel.title)\" reads no series: \(panel.exprs)")
        }
        let titles = Set(panels.map(\.title))
        for wanted in ["Messages in per second", "Handler latency p99", "Consumer lag", "Dead letters (15 min)", "Orders per minute",
                       "Equity and wallet balance", "Unrealized PnL", "Exchange weight spent this minute"] {
            XCTAssertTrue(titles.contains(wanted), "the dashboard has a panel \"\(wanted)\"")
        }
    }

    /// `qt up` (one host with every plugin) trades on the simulator; then its `/metrics` must hold
    /// a series for every selector in the dashboard and the rules, label matchers included.
    func testEverySeriesTheDashboardAndTheRulesReadIsServedByARealHost() async throws {
        let wanted = try Self.dashboardPanels().flatMap(\.exprs).flatMap(Self.selectors) + (try Self.ruleExpressions()).flatMap(Self.selectors)
        XCTAssertGreaterThan(Set(wanted.map(\.name)).count, 8, "selectors found: \(wanted)")

        let run = try QtUpRun()
        _ = try await run.waitUntilTradedBothWays()
        let port = try XCTUnwrap(run.httpPort, "qt up printed no http port:\n\(run.text.suffix(2_000))")

        // The account and trading-state gauges come with the next poll and sentinel tick after the trades.
        var missing = wanted
        var exposition = ""
        let seenBy = Date().addingTimeInterval(30)
        repeat {
            let (body, response) = try await URLSession.shared.data(from: try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)/metrics")))
            XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 200)
            exposition = String(decoding: body, as: UTF8.self)
            let series = Self.series(in: exposition)
            missing = wanted.filter { selector in !series.contains { selector.matches($0) } }
            if !missing.isEmpty { try await Task.sleep(nanoseconds: 1_000_000_000) }
        } while !missing.isEmpty && Date() < seenBy
        XCTAssertEqual(missing.map(\.text), [], "read by deploy/ but not served by the host; its /metrics names:\n"
                       + Set(Self.series(in: exposition).map(\.name)).sorted().joined(separator: "\n"))
    }

    // MARK: reading the files

    struct Panel {
        let title: String
        let type: String
        let exprs: [String]
    }

    static func dashboardPanels() throws -> [Panel] {
        let data = try Data(contentsOf: deploy.appendingPathComponent("grafana/quantum-trader.json"))
        guard let dashboard = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Unreadable("deploy/grafana/quantum-trader.json: expected a JSON object")
        }
        guard dashboard["uid"] as? String == "quantum-trader", let panels = dashboard["panels"] as? [[String: Any]] else {
            throw Unreadable("deploy/grafana/quantum-trader.json: expected uid \"quantum-trader\" and a panels array")
        }
        return panels.map { panel in
            let targets = panel["targets"] as? [[String: Any]] ?? []
            return Panel(title: panel["title"] as? String ?? "", type: panel["type"] as? String ?? "",
                         exprs: targets.compactMap { $0["expr"] as? String })
        }
    }

    /// Each rule's `expr`, a one-line value or a folded block (`>-`) of the lines indented below it.
    static func ruleExpressions() throws -> [String] {
        let lines = try String(contentsOf: deploy.appendingPathComponent("prometheus/rules.yml"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var expressions: [String] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            index += 1
            guard let range = line.range(of: "expr:") , line[..<range.lowerBound].allSatisfy({ $0 == " " }) else { continue }
            let value = line[range.upperBound...].trimmingCharacters(in: .whitespaces)
            guard value == ">-" || value == "|" || value == ">" else {
                expressions.append(value)
                continue
            }
            let indent = line.prefix { $0 == " " }.count
            var block: [String] = []
            while index < lines.count, lines[index].prefix(while: { $0 == " " }).count > indent || lines[index].isEmpty {
                block.append(lines[index].trimmingCharacters(in: .whitespaces))
                index += 1
            }
            expressions.append(block.joined(separator: " "))
        }
        return expressions
    }

    // MARK: selectors and series

    struct Matcher {
        let label: String
        let op: String
        let value: String

        func accepts(_ labels: [String: String]) -> Bool {
            let actual = labels[label] ?? ""
            switch op {
            case "=": return actual == value
            case "!=": return actual != value
            case "=~": return actual.range(of: "^(?:\(value))$", options: .regularExpression) != nil
            default: return actual.range(of: "^(?:\(value))$", options: .regularExpression) == nil
            }
        }
    }

    struct Selector {
        let text: String
        let name: String
        let matchers: [Matcher]

        func matches(_ series: Series) -> Bool {
            series.name == name && matchers.allSatisfy { $0.accepts(series.labels) }
        }
    }

    struct Series {
        let name: String
        let labels: [String: String]
    }

    struct Unreadable: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The `qt_*` series selectors of a PromQL expression, with their label matchers.
    static func selectors(in expression: String) -> [Selector] {
        let pattern = try! NSRegularExpression(pattern: #"\b(qt_[a-z0-9_]+)(\{([^}]*)\})?"#)
        let text = expression as NSString
        return pattern.matches(in: expression, range: NSRange(location: 0, length: text.length)).map { match in
            let name = text.substring(with: match.range(at: 1))
            let body = match.range(at: 3).location == NSNotFound ? "" : text.substring(with: match.range(at: 3))
            return Selector(text: text.substring(with: match.range), name: name, matchers: labelPairs(body).map {
                Matcher(label: $0.label, op: $0.op, value: $0.value)
            })
        }
    }

    /// `a="x", b=~"y"` as (label, operator, value).
    static func labelPairs(_ body: String) -> [(label: String, op: String, value: String)] {
        let pattern = try! NSRegularExpression(pattern: #"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)""#)
        let text = body as NSString
        return pattern.matches(in: body, range: NSRange(location: 0, length: text.length)).map { match in
            (text.substring(with: match.range(at: 1)), text.substring(with: match.range(at: 2)), text.substring(with: match.range(at: 3)))
        }
    }

    /// The series of a Prometheus text exposition (comments skipped).
    static func series(in exposition: String) -> [Series] {
        exposition.split(separator: "\n").compactMap { line -> Series? in
            guard !line.hasPrefix("#"), let nameEnd = line.firstIndex(where: { $0 == "{" || $0 == " " }) else { return nil }
            let name = String(line[..<nameEnd])
            guard line[nameEnd] == "{", let close = line.lastIndex(of: "}") else { return Series(name: name, labels: [:]) }
            let body = String(line[line.index(after: nameEnd)..<close])
            return Series(name: name, labels: Dictionary(labelPairs(body).map { ($0.label, $0.value) }) { first, _ in first })
        }
    }
}
