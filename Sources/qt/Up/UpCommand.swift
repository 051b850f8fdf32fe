import ArgumentParser
import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import NatsServerKit

/// `qt up`: everything on one machine. An embedded nats-server with JetStream and the
/// provisioned topology, the exchange simulator, and one host running every plugin in this
/// process; a status view every second; a summary at the end.
struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole pipeline on one machine: NATS, the exchange simulator and a host with every plugin.")

    @Option(help: "Data directory: NATS store, node config, API key files (default: a fresh one under .qt/).") var data: String?
    @Option(name: .customLong("nats-port"), help: "NATS client port (default: a free one).") var natsPort: Int = -1
    @Option(help: "Stop after this many seconds and print a summary (default: run until Ctrl-C).") var duration: Double?
    @Option(name: .customLong("sim-port"), help: "Simulator port on 127.0.0.1 (default: a free one).") var simPort = 0
    @Flag(help: "Print one status line a second instead of redrawing the screen (the default when stdout is not a terminal).")
    var plain = false
    @Flag(help: "Poll the exchange's REST endpoints for bars, positions and trades instead of streaming them (the fallback mode).")
    var poll = false
    @Option(help: "Make this many symbols active in the universe (default: the universe plugin's rollout, 10).") var active: Int?
    @Flag(help: "Also serve the operator console (qt console) on 127.0.0.1, with a fresh operator token in the data directory.")
    var console = false
    @Option(name: .customLong("console-port"), help: "The console's port (0: a free one).") var consolePort = ConsoleCommand.defaultPort
    @OptionGroup var market: SimulatorOptions

    func run() async throws {
        try await reportingErrors {
            do {
                _ = try NatsServer.checkedExecutable()
            } catch {
                throw ValidationError("\(error) (scripts/up installs what is missing)")
            }
            let directory = URL(fileURLWithPath: data ?? ".qt/run-\(Int(Date().timeIntervalSince1970))").standardizedFileURL
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let server = try NatsServer(storeDirectory: directory.appendingPathComponent("nats"), port: natsPort)
            defer { server.stop() }
            let bus = try BusConnection(ConnectionOptions(servers: [server.url], name: "qt-up"))
            defer { bus.close() }
            printLine("NATS:       \(server.url)   (JetStream store: \(directory.path)/nats)")
            let simulator = try await market.startServer(port: simPort)
            let node = try writeNodeConfig(in: directory, natsURL: server.url, simulator: simulator)
            printLine("exchange:   " + (poll ? "REST polls for bars, positions and trades (--poll)"
                                        : "streams at \(simulator.streamURL) (market data, user data); REST for backfill, orders, reconciliation"))
            let config = try NodeConfig.parse(node.yaml, file: node.path, registry: BuiltInPlugins.registry)
            // The administrator's step, done here for the embedded server (hosts never provision).
            let results = try await DeploymentProvisioning.provision(bus, replicas: config.replicas, configs: [config],
                                                                     registry: BuiltInPlugins.registry, provisionedBy: "qt up")
            let durables = results.filter { $0.kind == .consumer }.count
            printLine("topology:   \(results.count - durables) streams and buckets, \(durables) durables, "
                      + "\(bus.partitioning?.count ?? 0) partitions (\(results.filter { $0.action == .created }.count) created)")
            let host = PluginHost(config: config, registry: BuiltInPlugins.registry)
            try await host.start()
            printLine("host:       \(config.plugins.count) plugins in this process (node config: \(node.path); http :\(host.httpPort ?? 0))")
            printLine("attach:     NATS_URL=\(server.url) qt streams ls   ·   qt trace --symbol BTCUSDT --last 5 --server \(server.url)")
            printLine(duration.map { "running for \(Int($0)) s; Ctrl-C stops earlier" } ?? "running; Ctrl-C stops")

            var consoleServer: ConsoleServer?
            if console {
                let tokenFile = directory.appendingPathComponent("console-token")
                let token = try ConsoleCommand.writeFreshToken(to: tokenFile)
                let server = try await ConsoleServer.start(address: "127.0.0.1", port: consolePort, bus: bus,
                                                           control: ControlPage(operatorToken: token, operatorBus: bus, readBus: bus))
                consoleServer = server
                printLine("console:    http://127.0.0.1:\(server.port)/ (operator token in \(tokenFile.path))")
            }

            let activity = PipelineActivity()
            activity.start(bus)
            let weightAtStart = simulator.exchange.weightSpent, startedAt = Date()
            let board = StatusBoard(natsURL: server.url, simulatorURL: simulator.baseURL, startedAt: Date(), maxPositions: 10)
            let redraw = !plain && isatty(STDOUT_FILENO) == 1
            let view = Task { await showStatus(bus, board, activity, redraw: redraw) }
            await HostRunner.waitForTermination(orAfter: duration)
            view.cancel()
            _ = await view.value

            await consoleServer?.stop()
            printLine("stopping:   draining the host")
            await host.shutdown()
            let final = try? await PipelineState.read(bus)
            activity.stop()
            printSummary(final, activity.counts, board: board)
            let minutes = Date().timeIntervalSince(startedAt) / 60
            let spent = simulator.exchange.weightSpent - weightAtStart
            printLine("  exchange weight    \(spent) over \(String(format: "%.1f", minutes * 60)) s = "
                      + "\(Int((Double(spent) / max(minutes, 1e-9)).rounded())) per minute (IP limit \(simulator.exchange.config.weightLimitPerMinute)); "
                      + "refused for weight: \(simulator.exchange.weightLimitRefusals)")
            printLine("  weight by endpoint " + simulator.exchange.weightByEndpoint.prefix(6)
                .map { "\($0.endpoint) \($0.weight) (\($0.requests) requests)" }.joined(separator: ", "))
            await simulator.stop()
            printLine("stopped:    host, simulator and NATS closed cleanly (data kept in \(directory.path))")
        }
    }

    private func writeNodeConfig(in directory: URL, natsURL: String, simulator: SimulatorServer) throws -> (yaml: String, path: String) {
        let keys = try simulator.exchange.config.credentials.writeFiles(in: directory)
        var node = UpNodeConfig(natsURL: natsURL, exchangeURL: simulator.baseURL, streamURL: poll ? nil : simulator.streamURL,
                                keyFile: keys.key, secretFile: keys.secret, barMs: market.barMs)
        node.active = active
        let path = directory.appendingPathComponent("node.yaml")
        try Data(node.yaml.utf8).write(to: path)
        return (node.yaml, path.path)
    }

    private func showStatus(_ bus: BusConnection, _ board: StatusBoard, _ activity: PipelineActivity, redraw: Bool) async {
        while !Task.isCancelled {
            if let state = try? await PipelineState.read(bus) {
                if redraw {
                    // Home the cursor and clear the screen: one frame, no scrolling.
                    printLine("\u{1B}[H\u{1B}[2J" + board.render(state, activity.counts))
                } else {
                    printLine(board.line(state, activity.counts))
                }
            }
            try? await Task.sleep(nanoseconds: 1_000_000_000)
        }
    }

    private func printSummary(_ state: PipelineState?, _ counts: PipelineActivity.Counts, board: StatusBoard) {
        printLine("summary:")
        printLine("  orders filled      \(counts.entriesFilled) entries, \(counts.exitsFilled) exits (rejected \(counts.rejected))")
        printLine("  stops triggered    \(counts.stopFills)")
        if let state {
            printLine("  open positions     \(state.positions.count)" + (state.positions.isEmpty ? "" : " (\(state.positions.map(\.symbol).joined(separator: ", ")))"))
            printLine("  realized PnL       \(state.realizedPnl.rounded(4)) USDT")
            if let account = state.account {
                printLine("  equity             \(Decimal.parse(account.totalMarginBalance)?.rounded(2) ?? "?") USDT")
            }
            printLine("  dead letters       \(state.deadLetters)")
        }
        printLine("  decisions          \(board.verdictSummary(counts.verdicts))")
        printLine("  alerts             \(counts.alertCount)")
        if counts.undecodable > 0 { printLine("  undecodable        \(counts.undecodable) message(s) the view could not read") }
    }
}
