import Bus
import Foundation
import Host
import Messages
import NatsServerKit
import Plugins
import XCTest

/// Issue 18: the whole pipeline with every plugin on its own NATS identity, over TLS, against a
/// server that knows only the identities `qt auth generate` wrote and requires TLS with a
/// certificate from `deploy/tls/make-certs`. It must trade as it does without them (the server
/// refusing nothing it needs), and the books must agree at the end.
final class SecurePipelineTests: PipelineTestCase {
    override func setUp() async throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qt-secure-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    /// A server whose only users are the generated identities; `bus` is the administrator.
    private func startAuthorizedServer(_ configs: [NodeConfig]) async throws -> URL {
        let auth = scratch.appendingPathComponent("auth")
        let identities = try FleetIdentities.plan(configs: configs, registry: PluginCatalog.registry,
                                                  partitioning: try Partitioning(count: Partitioning.defaultCount))
        _ = try AuthorizationFile.generate(identities, into: auth.path)
        try TLSTests.makeCertificates(in: certificates)
        let serverConfig = auth.appendingPathComponent("nats.conf")
        try """
            include "\(AuthorizationFile.fileName)"
            tls {
              cert_file: "\(certificates.appendingPathComponent("server.pem").path)"
              key_file: "\(certificates.appendingPathComponent("server-key.pem").path)"
            }

            """.write(to: serverConfig, atomically: true, encoding: .utf8)
        server = try NatsServer(extraArguments: ["-c", serverConfig.path])
        bus = try BusConnection(identity("admin", in: auth))
        return auth.appendingPathComponent(AuthorizationFile.seedDirectory)
    }

    private var certificates: URL { scratch.appendingPathComponent("tls") }
    private var caFile: String { certificates.appendingPathComponent("ca.pem").path }

    private func identity(_ name: String, in auth: URL) -> ConnectionOptions {
        var options = ConnectionOptions(servers: [server.url], name: "secure-test")
        options.tls = .init(caFile: caFile)
        options.identityDirectory = auth.appendingPathComponent(AuthorizationFile.seedDirectory).path
        return options.identity(name)
    }

    func testThePipelineTradesWithEveryPluginOnItsOwnIdentityOverTLS() async throws {
        let market = try await startSimulator(symbols: 16, startMs: 1_800_000_000_000, seed: 31)
        defer { Task { await market.simulator.stop() } }
        let names = ["secure-a", "secure-b"]
        // The server's port is not known before it starts: configs are written with a placeholder
        // URL for planning identities (which do not depend on it), then with the real one.
        let planned = try names.map { try pipelineConfig($0, servers: ["nats://127.0.0.1:4222"], replicas: 1, market: market).config }
        let seeds = try await startAuthorizedServer(planned)
        let configs = try names.map { name -> (yaml: String, config: NodeConfig) in
            let base = try pipelineConfig(name, servers: [server.url], replicas: 1, market: market).yaml
            let yaml = base.replacingOccurrences(of: "nats: { servers: [\(server.url)] }",
                                                 with: "nats: { servers: [\(server.url)], identities: \(seeds.path), tls: { ca: \(caFile) } }")
            return (yaml, try NodeConfig.parse(yaml, file: "\(name).yaml", registry: PluginCatalog.registry))
        }
        XCTAssertEqual(configs.first?.config.nats.identityDirectory, seeds.path)
        XCTAssertEqual(configs.first?.config.nats.tls?.caFile, caFile)
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: configs.map(\.config), registry: PluginCatalog.registry)
        var hosts: [String: Process] = [:]
        for (name, config) in zip(names, configs) { hosts[name] = try spawnNode(name, config.yaml) }

