import ArgumentParser
import Bus
import Foundation
import Host
import Messages

/// `qt bench e2e --secure`: the benchmark's server knows only the identities `qt auth generate`
/// derives from the benchmark host's node config and requires TLS with certificates from
/// `deploy/tls/make-certs`; every plugin connects on its own identity, the driver as `admin`.
struct BenchSecurity {
    let directory: URL
    let certificates: URL

    var seeds: String { directory.appendingPathComponent(AuthorizationFile.seedDirectory).path }
    var caFile: String { certificates.appendingPathComponent("ca.pem").path }

    /// Writes the authorization for the host `nodeYAML(url)` describes (identities do not depend
    /// on the server's URL, which is not known before it starts) and the server's config.
    static func prepare(certificates: String, directory: URL, registry: PluginRegistry,
                        nodeYAML: (_ servers: String) -> String) throws -> BenchSecurity {
        let certificateDirectory = URL(fileURLWithPath: certificates)
        for file in ["ca.pem", "server.pem", "server-key.pem"] where !FileManager.default.fileExists(atPath: certificateDirectory.appendingPathComponent(file).path) {
            throw ValidationError("--certificates \(certificates): no \(file) (make them with deploy/tls/make-certs \(certificates))")
        }
        let security = BenchSecurity(directory: directory.appendingPathComponent("auth"), certificates: certificateDirectory)
        let planned = try NodeConfig.parse(nodeYAML(security.natsSection("nats://127.0.0.1:4222")), file: "bench-e2e.yaml", registry: registry)
        let identities = try FleetIdentities.plan(configs: [planned], registry: registry, partitioning: try Partitioning(count: Partitioning.defaultCount))
        _ = try AuthorizationFile.generate(identities, into: security.directory.path)
        try """
            include "\(AuthorizationFile.fileName)"
            tls {
              cert_file: "\(certificateDirectory.appendingPathComponent("server.pem").path)"
              key_file: "\(certificateDirectory.appendingPathComponent("server-key.pem").path)"
            }

            """.write(to: security.serverConfig, atomically: true, encoding: .utf8)
        return security
    }

    var serverConfig: URL { directory.appendingPathComponent("nats.conf") }
    var serverArguments: [String] { ["-c", serverConfig.path] }

    /// The node config's `nats:` value for a host on this server.
    func natsSection(_ url: String) -> String {
        "{ servers: [\(url)], identities: \(seeds), tls: { ca: \(caFile) } }"
    }

    func options(_ identity: String, url: String, name: String) -> ConnectionOptions {
        var options = ConnectionOptions(servers: [url], name: name)
        options.tls = .init(caFile: caFile)
        options.identityDirectory = seeds
        return options.identity(identity)
    }
}
