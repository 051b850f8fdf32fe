@testable import Host
import Messages
import TestPlugins
import XCTest

final class NodeConfigTests: XCTestCase {
    private func parse(_ yaml: String, environment: [String: String] = ["QT_TEST_NATS_PASSWORD": "s3cret-from-env"]) throws -> NodeConfig {
        try NodeConfig.parse(yaml, file: "node.yaml", registry: TestPlugins.registry, environment: environment)
    }

    private func error(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
        do {
            _ = try parse(yaml)
            XCTFail("expected a config error", file: file, line: line)
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
            return nil
        }
    }

    func testAValidConfigFillsDefaults() throws {
        let config = try parse("""
        host_id: node-a
        nats:
          servers: [nats://127.0.0.1:4222, nats://127.0.0.1:4223]
          user: qt
          password_env: QT_TEST_NATS_PASSWORD
        replicas: 3
        plugins:
          relay-a: { delay_ms: 5 }
          relay-b: { shadow: true }
        """)
        XCTAssertEqual(config.hostID, "node-a")
        XCTAssertEqual(config.nats.servers, ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"])
        XCTAssertEqual(config.nats.user, "qt")
        XCTAssertEqual(config.nats.password, "s3cret-from-env")
        XCTAssertEqual(config.replicas, 3)
        XCTAssertEqual(config.httpPort, 9464)
        XCTAssertEqual(config.plugins.map(\.name), ["relay-a", "relay-b"])
        XCTAssertEqual(try config.plugins[0].settings.int("delay_ms"), 5)
        XCTAssertFalse(config.plugins[0].settings.shadow)
        XCTAssertTrue(config.plugins[1].settings.shadow)
    }

    /// Issue 18: a node config holds no secret: inline passwords and tokens, and URLs with
    /// credentials, are refused naming the key and the alternatives; `_file` and `_env` work.
    func testSecretsComeFromFilesOrTheEnvironmentNeverInline() throws {
        let inline = error("host_id: a\nnats: { servers: [nats://127.0.0.1:4222], user: qt, password: hunter2 }\nplugins: { relay-a: {} }\n")
        XCTAssertEqual(inline?.key, "nats.password")
        XCTAssertTrue(inline?.message.contains("password_file") == true, "\(String(describing: inline))")
        XCTAssertFalse("\(String(describing: inline))".contains("hunter2"), "the error never repeats the secret")
        let token = error("host_id: a\nnats: { servers: [nats://127.0.0.1:4222], token: t0ken }\nplugins: { relay-a: {} }\n")
        XCTAssertEqual(token?.key, "nats.token")
        let url = error("host_id: a\nnats: { servers: [\"nats://qt:hunter2@127.0.0.1:4222\"] }\nplugins: { relay-a: {} }\n")
        XCTAssertEqual(url?.key, "nats.servers")
        XCTAssertTrue(url?.message.contains("nats://***@127.0.0.1:4222") == true, "\(String(describing: url))")
        XCTAssertFalse("\(String(describing: url))".contains("hunter2"))

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qt-token-\(UUID().uuidString.prefix(6))")
        try SecretFile.write("t0ken-from-file\n", to: file.path)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try parse("host_id: a\nnats: { servers: [nats://127.0.0.1:4222], token_file: \(file.path) }\nplugins: { relay-a: {} }\n")
        XCTAssertEqual(fromFile.nats.token, "t0ken-from-file")
        XCTAssertEqual(SecretFile.permissions(of: file.path), 0o600, "SecretFile creates 0600")
        let unset = error("host_id: a\nnats: { servers: [nats://127.0.0.1:4222], token_env: QT_TEST_UNSET_TOKEN }\nplugins: { relay-a: {} }\n")
        XCTAssertTrue(unset?.message.contains("QT_TEST_UNSET_TOKEN is not set") == true, "\(String(describing: unset))")
    }

    func testTheExchangeSectionReachesPluginsWithDefaultsAndABadURLIsNamed() throws {
        let config = try parse("""
        host_id: node-a
        nats: { servers: [nats://127.0.0.1:4222] }
        exchange: { base_url: "https://testnet.binancefuture.com", secret_env: BINANCE_SECRET }
        plugins:
          relay-a: {}
        """)
        XCTAssertEqual(config.exchange, ExchangeSettings(baseURL: "https://testnet.binancefuture.com", keyVariable: "QT_API_KEY",
                                                         secretVariable: "BINANCE_SECRET"))
        let none = try parse("host_id: a\nnats: { servers: [nats://127.0.0.1:4222] }\nplugins: { relay-a: {} }\n")
        XCTAssertNil(none.exchange)
        XCTAssertEqual(error("""
        host_id: node-a
        nats: { servers: [nats://127.0.0.1:4222] }
        exchange: { base_url: fapi.binance.com }
        plugins:
          relay-a: {}
        """)?.description, "node.yaml:3: exchange.base_url: expected an http:// or https:// URL, got fapi.binance.com")
    }

    func testUnknownPluginNamesFileLineKeyAndChoices() {
        let error = error("""
        host_id: node-a
        nats: { servers: [nats://127.0.0.1:4222] }
        plugins:
          relay-a: {}
          govrnor: {}
        """)
        XCTAssertEqual(error?.description,
                       "node.yaml:5: plugins.govrnor: unknown plugin; valid choices: broken, counter, feed, relay-a, relay-b, sequencer, strict, ticker")
    }

    func testUnknownPluginKeyListsTheDeclaredKeys() {
        let error = error("""
        host_id: node-a
        nats: { servers: [nats://127.0.0.1:4222] }
        plugins:
          relay-a: { delay: 5 }
        """)
        XCTAssertEqual(error?.key, "plugins.relay-a.delay")
        XCTAssertEqual(error?.message, "unknown key")
        XCTAssertEqual(error?.choices, ["ack_wait_s", "delay_ms", "shadow"])
        XCTAssertEqual(error?.line, 4)
    }

    func testWrongTypesAndMissingKeysAreNamed() {
        XCTAssertEqual(error("""
        host_id: node-a
        nats: { servers: [nats://127.0.0.1:4222] }
        plugins:
          relay-a: { delay_ms: soon }
        """)?.description, "node.yaml:4: plugins.relay-a.delay_ms: expected an integer, got soon")
        XCTAssertEqual(error("""
        nats: { servers: [nats://127.0.0.1:4222] }
        plugins: { relay-a: {} }
        """)?.key, "host_id")
        XCTAssertEqual(error("""
        host_id: node-a
        nats: { servers: [nats://127.0.0.1:4222] }
        replica: 3
        plugins: { relay-a: {} }
        """)?.description, "node.yaml:3: replica: unknown key; valid choices: host_id, nats, replicas, http_port, http_address, exchange, plugins")
        XCTAssertEqual(error("""
        host_id: node.a
        nats: { servers: [nats://127.0.0.1:4222] }
        plugins: { relay-a: {} }
        """)?.key, "host_id")
        XCTAssertEqual(error("""
        host_id: node-a
        nats: { servers: [nats://127.0.0.1:4222] }
        plugins: { relay-a: { shadow: maybe } }
        """)?.message, "expected true or false")
    }

    func testAFileThatDoesNotExistIsNamed() {
        XCTAssertThrowsError(try NodeConfig.load(path: "/nonexistent/node.yaml", registry: TestPlugins.registry)) { error in
            XCTAssertEqual((error as? ConfigError)?.description, "/nonexistent/node.yaml: cannot read the file")
        }
    }
}

final class EmptyPluginListTests: XCTestCase {
    func testAConfigThatRunsNothingIsAnErrorListingTheChoices() {
        XCTAssertThrowsError(try NodeConfig.parse("host_id: a\nnats: { servers: [nats://127.0.0.1:4222] }\nplugins: {}\n",
                                                  file: "node.yaml", registry: TestPlugins.registry)) { error in
            XCTAssertEqual((error as? ConfigError)?.description,
                           "node.yaml:3: plugins: names no plugin to run; valid choices: broken, counter, feed, relay-a, relay-b, sequencer, strict, ticker")
        }
    }
}

final class ManifestCheckTests: XCTestCase {
    func testAnOutputOfTheWrongTypeIsRefusedAtStart() {
        let manifest = PluginManifest(name: "confused", version: "1",
                                      outputs: [OutputSpec("plans", subject: "qt.plan.sized.*", type: Kline.self)])
        XCTAssertThrowsError(try PluginHost.checkOutputs(manifest)) { error in
            XCTAssertEqual("\(error)", "plugin confused output plans: qt.plan.sized.* carries qt.v1.Plan, not qt.v1.Kline")
        }
        let nowhere = PluginManifest(name: "lost", version: "1",
                                     outputs: [OutputSpec("x", subject: "qt.nowhere.*", type: Kline.self)])
        XCTAssertThrowsError(try PluginHost.checkOutputs(nowhere)) { error in
            XCTAssertEqual("\(error)", "plugin lost output x: no stream owns qt.nowhere.*")
        }
        XCTAssertNoThrow(try PluginHost.checkOutputs(TestPlugins.registry["relay-a"]!.manifest))
    }
}