        // Each host is up (it heartbeats under its own identity and has logged its port) before
        // trading is judged: one host alone can trade, and the other's start is slower under load.
        do {
            try await waitUntil("both hosts heartbeat", seconds: 120) {
                let live = try await self.bus.keyValue("qt_hosts").keys()
                return Set(live) == Set(names) && names.allSatisfy { self.log(of: $0).contains("http :") }
            }
        } catch {
            print(names.map { "\($0):\n" + String(log(of: $0).suffix(4000)) }.joined(separator: "\n"))
            throw error
        }
        let ordersAtStart = market.simulator.exchange.acceptedOrders
        do {
            try await waitUntil("an entry applied", seconds: 90) {
                let results = try await storedMessages(OrderResult.self, subject: "qt.exec.result.*", bus: self.bus)
                return results.contains { $0.planKind == .open && $0.status == .applied }
            }
        } catch {
            print(try await funnel(bus) + "\n" + names.map { "\($0):\n" + String(log(of: $0).suffix(4000)) }.joined(separator: "\n"))
            throw error
        }
        XCTAssertGreaterThan(market.simulator.exchange.acceptedOrders, ordersAtStart)
        // An exit through the whole path: a CLOSE intent for a held symbol (as the operator's tools
        // publish one), or one the exit layer proposes meanwhile.
        try await waitUntil("an exit applied", seconds: 90) {
            let results = try await storedMessages(OrderResult.self, subject: "qt.exec.result.*", bus: self.bus)
            if results.contains(where: { [.close, .reduce].contains($0.planKind) && $0.status == .applied }) { return true }
            let ledger = try await self.bus.keyValue("qt_ledger")
            for symbol in try await ledger.keys() {
                guard let entry = try await ledger.get(LedgerEntry.self, symbol)?.value,
                      (Decimal.parse(entry.positionAmt) ?? 0) != 0, entry.pendingClientOrderID.isEmpty else { continue }
                try await self.publishCloseIntent(symbol, on: self.bus)
                break
            }
            return false
        }
        let hostsSeen = try await bus.keyValue("qt_hosts").keys()
        XCTAssertEqual(Set(hostsSeen), Set(names), "each host heartbeats under its own identity")

        // No secret in what the hosts expose: their logs and /metrics (grep for every seed and the API key pair).
        var secrets = try FileManager.default.contentsOfDirectory(atPath: seeds.path).map {
            try String(contentsOfFile: seeds.appendingPathComponent($0).path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for file in [market.keys.key, market.keys.secret] {
            secrets.append(try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        XCTAssertEqual(secrets.count, try FileManager.default.contentsOfDirectory(atPath: seeds.path).count + 2)
        for name in names {
            let text = log(of: name)
            let port = try XCTUnwrap(text.components(separatedBy: "http :").dropFirst().first?.prefix { $0.isNumber }, "\(name) logs its port")
            let metrics = try await httpGet(port: try XCTUnwrap(Int(port)), path: "/metrics").body
            XCTAssertTrue(metrics.contains("qt_messages_in_total"), "\(name) /metrics")
            for secret in secrets where secret.count >= 16 {
                XCTAssertFalse(text.contains(secret), "\(name)'s log holds a secret")
                XCTAssertFalse(metrics.contains(secret), "\(name)'s /metrics holds a secret")
            }
        }

        // The operator's identity steers trading; the pipeline settles, then stops.
        let operatorBus = try BusConnection(identity("operator", in: seeds.deletingLastPathComponent()))
        defer { operatorBus.close() }
        try await settleStopAndCompareBooks(hosts, steering: operatorBus, market: market, symbols: market.simulator.exchange.symbols)
        for name in names {
            let refusals = log(of: name).split(separator: "\n").filter { $0.contains("Permissions Violation") }
            XCTAssertTrue(refusals.isEmpty, "\(name): the server refused \(refusals.count) requests:\n" + refusals.prefix(10).joined(separator: "\n"))
            let whole = log(of: name)
            for secret in secrets where secret.count >= 16 { XCTAssertFalse(whole.contains(secret), "\(name)'s log holds a secret") }
        }
        print(try await funnel(bus))
    }
}
