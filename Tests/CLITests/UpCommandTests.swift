import Foundation
import Synchronization
import XCTest

/// `qt up` as a user runs it: a child process with its own nats-server, simulator and host.
final class UpCommandTests: XCTestCase {
    /// It trades (entries and exits fill on the simulator), and Ctrl-C (SIGINT) stops it with a
    /// summary, leaving no nats-server behind.
    func testQtUpTradesOnTheSimulatorAndCtrlCStopsEverythingWithASummary() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("qt-up-test-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: data) }
        let (process, output) = try qtProcess(["up", "--data", data.path, "--symbols", "10", "--plain"])
        let lines = LineCollector()
        output.fileHandleForReading.readabilityHandler = { lines.append($0.availableData) }
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // A status line a second: wait until it counts filled entries and exits.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, !lines.text.split(separator: "\n").contains(where: { Self.tradedBothWays(String($0)) }) {
            Thread.sleep(forTimeInterval: 0.5)
        }
        XCTAssertTrue(lines.text.split(separator: "\n").contains { Self.tradedBothWays(String($0)) },
                      "no entry and exit filled within 120 s:\n\(lines.text.suffix(2_000))")
        XCTAssertTrue(lines.text.contains("host:       13 plugins in this process"), lines.text)

        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
        let text = lines.text + String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, text.suffix(2_000).description)
        XCTAssertTrue(text.contains("summary:"), text.suffix(2_000).description)
        XCTAssertTrue(text.contains("  dead letters       0"), text.suffix(2_000).description)
        XCTAssertTrue(text.contains("stopped:    host, simulator and NATS closed cleanly"), text.suffix(2_000).description)
        XCTAssertEqual(try Self.processesMentioning(data.path), [], "no child outlives qt up")
    }

    /// "[00:00:07] ACTIVE positions 2 · filled 3 in / 1 out · ..."
    static func tradedBothWays(_ line: String) -> Bool {
        guard let range = line.range(of: #"filled (\d+) in / (\d+) out"#, options: .regularExpression) else { return false }
        let numbers = line[range].split(separator: " ").compactMap { Int($0) }
        return numbers.count == 2 && numbers[0] > 0 && numbers[1] > 0
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

final class LineCollector: Sendable {
    private let data = Mutex(Data())
    func append(_ chunk: Data) { data.withLock { $0.append(chunk) } }
    var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
}
