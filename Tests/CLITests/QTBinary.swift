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
