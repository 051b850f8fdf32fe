import Host
import InMemoryHost
import Messages
import Plugins
import XCTest

/// What the in-memory host and the node config refuse before a plugin runs: the same errors a
/// real host gives at start.
final class PluginContractTests: XCTestCase {
    /// A plugin whose code reads a setting its manifest does not declare (a typo in the code).
    final class Misspelled: Plugin {
        static let registration = PluginRegistration(
            manifest: PluginManifest(name: "misspelled", version: "1.0.0",
                                     config: [ConfigKey("max_leverage", .int, default: .int(10))]),
            make: { setup in
                _ = try setup.settings.int("max_leverge")
                return Misspelled()
            })

        func handle(_ input: Input, context: HandlerContext) async throws {}
    }

    func testAPluginReadingAnUndeclaredSettingIsRefusedAtStartNotATrap() async throws {
        let host = InMemoryHost()
        do {
            try await host.start(Misspelled.registration)
            XCTFail("started a plugin that reads an undeclared setting")
        } catch let error as PluginError {
            XCTAssertEqual(error, .contract("setting max_leverge is not declared as an integer; declared: max_leverage"))
        }
    }

    func testASettingTypoIsAConfigErrorWithFileLineKeyAndChoices() async throws {
        let host = InMemoryHost()
        do {
            try await host.start(IntentBridgePlugin.registration, settings: ["min_confidense": "0.6"])
            XCTFail("started with a misspelled setting")
        } catch let error as ConfigError {
            XCTAssertEqual(error.key, "plugins.intent-bridge.min_confidense")
            XCTAssertEqual(error.message, "unknown key")
            XCTAssertEqual(error.choices, ["ack_wait_s", "min_confidence", "shadow"])
            XCTAssertNotNil(error.line)
        }
    }

    func testANumberThatIsNotFiniteIsAConfigError() async throws {
        let host = InMemoryHost()
        do {
            try await host.start(IntentBridgePlugin.registration, settings: ["min_confidence": ".inf"])
            XCTFail("started with an infinite setting")
        } catch let error as ConfigError {
            XCTAssertEqual(error.key, "plugins.intent-bridge.min_confidence")
            XCTAssertTrue(error.message.contains("finite"), error.message)
        }
    }
}
