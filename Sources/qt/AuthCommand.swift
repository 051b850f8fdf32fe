import ArgumentParser
import Foundation
import Host
import Messages

/// `qt auth generate`: the NATS identities of a deployment, derived from its node configs and
/// the plugins' manifests (DESIGN.md §10, least privilege).
struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth", abstract: "NATS identities and permissions for a deployment.", subcommands: [Generate.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the nats-server authorization block and one nkey seed per identity.",
            discussion: """
            Reads the node configs of a deployment and writes, into --out:
              auth.conf          the `authorization` block for nats-server (public keys and permissions; `include` it)
              identities/*.nk    one user nkey seed per identity, mode 0600: each plugin instance, each host
                                 (host-<host_id>), admin, operator and reader
              systemd/qt-host@<host>.service.d/identities.conf   with --systemd: LoadCredential= of each node's seeds
            Existing seeds are kept; --rotate NAME gives NAME a new one. Seeds are never printed.
            A host finds its seeds through `nats.identities: <dir>` in its node config.
            """)
        @Option(name: .customLong("node-config"), help: "A node config of the deployment (repeat for each node).")
        var nodeConfigs: [String] = []
        @Option(help: "Directory to write auth.conf and identities/ into.") var out: String
        @Option(help: "P, the number of symbol partitions the deployment was provisioned with.")
        var partitions: Int = Partitioning.defaultCount
        @Option(help: "An identity whose seed is replaced (repeat for several).") var rotate: [String] = []
        @Flag(help: "Also write systemd/qt-host@<host>.service.d/identities.conf per node (LoadCredential= of its seeds).")
        var systemd = false
        @Option(help: "Where the seeds are installed on the nodes (for --systemd).") var installedAt = "/etc/qt/identities"

        func run() async throws {
            try await reportingErrors {
                guard !nodeConfigs.isEmpty else { throw ValidationError("give at least one --node-config") }
                let configs = try nodeConfigs.map { try NodeConfig.load(path: $0, registry: BuiltInPlugins.registry) }
                let identities = try FleetIdentities.plan(configs: configs, registry: BuiltInPlugins.registry,
                                                          partitioning: try Partitioning(count: partitions))
                let written = try AuthorizationFile.generate(identities, into: out, rotate: Set(rotate))
                printLine("wrote \(written.authorizationPath): \(identities.count) identities")
                for (label, names) in [("new", written.created), ("kept", written.kept), ("rotated", written.rotated)] where !names.isEmpty {
                    printLine("\(label): \(names.joined(separator: ", "))")
                }
                printLine("seeds (mode 0600) in \((out as NSString).appendingPathComponent(AuthorizationFile.seedDirectory))")
                if systemd {
                    for path in try AuthorizationFile.systemdDropIns(configs, installedAt: installedAt, into: out) { printLine("wrote \(path)") }
                }
            }
        }
    }
}
