import Foundation
import XCTest

/// `qt up` as a user runs it: a child process with its own nats-server, simulator and host.
final class UpCommandTests: XCTestCase {
    /// It trades (entries and exits fill on the simulator), and Ctrl-C (SIGINT) stops it with a
    /// summary, leaving no nats-server behind.
    func testQtUpTradesOnTheSimulatorAndCtrlCStopsEverythingWithASummary() async throws {
        let run = try QtUpRun()
        let traded = try await run.waitUntilTradedBothWays()
        XCTAssertTrue(traded, "no entry and exit filled within 120 s:\n\(run.text.suffix(2_000))")
        XCTAssertTrue(run.text.contains("host:       13 plugins in this process"), run.text)

        let text = run.interrupt()
        XCTAssertEqual(run.process.terminationStatus, 0, text.suffix(2_000).description)
        XCTAssertTrue(text.contains("summary:"), text.suffix(2_000).description)
        XCTAssertTrue(text.contains("  dead letters       0"), text.suffix(2_000).description)
        XCTAssertTrue(text.contains("stopped:    host, simulator and NATS closed cleanly"), text.suffix(2_000).description)
        XCTAssertEqual(try Self.processesMentioning(run.data.path), [], "no child outlives qt up")
    }

    /// Command lines of running processes that contain `text` (from /proc).
    static func processesMentioning(_ text: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { Int($0) != nil }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let command = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return command.contains(text) ? command : nil
        }
    }
}
