import ArgumentParser
import Bus
import Foundation
import Host
import NatsServerKit

/// `qt cluster up`: a JetStream cluster of nats-servers on loopback for developers and tests,
/// with the configs `deploy/cluster/` has for real machines (ports and paths local).
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "A local NATS JetStream cluster for development and tests.",
        subcommands: [Up.self])

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start N nats-servers as one cluster on 127.0.0.1, print their URLs, run until Ctrl-C.")
        @Option(help: "Number of servers (3 tolerates the loss of one).") var nodes = 3
        @Option(help: "Directory for configs, stores and logs (default: a fresh one under .qt/).") var data: String?
        @Option(help: "Provision streams, buckets and every built-in plugin's durables with this many replicas (0: do not).")
        var provision = 0
        @Option(help: "Stop after this many seconds (default: run until Ctrl-C).") var duration: Double?

        func run() async throws {
            try await reportingErrors {
                guard (1...7).contains(nodes) else { throw ValidationError("--nodes \(nodes): expected 1 to 7") }
                let directory = URL(fileURLWithPath: data ?? ".qt/cluster-\(Int(Date().timeIntervalSince1970))").standardizedFileURL
                let cluster = try NatsCluster(nodes: nodes, directory: directory)
                defer { cluster.stopAll() }
                for node in cluster.nodes {
                    printLine("\(node.name): \(node.url)   (route 127.0.0.1:\(node.clusterPort), config \(node.configFile.path))")
                }
                printLine("NATS_URL=\(cluster.urls.joined(separator: ","))")
                if provision > 0 {
                    let bus = try BusConnection(ConnectionOptions(servers: cluster.urls, name: "qt-cluster-up"))
                    defer { bus.close() }
                    try await waitForJetStream(bus)
                    let results = try await DeploymentProvisioning.provision(bus, replicas: provision, registry: BuiltInPlugins.registry,
                                                                             provisionedBy: "qt cluster up")
                    printLine("provisioned: \(results.count) streams, buckets and durables with \(provision) replicas")
                }
                printLine(duration.map { "running for \(Int($0)) s; Ctrl-C stops earlier" } ?? "running; Ctrl-C stops")
                await HostRunner.waitForTermination(orAfter: duration)
                printLine("stopping: \(nodes) servers (stores kept in \(directory.path))")
            }
        }

        /// A new cluster elects its JetStream meta leader a moment after the servers accept clients.
        private func waitForJetStream(_ bus: BusConnection) async throws {
            let deadline = Date().addingTimeInterval(20)
            while true {
                do {
                    _ = try await bus.streams()
                    return
                } catch {
                    if Date() > deadline { throw error }
                    try await Task.sleep(nanoseconds: 250_000_000)
                }
            }
        }
    }
}
