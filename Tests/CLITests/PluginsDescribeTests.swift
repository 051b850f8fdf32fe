import Foundation
import Host
import NatsServerKit
import Plugins
import XCTest

/// `qt plugins describe` prints every plugin's contract from its manifest.
final class PluginsDescribeTests: XCTestCase {
    func testEveryPluginsInputsOutputsBucketsAndSettingsAreDescribed() throws {
        let all = try ChildProcess.run(try qtBinary(), ["plugins", "describe"])
        XCTAssertEqual(all.status, 0, all.stderr)
        let registry = PluginCatalog.registry
        XCTAssertEqual(registry.names.count, 14)
        for name in registry.names {
            XCTAssertTrue(all.stdout.contains("\n\(name) ") || all.stdout.hasPrefix("\(name) "), name)
            let result = try ChildProcess.run(try qtBinary(), ["plugins", "describe", name])
            let manifest = try XCTUnwrap(registry[name]).manifest
            XCTAssertTrue(result.stdout.contains("\(name) \(manifest.version)"), name)
            for input in manifest.inputs { XCTAssertTrue(result.stdout.contains(input.subject), "\(name) in \(input.name)") }
            for output in manifest.outputs { XCTAssertTrue(result.stdout.contains(output.subject), "\(name) out \(output.name)") }
            for key in manifest.config {
                let line = result.lines.first { $0.hasPrefix("    \(key.name) ") }
                XCTAssertNotNil(line, "\(name).\(key.name)")
                let suffix = key.help + (key.rangeDescription.map { " (\($0))" } ?? "")
                XCTAssertTrue(line?.hasSuffix(suffix) == true, "\(name).\(key.name): \(line ?? "")")
            }
        }
    }

    func testAnUnknownNameListsTheChoices() throws {
        let result = try ChildProcess.run(try qtBinary(), ["plugins", "describe", "governer"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("no plugin named governer; choices: ai-agent"), result.stderr)
    }
}
