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
                try await self.close(symbol)
                break
            }
            return false
        }
        let hostsSeen = try await bus.keyValue("qt_hosts").keys()
        XCTAssertEqual(Set(hostsSeen), Set(names), "each host heartbeats under its own identity")

        // The operator's identity steers trading; the pipeline settles, then stops.
        let operatorBus = try BusConnection(identity("operator", in: seeds.deletingLastPathComponent()))
        defer { operatorBus.close() }
        try await setTradingState(.reducing, operatorBus)
        try await waitUntil("no claim pending and every order record finished", seconds: 90) { (try? await self.quiet(self.bus)) ?? false }
        try await setTradingState(.halted, operatorBus)
        try await waitUntil("position-brain's fills are in", seconds: 30) { (try? await self.quiet(self.bus)) ?? false }
        for (_, process) in hosts { process.terminate() }
        for (name, process) in hosts {
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "\(name): \(exitReport(of: name))")
        }
        for name in names {
            let refusals = log(of: name).split(separator: "\n").filter { $0.contains("Permissions Violation") }
            XCTAssertTrue(refusals.isEmpty, "\(name): the server refused \(refusals.count) requests:\n" + refusals.prefix(10).joined(separator: "\n"))
        }
        let ledger = try await bus.keyValue("qt_ledger")
        for symbol in market.simulator.exchange.symbols {
            let amount = Decimal.parse(try await ledger.get(LedgerEntry.self, symbol)?.value.positionAmt ?? "0") ?? -999
            XCTAssertEqual(amount, market.simulator.exchange.positionAmount(symbol), "\(symbol): ledger = exchange")
        }
        print(try await funnel(bus))
    }

    private func close(_ symbol: String) async throws {
        var intent = TradeIntent()
        intent.intentID = "secure-close-\(symbol)-\(UUID().uuidString.prefix(8))"
        intent.symbol = symbol
        intent.action = .close
        intent.confidence = 1
        intent.model = "operator"
        intent.meta.eventTimeMs = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await bus.publish(OutgoingMessage(intent, subject: Subjects.intent(symbol), id: intent.intentID, producer: "operator@tests"))
    }
}
