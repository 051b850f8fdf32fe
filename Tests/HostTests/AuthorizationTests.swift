import Bus
import Foundation
import Host
import Messages
import NatsServerKit
import Plugins
import Synchronization
import XCTest

/// Issue 18: a real nats-server started with the authorization `qt auth generate` writes from
/// the plugin manifests. Each refusal is asserted as the server's own permissions violation,
/// beside something the same identity may do (so a server that refused everything would fail).
final class AuthorizationTests: XCTestCase {
    private var server: NatsServer!
    private var directory: URL!
    private var written: AuthorizationFile.Written!

    static let everyPlugin = PluginCatalog.registry.names

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-auth-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = try NodeConfig.parse("""
            host_id: auth-a
            nats: { servers: [nats://127.0.0.1:4222] }
            plugins:
            \(Self.everyPlugin.map { "  \($0): {}" }.joined(separator: "\n"))
            """, file: "auth-a.yaml", registry: PluginCatalog.registry)
        let identities = try FleetIdentities.plan(configs: [config], registry: PluginCatalog.registry,
                                                  partitioning: try Partitioning(count: Partitioning.defaultCount))
        written = try AuthorizationFile.generate(identities, into: directory.path)
        let serverConfig = directory.appendingPathComponent("nats.conf")
        try "include \"\(AuthorizationFile.fileName)\"\n".write(to: serverConfig, atomically: true, encoding: .utf8)
        server = try NatsServer(extraArguments: ["-c", serverConfig.path])
        let admin = try connect(as: "admin")
        defer { admin.close() }
        _ = try await DeploymentProvisioning.provision(admin, replicas: 1, configs: [config], registry: PluginCatalog.registry)
    }

    override func tearDown() async throws {
        server?.stop()
        server = nil
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func connect(as identity: String) throws -> BusConnection {
        var options = ConnectionOptions(servers: [server.url], name: "auth-test-\(identity)")
        options.nkeySeedFile = directory.appendingPathComponent(AuthorizationFile.seedDirectory)
            .appendingPathComponent(FleetIdentity.seedFileName(identity)).path
        options.inboxPrefix = FleetIdentity.inboxPrefix(identity)
        options.jetStreamWaitMs = 1_000
        options.maxReconnectAttempts = 0
        return try BusConnection(options)
    }

    /// `body` must fail, and the server must report a permissions violation naming `subject`.
    private func assertRefused(_ bus: BusConnection, _ subject: String, _ label: String, file: StaticString = #filePath, line: UInt = #line,
                               _ body: () async throws -> Void) async {
        do {
            try await body()
            XCTFail("\(label): succeeded", file: file, line: line)
        } catch {}
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            if bus.serverErrors.permissionViolations.contains(where: { $0.text.contains(subject) }) { return }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTFail("\(label): no permissions violation for \(subject) from the server; it reported \(bus.serverErrors.reports)", file: file, line: line)
    }

    private func intent(_ symbol: String) throws -> OutgoingMessage {
        var intent = TradeIntent()
        intent.intentID = "auth-\(UUID().uuidString)"
        intent.symbol = symbol
        intent.action = .openLong
        intent.confidence = 0.9
        intent.model = "auth-test"
        intent.meta.eventTimeMs = Int64(Date().timeIntervalSince1970 * 1000)
        return try OutgoingMessage(intent, subject: Subjects.intent(symbol), id: intent.intentID, producer: "auth-test")
    }

    private func plan(_ symbol: String, on subject: String) throws -> OutgoingMessage {
        var plan = Plan()
        plan.planID = "auth-\(UUID().uuidString)"
        plan.symbol = symbol
        plan.kind = .open
        plan.side = .buy
        plan.quantity = "1"
        return try OutgoingMessage(plan, subject: subject, id: plan.planID, producer: "auth-test")
    }

    private func ledgerEntry(_ symbol: String) -> LedgerEntry {
        var entry = LedgerEntry()
        entry.symbol = symbol
        entry.positionAmt = "0"
        return entry
    }

    func testTheAIAgentMayPublishIntentsAndNothingThatTrades() async throws {
        let agent = try connect(as: "ai-agent")
        defer { agent.close() }
        do { _ = try await agent.publish(try intent("BTCUSDT")) } catch { XCTFail("\(error): \(agent.serverErrors.reports)"); throw error }
        let state = try await agent.keyValue("qt_state")
        var own = PluginState()
        own.plugin = "ai-agent"
        own.name = "auth"
        _ = try await state.put("ai-agent.auth", message: own)

        await assertRefused(agent, "qt.plan.sized.BTCUSDT", "ai-agent publishing a sized plan") {
            _ = try await agent.publish(try self.plan("BTCUSDT", on: Subjects.planSized("BTCUSDT")))
        }
        await assertRefused(agent, "qt.plan.approved.BTCUSDT", "ai-agent publishing an approved plan") {
            _ = try await agent.publish(try self.plan("BTCUSDT", on: Subjects.planApproved("BTCUSDT")))
        }
        await assertRefused(agent, "$KV.qt_ledger.BTCUSDT", "ai-agent writing qt_ledger") {
            _ = try await agent.keyValue("qt_ledger").put("BTCUSDT", message: self.ledgerEntry("BTCUSDT"))
        }
        await assertRefused(agent, "KV_qt_control", "ai-agent writing qt_control") {
            var control = Control()
            control.tradingState = .active
            _ = try await agent.keyValue("qt_control").put("trading_state", message: control)
        }
        await assertRefused(agent, "$KV.qt_state.executor.", "ai-agent writing another plugin's state") {
            _ = try await state.put("executor.auth", message: own)
        }
        // Its own durable, asked for with another AckWait: the update is a consumer create request.
        let manifest = try XCTUnwrap(PluginCatalog.registry["ai-agent"]).manifest
        var ownDurable = try XCTUnwrap(try DurablePlan.consumers(manifest, settings: PluginSettings(values: [:], shadow: false),
                                                          partitioning: try Partitioning(count: Partitioning.defaultCount)).first)
        ownDurable.ackWaitMs += 1_000
        await assertRefused(agent, "CREATE.\(ownDurable.stream).\(ownDurable.durable)", "ai-agent changing its own durable") {
            _ = try await agent.ensureConsumer(ownDurable)
        }
        await assertRefused(agent, "CREATE.QT_PLAN", "ai-agent creating a consumer to read another stream") {
            try await agent.tail("qt.plan.approved.*", last: 1, follow: false) { _ in true }
        }
    }

    func testTheExecutorWritesTheLedgerAndPublishesNoIntent() async throws {
        let executor = try connect(as: "executor")
        defer { executor.close() }
        _ = try await executor.keyValue("qt_ledger").put("ETHUSDT", message: ledgerEntry("ETHUSDT"))
        await assertRefused(executor, "qt.signal.intent.ETHUSDT", "executor publishing an intent") {
            _ = try await executor.publish(try self.intent("ETHUSDT"))
        }
    }

    func testTheReadOnlyIdentityReadsStreamsAndBucketsAndWritesNothing() async throws {
        let agent = try connect(as: "ai-agent")
        _ = try await agent.publish(try intent("SOLUSDT"))
        agent.close()
        let admin = try connect(as: "admin")
        _ = try await admin.keyValue("qt_ledger").put("SOLUSDT", message: ledgerEntry("SOLUSDT"))
        admin.close()

        let reader = try connect(as: "reader")
        defer { reader.close() }
        let stream = try await reader.streamInfo("QT_SIGNAL")
        XCTAssertEqual(stream.messages, 1)
        let entry = try await reader.keyValue("qt_ledger").get(LedgerEntry.self, "SOLUSDT")
        XCTAssertEqual(entry?.value.symbol, "SOLUSDT")
        let keys = try await reader.keyValue("qt_ledger").keys()
        XCTAssertEqual(keys, ["SOLUSDT"])
        let tailed = Mutex<[String]>([])
        try await reader.tail("qt.signal.intent.*", last: 5, follow: false) { message in
            tailed.withLock { $0.append(message.subject) }
            return true
        }
        XCTAssertEqual(tailed.withLock { $0 }, ["qt.signal.intent.SOLUSDT"], "qt tail reads a stream through a consumer of its own")

        await assertRefused(reader, "$KV.qt_ledger.SOLUSDT", "reader writing qt_ledger") {
            _ = try await reader.keyValue("qt_ledger").put("SOLUSDT", message: self.ledgerEntry("SOLUSDT"))
        }
        await assertRefused(reader, "qt.signal.intent.SOLUSDT", "reader publishing an intent") {
            _ = try await reader.publish(try self.intent("SOLUSDT"))
        }
        await assertRefused(reader, "$JS.API.CONSUMER.DELETE.QT_SIGNAL.intent-bridge__intents__p0", "reader deleting a pipeline durable") {
            try await reader.deleteConsumer(stream: "QT_SIGNAL", durable: "intent-bridge__intents__p0")
        }
        await assertRefused(reader, "CREATE.QT_SIGNAL.reader-durable", "reader creating a durable") {
            _ = try await reader.ensureConsumer(try ConsumerSpec(durable: "reader-durable", filterSubject: "qt.signal.intent.*"))
        }
    }

    /// The operator's tools with `--nkey`: the operator sets the trading state, the read-only
    /// identity reads it and may not set it.
    func testTheCommandLineActsAsTheIdentityOfItsSeedFile() throws {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let qt = try XCTUnwrap([directory.appendingPathComponent("qt"),
                                Bundle(for: Self.self).bundleURL.deletingLastPathComponent().appendingPathComponent("qt")]
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }, "qt not built")
        func run(_ identity: String, _ arguments: [String]) throws -> ChildProcess.Result {
            let seed = self.directory.appendingPathComponent(AuthorizationFile.seedDirectory).appendingPathComponent(FleetIdentity.seedFileName(identity))
            return try ChildProcess.run(qt, arguments + ["--server", server.url, "--nkey", seed.path])
        }
        let halted = try run("operator", ["control", "halt", "--reason", "drill", "--by", "auth-test"])
        XCTAssertEqual(halted.status, 0, halted.stderr)
        let status = try run("reader", ["control", "status"])
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("HALTED"), status.stdout)
        let refused = try run("reader", ["control", "resume", "--reason", "drill", "--by", "auth-test"])
        XCTAssertNotEqual(refused.status, 0, "the read-only identity may not resume trading: \(refused.stdout)")
        let still = try run("reader", ["control", "status"])
        XCTAssertTrue(still.stdout.contains("HALTED"), still.stdout)
    }

    func testSeedsAreWrittenWithMode0600AndTheServerConfigHoldsNoSecret() throws {
        let seeds = directory.appendingPathComponent(AuthorizationFile.seedDirectory)
        let files = try FileManager.default.contentsOfDirectory(atPath: seeds.path)
        XCTAssertEqual(Set(files), Set(written.created.map(FleetIdentity.seedFileName)))
        XCTAssertTrue(written.created.contains("executor") && written.created.contains("host-auth-a") && written.created.contains("reader"))
        let authorization = try String(contentsOfFile: written.authorizationPath, encoding: .utf8)
        for file in files {
            let path = seeds.appendingPathComponent(file).path
            XCTAssertEqual(SecretFile.permissions(of: path), 0o600, file)
            let seed = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(seed.hasPrefix("SU"), file)
            XCTAssertFalse(authorization.contains(seed), "\(file)'s seed is in the server config")
        }
    }
}
