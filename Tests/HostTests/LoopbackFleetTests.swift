import Foundation
import XCTest

/// Issue 18: `deploy/loopback-fleet --check` follows deploy/README.md on this machine, from nothing
/// to a three-node fleet (TLS, generated identities, three servers, three hosts) that trades on the
/// simulator; the operator halts it, the ledger must equal the exchange, and it stops.
final class LoopbackFleetTests: XCTestCase {
    func testTheRunbookBringsUpAThreeNodeFleetFromNothing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-fleet-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let qt = try XCTUnwrap([binaries.appendingPathComponent("qt"),
                                Bundle(for: Self.self).bundleURL.deletingLastPathComponent().appendingPathComponent("qt")]
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }, "qt not built")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [TLSTests.repositoryRoot.appendingPathComponent("deploy/loopback-fleet").path, directory.path, "--check"]
        process.environment = ProcessInfo.processInfo.environment.merging(["QT": qt.path]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 360, execute: watchdog)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        watchdog.cancel()
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("READY"), text)
        let fleet = (try? String(contentsOf: directory.appendingPathComponent("fleet.txt"), encoding: .utf8)) ?? ""
        for host in ["node-a", "node-b", "node-c"] { XCTAssertTrue(fleet.contains(host), "qt fleet lists \(host):\n\(fleet)") }
        let ledger = (try? String(contentsOf: directory.appendingPathComponent("ledger.txt"), encoding: .utf8)) ?? ""
        XCTAssertGreaterThan(ledger.split(separator: "\n").count, 1, "the fleet placed an order:\n\(ledger)")
        let books = (try? String(contentsOf: directory.appendingPathComponent("books.txt"), encoding: .utf8)) ?? ""
        XCTAssertTrue(books.contains("books: ledger = exchange for all"), "the reader's `qt ledger check`:\n\(books)\n\(text.suffix(2000))")
        let halted = (try? String(contentsOf: directory.appendingPathComponent("halt.txt"), encoding: .utf8)) ?? ""
        XCTAssertTrue(halted.contains("HALTED"), "the operator halted trading:\n\(halted)")
        for host in ["a", "b", "c"] {
            let log = (try? String(contentsOf: directory.appendingPathComponent("host-\(host).log"), encoding: .utf8)) ?? ""
            XCTAssertFalse(log.contains("Permissions Violation"), "host-\(host):\n\(log.suffix(2000))")
            // A crash report's cause sits above its thread dump, which fills any tail of the log.
            let cause = log.split(separator: "\n").filter { $0.contains("crashed") || $0.contains("Fatal error") || $0.contains("at /") }.prefix(20)
            XCTAssertTrue(log.contains("stopped"), "host-\(host) drained and stopped:\n\(cause.joined(separator: "\n"))\n\(log.suffix(2000))")
        }
    }
}
