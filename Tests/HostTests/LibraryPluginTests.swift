import Bus
import Foundation
import Host
import Messages
import Plugins
import XCTest

/// Issue 22: a plugin in C (`examples/c-breakout`), built here with the system C compiler and
/// protobuf-c, loaded by `qt host` from the node config beside the Swift plugins.
final class LibraryPluginTests: PipelineTestCase {
    static let model = "c-breakout/test"

    /// Two hosts run every plugin but the ai-agent, and the C strategy in its place: its intents
    /// pass the gates and open positions that reach the ledger; it is in `qt_hosts` and `qt
    /// topology` like any plugin; its channel survives both hosts' restart.
    func testTheCStrategyTradesThroughTheGatesIsAPluginLikeAnyOtherAndKeepsItsChannelAcrossARestart() async throws {
        let library = try Self.buildBreakout(named: "libc_breakout.so")
        let market = try await startSimulator(symbols: 6, startMs: 1_800_000_000_000, seed: 31)
        defer { Task { await market.simulator.stop() } }
        let names = ["host-a", "host-b"]
        let configs = try names.map { name in
            // A channel longer than the bars the market makes while both hosts are down (4 a second),
            // so the bars from before the restart are still in it after.
            let yaml = try Self.withBreakout(pipelineConfig(name, servers: [server.url], replicas: 1, market: market).yaml, library: library,
                                             channelBars: 40)
            return (yaml: yaml, config: try NodeConfig.parse(yaml, file: "\(name).yaml", registry: PluginCatalog.registry))
        }
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: configs.map(\.config), registry: PluginCatalog.registry)
        var hosts: [String: Process] = [:]
        for (name, config) in zip(names, configs) { hosts[name] = try spawnNode(name, config.yaml) }

        // Its intents become approved plans and filled entries in the ledger.
        var opened: (plan: Plan, result: OrderResult)?
        do {
            try await waitUntil("an entry from a c-breakout intent filled", seconds: 90) {
                opened = try await self.filledEntryFromTheCStrategy()
                return opened != nil
            }
        } catch {
            print(try await funnel(bus) + "\n" + names.map { "\($0):\n" + String(log(of: $0).suffix(2_000)) }.joined(separator: "\n"))
            throw error
        }
        let (plan, result) = try XCTUnwrap(opened)
        for gate in ["intent-bridge", "governor", "portfolio-gate"] {
            let decisions = try await storedMessages(Decision.self, subject: Subjects.decision(plugin: gate, symbol: plan.symbol), bus: bus)
            XCTAssertTrue(decisions.contains { [.pass, .modify].contains($0.verdict) && [plan.origin, plan.planID].contains($0.subjectID) },
                          "\(gate) let the plan of intent \(plan.origin) through")
        }
        let ledger = try await bus.keyValue("qt_ledger").history(plan.symbol).compactMap { try $0.decoded(as: LedgerEntry.self) }
        XCTAssertTrue(ledger.contains { $0.lastPlanID == plan.planID && (Decimal.parse($0.positionAmt) ?? 0) != 0 },
                      "the ledger holds the position of plan \(plan.planID) (result \(result.status))")

