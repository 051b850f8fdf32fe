import Foundation
import XCTest

/// The `qt` binary built by the same `swift build --build-tests`, next to the test bundle.
func qtBinary() throws -> URL {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qt"),
        Bundle(for: CLITests.self).bundleURL.deletingLastPathComponent().appendingPathComponent("qt"),
    ]
    return try XCTUnwrap(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) },
                         "qt binary not found next to the test bundle")
}

/// A `qt` child with `arguments`, nats-server on its PATH, stdout and stderr into one pipe (not started).
func qtProcess(_ arguments: [String]) throws -> (process: Process, output: Pipe) {
    let process = Process()
    process.executableURL = try qtBinary()
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["PATH"] = "/usr/local/bin:" + (environment["PATH"] ?? "")
    process.environment = environment
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    return (process, output)
}
