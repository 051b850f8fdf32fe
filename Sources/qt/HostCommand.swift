import ArgumentParser
import Host
import Plugins

/// The plugins this build of `qt` can run, by name; `qt host` rejects any other name with the
/// list of valid ones. The composition root: each registry (one per host) gets its own Binance
/// clients, built from the node config's `exchange:` section when a plugin first needs one.
enum BuiltInPlugins {
    static var registry: PluginRegistry { PluginCatalog.registry(exchanges: ExchangeClients(connect: ExchangeClients.binance)) }
}

struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Run the plugin host with a node config (YAML).")

    @Option(help: "Node config file (host_id, nats, plugins, ...).") var config: String

    func run() async throws {
        try await reportingErrors {
            try await HostRunner.run(configPath: config, registry: BuiltInPlugins.registry)
        }
    }
}

struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Check or show the graph the live hosts declare in qt_hosts.",
        subcommands: [Check.self, Show.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exit non-zero naming each consumed subject without a live producer, produced subject without a stream, schema mismatch, or bucket read that nobody writes.")
        @OptionGroup var connection: ConnectionArguments

        func run() async throws {
            try await reportingErrors {
                let bus = try connection.connect()
                defer { bus.close() }
                let hosts = try await FleetReader.read(bus)
                guard !hosts.isEmpty else { throw ValidationError("no live hosts in qt_hosts: nothing produces anything") }
                let problems = TopologyCheck.problems(in: hosts)
                for problem in problems { printLine(problem.description) }
                if !problems.isEmpty { throw ExitCode(1) }
                printLine("topology ok: \(hosts.count) host(s), \(hosts.map(\.plugins.count).reduce(0, +)) plugin(s)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print hosts, plugins, subjects and buckets.")
        @OptionGroup var connection: ConnectionArguments

        func run() async throws {
            try await reportingErrors {
                let bus = try connection.connect()
                defer { bus.close() }
                printLine(TopologyCheck.render(try await FleetReader.read(bus)))
            }
        }
    }
}
