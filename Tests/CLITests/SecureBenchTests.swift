import Foundation
import NatsServerKit
import XCTest

/// Issue 18: `qt bench e2e --secure` runs the entry and exit paths with every plugin on its own
/// identity over TLS (a server that knows only the generated identities), trades, and ends with
/// the ledger equal to the exchange, with no request refused by the server.
final class SecureBenchTests: XCTestCase {
    func testTheEndToEndBenchmarkTradesOnIdentitiesOverTLSAndTheBooksAgree() throws {
        let certificates = FileManager.default.temporaryDirectory.appendingPathComponent("qt-bench-tls-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: certificates) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let made = try ChildProcess.run(URL(fileURLWithPath: "/bin/bash"), [root.appendingPathComponent("deploy/tls/make-certs").path, certificates.path])
        XCTAssertEqual(made.status, 0, made.stderr)

        let (process, output) = try qtProcess(["bench", "e2e", "--rate", "20", "--duration", "4", "--ladder", "10", "--symbols", "40",
                                               "--rss-seconds", "0", "--high-rate", "0", "--stage-times", "--secure", "--certificates", certificates.path])
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, String(text.suffix(3_000)))
        XCTAssertTrue(text.contains("(TLS, one identity per plugin)"), String(text.prefix(2_000)))
        XCTAssertTrue(text.contains("books: ledger = exchange for all 40 symbols ("), String(text.suffix(3_000)))
        XCTAssertTrue(text.contains("no claim pending"), String(text.suffix(3_000)))
        let entries = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("latency at 20/s") }, String(text.suffix(3_000)))
        XCTAssertFalse(entries.contains(": 0/"), "no entry reached the ledger: \(entries)")
        // Each plugin's step of an entry's chain, from one stored message to the next.
        for stage in ["publish → stored", "intent-bridge", "governor", "portfolio-gate", "executor (to the ledger commit)", "ledger commit → seen"] {
            XCTAssertTrue(entries.contains(stage + " "), "no \(stage) stage time: \(entries)")
        }
        // The exchange calls alone, spaced as the intents were: one pair per intent of the run.
        XCTAssertTrue(text.contains("exchange floor paced at 20/s (one pair every 50 ms, as the intents come): n=80 "), String(text.suffix(3_000)))
        let exits = text.split(separator: "\n").filter { $0.hasPrefix("exit latency") }
        XCTAssertEqual(exits.count, 2, String(text.suffix(3_000)))
        for line in exits { XCTAssertFalse(line.contains(": 0/"), "no exit reached the ledger: \(line)") }
        XCTAssertFalse(text.contains("Permissions Violation"), String(text.suffix(3_000)))
        XCTAssertFalse(text.contains("Authorization Violation"), String(text.suffix(3_000)))
    }
}
