import Foundation
import Synchronization
import XCTest

/// `qt up` as a user runs it, as a child process in a fresh data directory, its output collected.
/// Stopped with SIGINT (Ctrl-C) by `interrupt()`, or when the run is released.
final class QtUpRun {
    let data: URL
    let process: Process
    private let output: Pipe
    private let collected = LineCollector()

    init(_ arguments: [String] = []) throws {
        data = FileManager.default.temporaryDirectory.appendingPathComponent("qt-up-\(UUID().uuidString.prefix(8))")
        (process, output) = try qtProcess(["up", "--data", data.path, "--symbols", "10", "--plain"] + arguments)
        let collected = collected
        output.fileHandleForReading.readabilityHandler = { collected.append($0.availableData) }
        try process.run()
    }

    deinit {
        if process.isRunning { _ = interrupt() }
        try? FileManager.default.removeItem(at: data)
    }

    var text: String { collected.text }

    /// Waits for a status line that counts filled entries and exits; false if none came in time.
    func waitUntilTradedBothWays(seconds: Double = 120) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if text.split(separator: "\n").contains(where: { Self.tradedBothWays(String($0)) }) { return true }
            guard process.isRunning else { return false }
            try await Task.sleep(nanoseconds: 500_000_000)
        }
        return false
    }

    /// The port of the host's HTTP endpoint, from "host: … (node config: …; http :PORT)".
    var httpPort: Int? {
        guard let range = text.range(of: #"http :(\d+)\)"#, options: .regularExpression) else { return nil }
        return Int(text[range].dropFirst("http :".count).dropLast())
    }

    /// Ctrl-C, then everything it printed up to its exit.
    @discardableResult
    func interrupt() -> String {
        if process.isRunning {
            kill(process.processIdentifier, SIGINT)
            process.waitUntilExit()
        }
        output.fileHandleForReading.readabilityHandler = nil
        return text + String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// "[00:00:07] ACTIVE positions 2 · filled 3 in / 1 out · ..."
    static func tradedBothWays(_ line: String) -> Bool {
        guard let range = line.range(of: #"filled (\d+) in / (\d+) out"#, options: .regularExpression) else { return false }
        let numbers = line[range].split(separator: " ").compactMap { Int($0) }
        return numbers.count == 2 && numbers[0] > 0 && numbers[1] > 0
    }
}

final class LineCollector: Sendable {
    private let data = Mutex(Data())
    func append(_ chunk: Data) { data.withLock { $0.append(chunk) } }
    var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
}
