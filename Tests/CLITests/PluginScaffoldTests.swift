import Foundation
import Host
import Plugins
import XCTest

/// `qt plugins new --lang c`: what it writes builds with make and loads as a plugin.
final class PluginScaffoldTests: XCTestCase {
    func testANewCPluginBuildsWithMakeAndItsNodeConfigLoadsIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-scaffold-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let created = try Self.run(try qtBinary().path, ["plugins", "new", "--lang", "c", "bar-counter", "--dir", directory.path])
        XCTAssertEqual(created.status, 0, created.output)
        let plugin = directory.appendingPathComponent("bar-counter")
        for file in ["bar_counter.c", "Makefile", "test-node.yaml", "include/qt_plugin.h", "proto/qt/v1/market.pb-c.c"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: plugin.appendingPathComponent(file).path), "\(file) written")
        }
        let again = try Self.run(try qtBinary().path, ["plugins", "new", "--lang", "c", "bar-counter", "--dir", directory.path])
        XCTAssertNotEqual(again.status, 0, "an existing directory is not overwritten")

        let built = try Self.run("/usr/bin/make", ["-s", "-C", plugin.path])
        XCTAssertEqual(built.status, 0, built.output)
        let yaml = try String(contentsOf: plugin.appendingPathComponent("test-node.yaml"), encoding: .utf8)
        let config = try NodeConfig.parse(yaml, file: "test-node.yaml", registry: PluginCatalog.registry)
        let entry = try XCTUnwrap(config.plugins.first)
        XCTAssertEqual(entry.library?.manifest.name, "bar-counter")
        XCTAssertEqual(entry.library?.manifest.inputs.map(\.subject), ["qt.market.kline.*"])
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