        // A plugin like any other: in qt_hosts, in the topology check and its rendering.
        let registered = try await bus.keyValue("qt_hosts").keys().sorted()
        XCTAssertEqual(registered, names)
        for name in names {
            let stored = try await bus.keyValue("qt_hosts").get(HostInfo.self, name)?.value
            let info = try XCTUnwrap(stored, "\(name) in qt_hosts")
            let breakout = try XCTUnwrap(info.plugins.first { $0.name == "c-breakout" }, "\(name) lists c-breakout")
            XCTAssertEqual(breakout.outputs.map(\.type), ["qt.v1.TradeIntent"])
        }
        let check = try runQT(["topology", "check", "--server", server.url])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("topology ok: 2 host(s), 26 plugin(s)"), check.output)
        let show = try runQT(["topology", "show", "--server", server.url])
        XCTAssertTrue(show.output.contains("c-breakout"), show.output)

        // Both hosts stop; the channel is where they left it, and grows from there after the restart.
        for process in hosts.values { process.terminate() }
        for process in hosts.values { process.waitUntilExit() }
        let key = "c-breakout.channel-\(plan.symbol)"
        let states = try await bus.keyValue("qt_state")
        let stored = try await states.get(PluginState.self, key)
        let before = try XCTUnwrap(stored, "\(key) after the stop")
        let barsBefore = Self.bars(before.value)
        XCTAssertEqual(barsBefore.count, 41, "channel_bars 40 plus the newest bar")
        for (name, config) in zip(names, configs) { hosts[name] = try spawnNode(name, config.yaml) }
        try await waitUntil("the channel of \(plan.symbol) moves on after the restart", seconds: 60) {
            (try await states.get(PluginState.self, key)?.revision ?? 0) > before.revision
        }
        let restarted = try await states.get(PluginState.self, key)
        let after = Self.bars(try XCTUnwrap(restarted).value)
        XCTAssertEqual(after.count, 41)
        XCTAssertTrue(after.contains(barsBefore.last!), "the bars from before the restart are still the channel's: \(barsBefore) → \(after)")
        for (name, process) in hosts { XCTAssertTrue(process.isRunning, "\(name): \(exitReport(of: name))") }
        for process in hosts.values { process.terminate() }
    }

    /// One host running a c-breakout variant built with `flag`, on a fresh 4-symbol simulator
    /// (the caller stops it), its topology provisioned.
    private func startOneBreakoutHost(library name: String, flag: String, seed: UInt64) async throws -> (Process, Market) {
        let library = try Self.buildBreakout(named: name, flags: [flag])
        let market = try await startSimulator(symbols: 4, startMs: 1_800_000_000_000, seed: seed)
        do {
            let yaml = try Self.withBreakout(pipelineConfig("host-a", servers: [server.url], replicas: 1, market: market).yaml, library: library,
                                             channelBars: 2)
            let config = try NodeConfig.parse(yaml, file: "host-a.yaml", registry: PluginCatalog.registry)
            _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: [config], registry: PluginCatalog.registry)
            return (try spawnNode("host-a", yaml), market)
        } catch {
            await market.simulator.stop()
            throw error
        }
    }

    /// A library that emits a type its output does not carry: the output is refused, the bar it
    /// was handling goes to the dead-letter stream with the reason, and the host stays up.
    func testAnOutputOfAnUndeclaredTypeIsRefusedAndItsInputDeadLettered() async throws {
        let (host, market) = try await startOneBreakoutHost(library: "libc_breakout_wrong_type.so", flag: "-DBREAKOUT_WRONG_OUTPUT_TYPE", seed: 32)
        defer { Task { await market.simulator.stop() } }
        var letter: DeadLetter?
        try await waitUntil("a dead letter from c-breakout", seconds: 60) {
            letter = try await storedMessages(DeadLetter.self, subject: "qt.dlq.>", bus: self.bus).first { $0.consumer.hasPrefix("c-breakout__klines") }
            return letter != nil
        }
        let reason = try XCTUnwrap(letter).error
        XCTAssertTrue(reason.contains("output intents carries qt.v1.TradeIntent, not qt.v1.Plan"), reason)
        XCTAssertEqual(letter?.originalType, "qt.v1.Kline")
        let intents = try await storedMessages(TradeIntent.self, subject: "qt.signal.intent.*", bus: bus)
        XCTAssertEqual(intents.count, 0, "nothing the refused handler emitted was published")
        try await Task.sleep(nanoseconds: 1_000_000_000)
        XCTAssertTrue(host.isRunning, exitReport(of: "host-a"))
        host.terminate()
    }

    /// The decide and alert callbacks (the audit variant records each proposal as a decision and
    /// announces it as an alert): published under the plugin's name, on its declared outputs.
    func testTheDecideAndAlertCallbacksPublishUnderThePluginsName() async throws {
        let (host, market) = try await startOneBreakoutHost(library: "libc_breakout_audit.so", flag: "-DBREAKOUT_AUDIT", seed: 33)
        defer { Task { await market.simulator.stop() } }
        var decisions: [Decision] = []
        try await waitUntil("a decision by c-breakout", seconds: 60) {
            decisions = try await storedMessages(Decision.self, subject: "qt.decision.c-breakout.*", bus: self.bus)
            return !decisions.isEmpty
        }
        let intents = Set(try await storedMessages(TradeIntent.self, subject: "qt.signal.intent.*", bus: bus).filter { $0.model == Self.model }.map(\.intentID))
        XCTAssertTrue(decisions.allSatisfy { $0.plugin == "c-breakout" && $0.subjectKind == .intent && $0.verdict == .pass })
        XCTAssertTrue(Set(decisions.map(\.subjectID)).isSubset(of: intents), "each decision is about one of its intents")
        let alerts = try await storedMessages(Alert.self, subject: "qt.alert.*", bus: bus).filter { $0.plugin == "c-breakout" }
        XCTAssertFalse(alerts.isEmpty, "an alert from c-breakout")
        XCTAssertTrue(alerts.allSatisfy { $0.kind == .limit && $0.severity == .info && $0.message.contains("beyond the 2-bar channel") })
        XCTAssertTrue(host.isRunning, exitReport(of: "host-a"))
        host.terminate()
    }

    /// A library built against another ABI version: refused at start, both versions named.
    func testALibraryOfAnotherABIVersionIsRefusedAtStartWithBothVersions() async throws {
        let library = try Self.buildBreakout(named: "libc_breakout_abi99.so", flags: ["-DBREAKOUT_ABI_VERSION=99"])
        let yaml = """
            host_id: host-a
            nats: { servers: [\(server.url)] }
            http_port: 0
            plugins:
              c-breakout: { library: \(library), settings: { channel_bars: "5" } }

            """
        XCTAssertThrowsError(try NodeConfig.parse(yaml, file: "host-a.yaml", registry: PluginCatalog.registry)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("plugins.c-breakout.library") && text.contains("ABI version 99") && text.contains("speaks version 1"), text)
        }
        let host = try spawnNode("host-a", yaml)
        host.waitUntilExit()
        XCTAssertNotEqual(host.terminationStatus, 0)
        let log = log(of: "host-a")
        XCTAssertTrue(log.contains("built for plugin ABI version 99; this host speaks version 1"), log)
    }

    // MARK: - helpers

    /// `make` in examples/c-breakout: the system C compiler, include/qt_plugin.h, sdk/c, -lprotobuf-c.
    static func buildBreakout(named name: String, flags: [String] = []) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("qt-c-plugins-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let library = out.appendingPathComponent(name).path
        let built = try Self.run("/usr/bin/make", ["-s", "-C", root.appendingPathComponent("examples/c-breakout").path, "OUT=\(library)",
                                                   "EXTRA_CFLAGS=\(flags.joined(separator: " "))"])
        XCTAssertEqual(built.status, 0, "make examples/c-breakout: \(built.output)")
        return library
    }

    /// The pipeline's node config with the C strategy in the ai-agent's place.
    static func withBreakout(_ yaml: String, library: String, channelBars: Int = 5) throws -> String {
        let entry = "c-breakout: { library: \(library), settings: { channel_bars: \"\(channelBars)\", model: \"\(model)\", confidence: \"0.9\" } }"
        let replaced = yaml.replacingOccurrences(of: "ai-agent: {}", with: entry)
        XCTAssertNotEqual(replaced, yaml, "the pipeline config runs the ai-agent")
        return replaced
    }

    static func bars(_ state: PluginState) -> [String] {
        (state.values["bars"] ?? "").split(separator: ";").map(String.init)
    }

    /// A plan made from one of the C strategy's intents, approved and filled as an entry.
    private func filledEntryFromTheCStrategy() async throws -> (Plan, OrderResult)? {
        let intents = try await storedMessages(TradeIntent.self, subject: "qt.signal.intent.*", bus: bus).filter { $0.model == Self.model }
        guard !intents.isEmpty else { return nil }
        let ids = Set(intents.map(\.intentID))
        let plans = try await storedMessages(Plan.self, subject: "qt.plan.approved.*", bus: bus).filter { ids.contains($0.origin) }
        guard !plans.isEmpty else { return nil }
        let results = try await storedMessages(OrderResult.self, subject: "qt.exec.result.*", bus: bus)
        for plan in plans {
            if let result = results.first(where: { $0.planID == plan.planID && [.filled, .applied].contains($0.status) }) { return (plan, result) }
        }
        return nil
    }

    private func runQT(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try Self.run(try binary("qt").path, arguments)
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
