import Bus
import Foundation
import Messages
import Synchronization
import XCTest

/// `qt up --console` in headless Chromium: what an operator sees, read from the DOM the browser
/// built (the server's HTML plus the live updates the page's script applied). Screenshots of every
/// page are kept in `.build/test-artifacts/console/` (or $QT_TEST_ARTIFACTS/console).
final class ConsoleBrowserTests: XCTestCase {
    func testEveryPageHoldsLiveDataTheTracePageShowsACloseAndAHaltNeedsTheOperatorToken() async throws {
        let run = try QtUpRun(["--console", "--console-port", "0"])
        let traded = try await run.waitUntilTradedBothWays()
        XCTAssertTrue(traded, "no entry and exit filled within 120 s:\n\(run.text.suffix(2_000))")
        let console = try XCTUnwrap(Self.match(#"console:\s+(http://127\.0\.0\.1:\d+)/"#, in: run.text), run.text)
        let tokenFile = try XCTUnwrap(Self.match(#"operator token in (\S+)\)"#, in: run.text), run.text)
        let natsURL = try XCTUnwrap(Self.match(#"NATS:\s+(nats://\S+)"#, in: run.text), run.text)
        let bus = try BusConnection(ConnectionOptions(servers: [natsURL], name: "console-test"))
        defer { bus.close() }

        let browser = try HeadlessChromium()
        let page = try await browser.page()
        let artifacts = Self.artifactsDirectory()

        // Overview: live updates arrive, a position row, an equity chart with points.
        try await page.open(console + "/")
        try await page.waitFor("Number(document.body.dataset.updates) >= 2", seconds: 20)
        try await page.waitFor("document.querySelectorAll('#positions tr.position').length >= 1", seconds: 90)
        try await page.waitFor("document.querySelectorAll('#equity-chart circle.point').length >= 3", seconds: 30)
        let figures = try await page.evaluate("document.querySelector('#summary').innerText") as? String ?? ""
        XCTAssertTrue(figures.contains("ACTIVE") && figures.contains("equity (USDT)"), figures)
        try await page.screenshot(to: artifacts.appendingPathComponent("overview.png"))

        // Pipeline: one node per plugin the hosts registered, and the consumers with their lag.
        try await page.open(console + "/pipeline")
        try await page.waitFor("Number(document.body.dataset.updates) >= 1", seconds: 20)
        let registered = try await Self.registeredPlugins(bus)
        XCTAssertEqual(registered.count, 13, "qt up runs every plugin but alert-relay: \(registered)")
        let nodes = try await page.evaluate("[...document.querySelectorAll('#graph g.plugin-node')].map(n => n.dataset.plugin).sort()") as? [String]
        XCTAssertEqual(nodes, registered.sorted())
        let edges = try await page.evaluate("document.querySelectorAll('#graph line.edge').length") as? Int ?? 0
        XCTAssertGreaterThan(edges, 10, "the stage graph links the plugins")
        try await page.waitFor("document.querySelectorAll('#lag tr.consumer').length >= 10", seconds: 10)
        try await page.screenshot(to: artifacts.appendingPathComponent("pipeline.png"))

        // A real close (or reduce) that filled: its symbol's page and its trace.
        let close = try await Self.filledExit(bus)
        try await page.open(console + "/symbol/\(close.symbol)")
        try await page.waitFor("document.querySelectorAll('#decisions li.decision').length >= 1", seconds: 20)
        try await page.waitFor("Number(document.querySelector('#price-chart svg')?.dataset.points ?? 0) >= 10", seconds: 20)
        let gates = try await page.evaluate("[...document.querySelectorAll('#latest-per-gate li')].map(l => l.dataset.plugin)") as? [String] ?? []
        XCTAssertTrue(gates.contains("portfolio-gate") || gates.contains("apply-layer"), "latest decision per gate: \(gates)")
        try await page.waitFor("document.querySelectorAll('#market-state tr.market-state').length >= 5", seconds: 10)
        try await page.screenshot(to: artifacts.appendingPathComponent("symbol.png"))

        try await page.open(console + "/trace?id=\(close.planID)")
        try await page.waitFor("document.querySelectorAll('#chain tr.trace-record').length >= 3", seconds: 20)
        let kinds = try await page.evaluate("[...document.querySelectorAll('#chain tr.trace-record td:nth-child(2)')].map(c => c.innerText)") as? [String] ?? []
        XCTAssertTrue(kinds.contains("plan") && kinds.contains("result") && kinds.contains("decision"), "the chain of \(close.planID): \(kinds)")
        let traceText = try await page.evaluate("document.querySelector('#trace-text').innerText") as? String ?? ""
        XCTAssertTrue(traceText.contains("plan \(close.planID.prefix(12))"), traceText)
        XCTAssertTrue(traceText.contains("qt_orders/qt-"), "the order record is part of the chain: \(traceText)")
        try await page.screenshot(to: artifacts.appendingPathComponent("trace.png"))

        // Control: without the token a halt is refused and nothing changes.
        try await page.open(console + "/control")
        _ = try await page.evaluate("document.getElementById('who').value = 'browser-test'; document.getElementById('action-halt').click(); true")
        try await page.waitFor("document.getElementById('refused') !== null", seconds: 20)
        let refusal = try await page.evaluate("document.getElementById('refused').innerText") as? String ?? ""
        XCTAssertTrue(refusal.contains("operator token is required"), refusal)
        let afterRefusal = try await Self.tradingState(bus)
        XCTAssertEqual(afterRefusal, .active, "a refused halt changes nothing")
        try await page.screenshot(to: artifacts.appendingPathComponent("control-refused.png"))

        // With the token: a confirmation step, then HALTED, recorded with who.
        let token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try await page.open(console + "/control")
        _ = try await page.evaluate("""
            document.getElementById('token').value = \(DevToolsPage.quoted(token));
            document.getElementById('who').value = 'browser-test';
            document.getElementById('reason').value = 'console test';
            document.getElementById('action-halt').click(); true
            """)
        try await page.waitFor("document.getElementById('confirm-question') !== null", seconds: 20)
        let beforeConfirmation = try await Self.tradingState(bus)
        XCTAssertEqual(beforeConfirmation, .active, "nothing changes before the confirmation")
        _ = try await page.evaluate("document.getElementById('confirm').click(); true")
        try await page.waitFor("document.getElementById('result') !== null", seconds: 20)
        let result = try await page.evaluate("document.getElementById('result').innerText") as? String ?? ""
        XCTAssertTrue(result.contains("HALTED"), result)
        let history = try await page.evaluate("document.querySelector('#control-state tr.control-history').innerText") as? String ?? ""
        XCTAssertTrue(history.contains("browser-test (console)"), "the action is recorded with who: \(history)")
        try await page.screenshot(to: artifacts.appendingPathComponent("control-halted.png"))

        let status = try Self.qt(["control", "status", "--server", natsURL])
        XCTAssertTrue(status.contains("trading_state: HALTED") && status.contains("set by browser-test (console)"), status)
        print("console screenshots: \(artifacts.path)")
    }

    // MARK: - helpers

    static func match(_ pattern: String, in text: String) -> String? {
        guard let expression = try? NSRegularExpression(pattern: pattern),
              let found = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
              let range = Range(found.range(at: 1), in: text) else { return nil }
        return String(text[range])
    }

    static func artifactsDirectory() -> URL {
        let root = ProcessInfo.processInfo.environment["QT_TEST_ARTIFACTS"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/test-artifacts")
        return root.appendingPathComponent("console")
    }

    static func registeredPlugins(_ bus: BusConnection) async throws -> [String] {
        let hosts = try await bus.keyValue("qt_hosts")
        var names = Set<String>()
        for key in try await hosts.keys() {
            if let info = try await hosts.get(HostInfo.self, key)?.value { names.formUnion(info.plugins.map(\.name)) }
        }
        return names.sorted()
    }

    static func filledExit(_ bus: BusConnection) async throws -> OrderResult {
        let results = Mutex<[OrderResult]>([])
        try await bus.tail("qt.exec.result.*", last: 1_000, follow: false) { message in
            if let result = try? OrderResult(serializedBytes: message.payload) { results.withLock { $0.append(result) } }
            return true
        }
        let exits = results.withLock { $0 }.filter { [.close, .reduce].contains($0.planKind) && [.filled, .applied].contains($0.status) }
        return try XCTUnwrap(exits.last, "no filled exit among the order results")
    }

    static func tradingState(_ bus: BusConnection) async throws -> TradingState {
        try await bus.keyValue("qt_control").get(Control.self, "trading_state")?.value.tradingState ?? .active
    }

    static func qt(_ arguments: [String]) throws -> String {
        let (process, output) = try qtProcess(arguments)
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }
}
