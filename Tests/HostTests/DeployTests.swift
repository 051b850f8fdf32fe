import Foundation
import Host
import Messages
import NatsServerKit
import Plugins
import XCTest

/// Issue 18: what `deploy/` holds is checked by the tools that will read it: the node configs by
/// the host's own parser and the identity planner, the cluster configs by `nats-server -t`, the
/// units by `systemd-analyze verify`.
final class DeployTests: XCTestCase {
    private var scratch: URL!
    private var deploy: URL { TLSTests.repositoryRoot.appendingPathComponent("deploy") }

    override func setUp() async throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qt-deploy-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    private func nodeConfigs() throws -> [NodeConfig] {
        let directory = deploy.appendingPathComponent("nodes")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, ["node-a.yaml", "node-b.yaml", "node-c.yaml"])
        return try files.map { try NodeConfig.load(path: directory.appendingPathComponent($0).path, registry: PluginCatalog.registry) }
    }

    func testTheNodeConfigsRunEveryPluginOnAtLeastTwoNodesWithIdentitiesAndTLS() throws {
        let configs = try nodeConfigs()
        for plugin in PluginCatalog.registry.names {
            let nodes = configs.filter { $0.plugins.contains { $0.name == plugin } }.map(\.hostID)
            XCTAssertGreaterThanOrEqual(nodes.count, 2, "\(plugin) runs on \(nodes): a node's loss must not stop it")
        }
        for config in configs {
            XCTAssertEqual(config.replicas, 3, config.file)
            XCTAssertEqual(config.nats.identityDirectory, "/run/credentials/qt-host@\(config.hostID).service", config.file)
            XCTAssertNotNil(config.nats.tls?.caFile, "\(config.file) verifies the servers")
            XCTAssertTrue(config.nats.servers.allSatisfy { $0.hasPrefix("tls://") }, config.file)
        }
        let identities = try FleetIdentities.plan(configs: configs, registry: PluginCatalog.registry,
                                                  partitioning: try Partitioning(count: Partitioning.defaultCount))
        XCTAssertEqual(identities.filter { $0.role == .plugin }.count, 14)
        XCTAssertEqual(identities.filter { $0.role == .host }.map(\.name), ["host-node-a", "host-node-b", "host-node-c"])

        let written = try AuthorizationFile.systemdDropIns(configs, installedAt: "/etc/qt/identities", into: scratch.path)
        let nodeA = try String(contentsOfFile: try XCTUnwrap(written.first), encoding: .utf8)
        XCTAssertTrue(nodeA.contains("LoadCredential=host-node-a.nk:/etc/qt/identities/host-node-a.nk"), nodeA)
        XCTAssertTrue(nodeA.contains("LoadCredential=executor.nk:"), nodeA)
        XCTAssertFalse(nodeA.contains("harvest-proposer"), "node a does not run harvest-proposer: it gets no seed for it")
    }

    /// Each node's server config, with the paths of this machine, passes `nats-server -t`
    /// (authorization generated from the node configs, certificates from make-certs).
    func testTheClusterConfigsAreValidForNatsServer() throws {
        let certificates = scratch.appendingPathComponent("tls")
        try TLSTests.makeCertificates(in: certificates)
        let identities = try FleetIdentities.plan(configs: try nodeConfigs(), registry: PluginCatalog.registry,
                                                  partitioning: try Partitioning(count: Partitioning.defaultCount))
        _ = try AuthorizationFile.generate(identities, into: scratch.path)
        for node in ["a", "b", "c"] {
            let original = try String(contentsOf: deploy.appendingPathComponent("cluster/nats-\(node).conf"), encoding: .utf8)
            XCTAssertTrue(original.contains("include \"auth.conf\""), "nats-\(node).conf includes the generated authorization")
            XCTAssertTrue(original.contains("verify: true"), "nats-\(node).conf verifies its routes' certificates")
            let local = original.replacingOccurrences(of: "/etc/nats/tls/", with: certificates.path + "/")
                .replacingOccurrences(of: "/var/lib/nats", with: scratch.appendingPathComponent("store-\(node)").path)
            let file = scratch.appendingPathComponent("nats-\(node).conf")
            try local.write(to: file, atomically: true, encoding: .utf8)
            let result = try ChildProcess.run(URL(fileURLWithPath: try NatsServer.checkedExecutable()), ["-t", "-c", file.path])
            XCTAssertEqual(result.status, 0, "nats-\(node).conf: \(result.stdout) \(result.stderr)")
        }
    }

    /// `systemd-analyze verify` of both units (the template as node-a), with the binaries they
    /// start pointed at this machine's; any complaint fails, warnings included.
    func testTheSystemdUnitsVerify() throws {
        let analyze = "/usr/bin/systemd-analyze"
        guard FileManager.default.isExecutableFile(atPath: analyze) else {
            return XCTFail("systemd-analyze is missing: scripts/deps installs Debian's systemd package")
        }
        let units = deploy.appendingPathComponent("systemd")
        let host = try String(contentsOf: units.appendingPathComponent("qt-host@.service"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/qt ", with: "/bin/true ")
        let nats = try String(contentsOf: units.appendingPathComponent("nats-server.service"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/nats-server", with: try NatsServer.checkedExecutable())
        for (name, required) in [("qt-host@.service", ["Type=notify", "WatchdogSec=", "NoNewPrivileges=yes", "ProtectSystem=strict",
                                                         "PrivateTmp=yes", "ProtectHome=yes", "CapabilityBoundingSet=\n",
                                                         "RestrictAddressFamilies=", "SystemCallFilter=@system-service", "UMask=0077",
                                                         "LoadCredential=", "StateDirectory=", "Restart=on-failure"]),
                                 ("nats-server.service", ["KillSignal=SIGUSR2", "ProtectSystem=strict", "Restart=on-failure"])] {
            let text = name == "qt-host@.service" ? host : nats
            for setting in required { XCTAssertTrue(text.contains(setting), "\(name) has \(setting)") }
        }
        try host.write(to: scratch.appendingPathComponent("qt-host@node-a.service"), atomically: true, encoding: .utf8)
        try nats.write(to: scratch.appendingPathComponent("nats-server.service"), atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(URL(fileURLWithPath: analyze), ["verify", scratch.appendingPathComponent("qt-host@node-a.service").path,
                                                                          scratch.appendingPathComponent("nats-server.service").path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines), "", "systemd-analyze complains")
    }
}
