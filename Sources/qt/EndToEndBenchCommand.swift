import ArgumentParser
import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Host
import Identity
import Messages
import NatsServerKit
import Plugins

/// Signal → plan → permit → order filled on the simulator → ledger committed, on loopback: the
/// latency of each intent from its publish to its ledger commit (an OPEN's settle, seen on the
/// ledger's stream) or, for a CLOSE or an exit, whose old stop is cancelled after the settle, to its
/// `OrderResult`, at a fixed open-loop rate, the highest rate the pipeline sustains, the exchange round
/// trip alone as the floor (same run, same client), and the RSS of a `qt host` child running
/// every plugin on the simulator's symbols.
struct EndToEndBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "End-to-end latency (intent → ledger) at a fixed rate, the maximum sustained rate, and host RSS with every plugin.")

    @Option(help: "Intents per second for the latency measurement (and the costs per trade).") var rate = 20.0
    @Option(name: .customLong("high-rate"), help: "Intents per second of a second measurement, for --duration, after the first (0: skip).")
    var highRate = 100.0
    @Option(name: .customLong("exit-rate"), help: "Harvest proposals (FULL_CLOSE) per second for the exit measurement (0: skip).")
    var exitRate = 20.0
    @Option(help: "Seconds of the latency measurement.") var duration = 20.0
    @Option(help: "Rates tried, in order, for the maximum sustained rate (each for 5 s).") var ladder = "20,40,60,80,100,150,200,250,300"
    @Option(help: "Symbols listed by the simulator (and active in the universe).") var symbols = 566
    @Flag(name: .customLong("stage-times"),
          help: "Also follow the intent and plan subjects and report each chain's time per stage (adds a fetch per message: CPU figures differ).")
    var stageTimes = false
    @Flag(help: "Every plugin on its own NATS identity over TLS (the server knows only what `qt auth generate` derives); needs --certificates.")
    var secure = false
    @Option(help: "With --secure: a directory made by deploy/tls/make-certs (ca.pem, server.pem, server-key.pem).")
    var certificates: String?
    @Option(name: .customLong("rss-seconds"), help: "Seconds the every-plugin host runs while its RSS is sampled (0: skip).")
    var rssSeconds = 60.0

    func run() async throws {
        try await reportingErrors {
            let credentials = Credentials.generate()
            var config = SimulatorConfig(credentials: credentials)
            config.symbols = symbols
            config.historyBars = 400
            config.startingBalance = 10_000_000  // hundreds of open positions at once must not hit margin
            config.weightLimitPerMinute = 10_000_000
            let simulator = try await SimulatorServer.start(config)
            defer { Task { await simulator.stop() } }
            let listed = simulator.exchange.symbols

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-bench-e2e-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let keys = try credentials.writeFiles(in: directory)
            let nodeYAML = { (nats: String) in Self.hostYAML(nats: nats, simulator: simulator, keys: keys) }
            var security: BenchSecurity?
            if secure {
                guard let certificates else { throw ValidationError("--secure needs --certificates DIR (make them with deploy/tls/make-certs DIR)") }
                security = try BenchSecurity.prepare(certificates: certificates, directory: directory, registry: BuiltInPlugins.registry, nodeYAML: nodeYAML)
            }
            let server = try NatsServer(extraArguments: security?.serverArguments ?? [])
            defer { server.stop() }
            let bus = try BusConnection(security?.options("admin", url: server.url, name: "qt-bench-e2e")
                                        ?? ConnectionOptions(servers: [server.url], name: "qt-bench-e2e"))
            defer { bus.close() }
            _ = try await bus.provision()
            printLine("e2e benchmark: \(listed.count) symbols, nats-server \(server.url)" + (secure ? " (TLS, one identity per plugin)" : "")
                      + ", simulator \(simulator.baseURL)")
            let eventTimeMs = simulator.exchange.simulatedNowMs
            try await prepareState(bus, symbols: listed, eventTimeMs: eventTimeMs)
            let host = try await startPipelineHost(nodeYAML(security?.natsSection(server.url) ?? "{ servers: [\(server.url)] }"), provisioningOn: bus)

            let driver = IntentDriver(bus: bus, symbols: listed, eventTimeMs: eventTimeMs, stageTimes: stageTimes)
            try await driver.start()
            printLine("warm-up: 2 s at 50/s")
            _ = try await driver.run(rate: 50, seconds: 2)

            let marksBefore = simulator.exchange.requests("GET /fapi/v1/premiumIndex")
            let entryCosts = TradeCosts(host: host, simulator: simulator)
            // What the system burns with no intent (market streams, the simulator's clock, timers) is
            // measured first and taken off, so the figure is what intents cost.
            let natsCPU = { server.processID.flatMap(CPUSeconds.of) }
            let idleStart = (bench: CPUSeconds.ofThisProcess, nats: natsCPU(), at: DispatchTime.now().uptimeNanoseconds)
            try await Task.sleep(nanoseconds: 5_000_000_000)
            let idle = Self.cpuPerSecond(from: idleStart, to: (CPUSeconds.ofThisProcess, natsCPU(), DispatchTime.now().uptimeNanoseconds))
            let runStart = (bench: CPUSeconds.ofThisProcess, nats: natsCPU(), at: DispatchTime.now().uptimeNanoseconds)
            let measured = try await driver.run(rate: rate, seconds: duration)
            printLine("latency at \(Int(rate))/s for \(Int(duration)) s: " + measured.description)
            let runEnd = DispatchTime.now().uptimeNanoseconds
            let busy = Self.cpuPerSecond(from: runStart, to: (CPUSeconds.ofThisProcess, natsCPU(), runEnd))
            let cpu = Self.cpuPerThousand(idle: idle, busy: busy, seconds: Double(runEnd - runStart.at) / 1e9, intents: measured.sent)
            printLine(cpu.map { String(format: "CPU-seconds per 1,000 intents above idle: this process (host, simulator and driver together) %.2f, nats-server %.2f"
                                       + " (idle: %.2f and %.2f CPU-seconds per second)", $0.bench, $0.nats, idle!.bench, idle!.nats) }
                      ?? "CPU-seconds: /proc not readable")
            let entryCost = entryCosts.report("OPEN", path: Self.entryPath, trades: measured.completed)
            var high: IntentDriver.Run?
            if highRate > 0 {
                high = try await driver.run(rate: highRate, seconds: duration)
                printLine("latency at \(Int(highRate))/s for \(Int(duration)) s: " + high!.description)
            }
            let marksRead = simulator.exchange.requests("GET /fapi/v1/premiumIndex") - marksBefore
            printLine(String(format: "mark price over REST (premiumIndex) during the run: %d requests for %d intents (%.3f per intent; the governor reads marks from the mark stream)",
                             marksRead, measured.sent, Double(marksRead) / Double(max(1, measured.sent))))

            var exits: (checked: IntentDriver.Run, unchecked: IntentDriver.Run)?
            var exitCost: (roundTrips: Double, exchangeRequests: Double)?
            if exitRate > 0 {
                // Right after the entries, which left up to rate · duration positions open: half of
                // them closed with the plan digest, half without it (the same host, one after the
                // other), so the check's cost is seen beside the path without it.
                let positions = try await openPositions(bus, simulator: simulator)
                let half = positions.count / 2
                let exitCosts = TradeCosts(host: host, simulator: simulator)
                let checked = try await driver.runExits(rate: exitRate, seconds: duration, positions: Array(positions[..<half]))
                printLine("exit latency (harvest proposal → ledger) at \(Int(exitRate))/s with the plan digest: " + checked.description)
                exitCost = exitCosts.report("exit", path: Self.exitPath, trades: checked.completed)
                PlanDigest.skippedForBenchmark.store(true, ordering: .relaxed)
                let unchecked = try await driver.runExits(rate: exitRate, seconds: duration, positions: Array(positions[half...]))
                PlanDigest.skippedForBenchmark.store(false, ordering: .relaxed)
                printLine("exit latency (harvest proposal → ledger) at \(Int(exitRate))/s without it: " + unchecked.description)
                exits = (checked, unchecked)
            }
            var sustained: (rate: Double, run: IntentDriver.Run)?
            for step in ladder.split(separator: ",").compactMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
                let run = try await driver.run(rate: step, seconds: 5)
                printLine("  \(Int(step))/s: " + run.description)
                guard run.keptUp else { break }
                sustained = (step, run)
            }
            let stages = ["intent-bridge", "governor", "portfolio-gate", "executor"].map { name in
                String(format: "%@ %.2f ms", name, host.metrics.plugin(name).latency.meanMilliseconds)
            }
            printLine("mean handler time per message: " + stages.joined(separator: ", "))
            // The step that fell behind leaves orders in flight (some waiting out a retry): the books
            // are compared once the pipeline has finished them, or after a minute.
            let compareBooks = {
                try await LedgerCheck.compare(bus, exchange: Dictionary(uniqueKeysWithValues: listed.map { ($0, simulator.exchange.positionAmount($0)) }),
                                              symbols: listed)
            }
            let settling = DispatchTime.now().uptimeNanoseconds
            var books = try await compareBooks()
            while !books.agrees, DispatchTime.now().uptimeNanoseconds - settling < 60_000_000_000 {
                try await Task.sleep(nanoseconds: 500_000_000)
                books = try await compareBooks()
            }
            printLine(String(format: "books compared %.1f s after the last step", Double(DispatchTime.now().uptimeNanoseconds - settling) / 1e9))
            await host.shutdown()
            driver.stop()
            // Measured with the host stopped: the loop holds one of the two cooperative threads.
            let digest = Self.planDigestCost()
            printLine(String(format: "plan digest (portfolio-gate writes it, the executor checks it): %.2f µs per plan", digest))
            printLine(books.summary)

            let floor = try await exchangeFloor(simulator: simulator, credentials: credentials, symbols: listed)
            printLine("exchange floor (client → simulator, MARKET order + STOP_MARKET algo order, sequential): " + floor.description)
            let pacedFloor = try await exchangeFloor(simulator: simulator, credentials: credentials, symbols: listed,
                                                pairs: min(200, max(20, Int(rate * duration))), pacedAt: rate)
            printLine("exchange floor paced at \(Int(rate))/s (one pair every \(Int(1000 / rate)) ms, as the intents come): " + pacedFloor.description)
            var rss: (peakMB: Double, lastMB: Double)?
            if rssSeconds > 0, !secure { rss = try await measureRSS(server: server, simulator: simulator, keys: keys) }

            printLine("")
            printLine("| measurement | value | floor (same run) | target |")
            printLine("|---|---|---|---|")
            printLine(String(format: "| intent → ledger committed at %d/s, p50 | %.1f ms | %.1f ms (exchange calls alone) | ≤ floor p50 + 5 ms |", Int(rate),
                             measured.p50, floor.p50))
            printLine(String(format: "| intent → ledger committed at %d/s, p99 | %.1f ms | %.1f ms | ≤ floor p99 + 10 ms |", Int(rate), measured.p99, floor.p99))
            printLine(String(format: "| the same against the exchange floor paced at %d/s, p50 / p99 | %.1f / %.1f ms | %.1f / %.1f ms (paced) | ≤ floor + 5 / + 10 ms |",
                             Int(rate), measured.p50, measured.p99, pacedFloor.p50, pacedFloor.p99))
            printLine(String(format: "| pipeline's own time at %d/s (intent → ledger minus that trade's exchange calls), p50 / p99 | %.1f / %.1f ms | | |",
                             Int(rate), measured.ownTimes.p50, measured.ownTimes.p99))
            printLine("| completed / sent at \(Int(rate))/s | \(measured.completed) / \(measured.sent) (blocked or skipped: \(measured.refused)) | | all |")
            if !measured.resultLatencies.values.isEmpty {
                printLine(String(format: "| intent → its `OrderResult` seen (published after the ledger commit) at %d/s, OPENs, p50 / p99 | %.1f / %.1f ms | %.1f / %.1f ms | |",
                                 Int(rate), measured.resultLatencies.p50, measured.resultLatencies.p99, floor.p50, floor.p99))
            }
            if let high {
                printLine(String(format: "| intent → ledger committed at %d/s for %d s, p50 / p99 | %.1f / %.1f ms | %.1f / %.1f ms | p99 ≤ floor p99 + 20 ms |",
                                 Int(highRate), Int(duration), high.p50, high.p99, floor.p50, floor.p99))
                printLine("| completed / sent at \(Int(highRate))/s | \(high.completed) / \(high.sent) (blocked or skipped: \(high.refused)) | | all |")
            }
            if let cpu {
                printLine(String(format: "| CPU-seconds per 1,000 intents at %d/s, above idle: this process (host + simulator + driver) / nats-server | %.2f / %.2f | | |",
                                 Int(rate), cpu.bench, cpu.nats))
            }
            printLine(String(format: "| KV and JetStream round trips per OPEN (Bus counts) | %.1f | | ≤ 12 |", entryCost.roundTrips))
            printLine(String(format: "| exchange requests per OPEN | %.2f | | 2 |", entryCost.exchangeRequests))
            if let exitCost {
                printLine(String(format: "| KV and JetStream round trips per exit | %.1f | | |", exitCost.roundTrips))
                printLine(String(format: "| exchange requests per exit | %.2f | | |", exitCost.exchangeRequests))
            }
            if let exits {
                for (label, run) in [("with the plan digest", exits.checked), ("without it (same run)", exits.unchecked)] {
                    printLine(String(format: "| harvest proposal → ledger committed and its stop cancelled (the result seen) at %d/s, %@, p50 / p99 | %.1f / %.1f ms | %.1f / %.1f ms | |",
                                     Int(exitRate), label, run.p50, run.p99, floor.p50, floor.p99))
                    printLine("| exits completed / sent, \(label) | \(run.completed) / \(run.sent) (blocked or skipped: \(run.refused)) | | all |")
                }
            }
            printLine(String(format: "| plan digest, computed and compared, per plan | %.2f µs | | |", digest))
            printLine("| ledger = exchange after the run | \(books.agrees ? "all \(books.symbols) symbols" : "\(books.differences.count) differences") | | all |")
            if let sustained {
                printLine(String(format: "| maximum sustained rate (of %@) | %d intents/s (p99 %.1f ms) | | |", ladder, Int(sustained.rate),
                                 sustained.run.p99))
            } else {
                printLine("| maximum sustained rate (of \(ladder)) | below the first step | | |")
            }
            if let rss {
                printLine(String(format: "| `qt host` RSS, every plugin, %d symbols, %d s | peak %.0f MB, end %.0f MB | | ≤ 200 MB |",
                                 listed.count, Int(rssSeconds), rss.peakMB, rss.lastMB))
            }
        }
    }

    /// Every symbol active, a calm trending market state at the intents' event time, and a fresh
    /// account: the gates' inputs are present and pass, so the pipeline is what is measured.
    private func prepareState(_ bus: BusConnection, symbols: [String], eventTimeMs: Int64) async throws {
        var universe = Universe()
        universe.version = 1
        universe.maxActive = Int32(symbols.count)
        universe.entries = symbols.enumerated().map { index, symbol in
            var entry = UniverseEntry()
            (entry.symbol, entry.rank, entry.active) = (symbol, Int32(index + 1), true)
            return entry
        }
        try await bus.keyValue("qt_universe").put("active", message: universe)
        let states = try await bus.keyValue("qt_marketstate")
        for symbol in symbols {
            var state = MarketState()
            state.symbol = symbol
            (state.sigma, state.ts, state.pTrend, state.pMr, state.pChop) = (0.002, 0.5, 0.6, 0.2, 0.2)
            state.asOfMs = eventTimeMs
            _ = try await states.put(symbol, message: state)
        }
        var account = AccountSnapshot()
        account.marginRatio = 0.01
        account.totalMarginBalance = "10000000"
        account.asOfMs = Int64(Date().timeIntervalSince1970 * 1000)
        try await bus.keyValue("qt_snapshot").put("_account", message: account)
    }

    /// CPU-seconds per wall second between two readings (of this process and of nats-server).
    static func cpuPerSecond(from start: (bench: Double?, nats: Double?, at: UInt64),
                             to end: (bench: Double?, nats: Double?, at: UInt64)) -> (bench: Double, nats: Double)? {
        guard let benchStart = start.bench, let benchEnd = end.bench, let natsStart = start.nats, let natsEnd = end.nats,
              end.at > start.at else { return nil }
        let seconds = Double(end.at - start.at) / 1e9
        return ((benchEnd - benchStart) / seconds, (natsEnd - natsStart) / seconds)
    }

    /// What a run of `seconds` used above idle, per 1,000 of its intents.
    static func cpuPerThousand(idle: (bench: Double, nats: Double)?, busy: (bench: Double, nats: Double)?,
                               seconds: Double, intents: Int) -> (bench: Double, nats: Double)? {
        guard let idle, let busy, intents > 0 else { return nil }
        let perThousand = seconds * 1000 / Double(intents)
        return (max(0, busy.bench - idle.bench) * perThousand, max(0, busy.nats - idle.nats) * perThousand)
    }

    /// The positions in the ledger with nothing pending, for the exit run.
    private func openPositions(_ bus: BusConnection, simulator: SimulatorServer) async throws -> [IntentDriver.OpenPosition] {
        let ledger = try await bus.keyValue("qt_ledger")
        var positions: [IntentDriver.OpenPosition] = []
        for symbol in try await ledger.keys().sorted() {
            guard let (entry, revision) = try await ledger.get(LedgerEntry.self, symbol), entry.pendingClientOrderID.isEmpty,
                  let amount = Decimal.parse(entry.positionAmt), amount != 0, let mark = simulator.exchange.mark(symbol) else { continue }
            positions.append(.init(symbol: symbol, amount: amount, ledgerRevision: revision, markPrice: mark))
        }
        return positions
    }

    /// What binding a permit to its plan costs: the digest portfolio-gate writes and the executor
    /// recomputes and compares, per plan, in microseconds (the mean of 20,000).
    static func planDigestCost() -> Double {
        var plan = Plan()
        (plan.planID, plan.symbol, plan.side, plan.kind) = ("bench-plan", "BTCUSDT", .sell, .close)
        (plan.quantity, plan.reduceOnly, plan.stopPrice) = ("0.125", true, "61234.5")
        var permit = Permit()
        permit.planDigest = PlanDigest.of(plan)
        let start = DispatchTime.now().uptimeNanoseconds
        var refused = 0
        for index in 0..<20_000 {
            plan.planID = "bench-plan-\(index & 7)"
            permit.planDigest = PlanDigest.of(plan)
            if PlanDigest.mismatch(plan, permit: permit) != nil { refused += 1 }
        }
        precondition(refused == 0, "a plan's own digest must match it")
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3 / 20_000
    }

    static let entryPath = ["intent-bridge", "governor", "portfolio-gate", "executor"]
    static let exitPath = ["heat-gate", "apply-layer", "executor"]

    /// The benchmark profile: the entry path with its limits raised so every intent passes, and the
    /// exit path from a harvest proposal (heat-gate in shadow calibration, so a FULL_CLOSE stays one).
    static func hostYAML(nats: String, simulator: SimulatorServer, keys: (key: String, secret: String)) -> String {
        """
        host_id: bench-e2e
        nats: \(nats)
        http_port: 0
        exchange: { base_url: \(simulator.baseURL), stream_url: \(simulator.streamURL)/market, key_file: \(keys.key), secret_file: \(keys.secret) }
        plugins:
          intent-bridge: {}
          governor: { stop_dist_pct: 0.5, max_total_notional: 100000000, rate_per_5m: 1000000, rate_per_hour: 1000000, market_state_max_age_s: 100000000 }
          portfolio-gate: { max_positions: 100000, max_margin_ratio: 1, snapshot_max_age_s: 100000 }
          heat-gate: { calibration: shadow }
          apply-layer: {}
          executor: {}
        """
    }

    private func startPipelineHost(_ yaml: String, provisioningOn bus: BusConnection) async throws -> PluginHost {
        let registry = BuiltInPlugins.registry
        let config = try NodeConfig.parse(yaml, file: "bench-e2e.yaml", registry: registry)
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: [config], registry: registry)
        let host = PluginHost(config: config, registry: registry)
        try await host.start()
        return host
    }

    /// The exchange part alone: what the executor sends per entry (a MARKET order, then its
    /// STOP_MARKET algo order), through the same client, one after another. Back to back, the
    /// client's and the simulator's threads never sleep; `pacedAt` starts a pair every 1/rate s,
    /// as the intents come, so each pair finds them asleep as an entry at that rate does.
    private func exchangeFloor(simulator: SimulatorServer, credentials: Credentials, symbols: [String],
                               pairs: Int = 300, pacedAt rate: Double? = nil) async throws -> LatencySample {
        let client = BinanceFutures(config: ExchangeConfig(baseURL: simulator.baseURL), credentials: credentials)
        let filters = try await client.symbolFilters()
        let run = rate.map { "paced\(Int($0))-" } ?? ""
        var sample = LatencySample()
        let schedule = rate.map(OpenLoopSchedule.init(rate:))
        for index in 0..<pairs {
            let symbol = symbols[index % symbols.count]
            guard let filter = filters[symbol], let mark = simulator.exchange.mark(symbol) else { continue }
            let quantity = try filter.marketQuantity(Decimal(200) / mark, price: mark, reduceOnly: false)
            try await schedule?.waitForSlot(index)
            let start = DispatchTime.now().uptimeNanoseconds
            let fill = try await client.newOrder(NewOrder(symbol: symbol, side: .buy, quantity: quantity, clientOrderId: "floor-\(run)\(index)"))
            _ = fill
            _ = try await client.newStopOrder(NewStopOrder(symbol: symbol, side: .sell, triggerPrice: filter.roundPrice(mark / 2, .down),
                                                           clientAlgoId: "floor-stop-\(run)\(index)"))
            sample.add(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return sample
    }

    /// A `qt host` child with every plugin (the `qt up` node config) on all symbols; its RSS from
    /// /proc every second.
    private func measureRSS(server: NatsServer, simulator: SimulatorServer, keys: (key: String, secret: String)) async throws -> (peakMB: Double, lastMB: Double) {
        let node = UpNodeConfig(hostID: "bench-rss", natsURL: server.url, exchangeURL: simulator.baseURL, streamURL: simulator.streamURL,
                                keyFile: keys.key,
                                secretFile: keys.secret, barMs: simulator.exchange.config.barMs)
        let yaml = node.yaml.replacingOccurrences(of: "universe: { check_s: 1,", with: "universe: { check_s: 1, candidates: \(symbols), rollout: \"\(symbols)\",")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qt-bench-rss-\(UUID().uuidString.prefix(8)).yaml")
        try Data(yaml.utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let config = try NodeConfig.parse(yaml, file: path.path, registry: BuiltInPlugins.registry)
        let bus = try BusConnection(config.nats)
        defer { bus.close() }
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: [config], registry: BuiltInPlugins.registry)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        child.arguments = ["host", "--config", path.path]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        defer { if child.isRunning { child.terminate(); child.waitUntilExit() } }
        var peak = 0.0, last = 0.0
        for _ in 0..<Int(rssSeconds) {
            try await Task.sleep(nanoseconds: 1_000_000_000)
            guard child.isRunning else { throw ValidationError("the every-plugin host exited with \(child.terminationStatus)") }
            last = Self.residentMB(pid: child.processIdentifier)
            peak = max(peak, last)
        }
        printLine(String(format: "qt host with every plugin on %d symbols: RSS peak %.0f MB, after %d s %.0f MB", symbols, peak,
                         Int(rssSeconds), last))
        return (peak, last)
    }

    static func residentMB(pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kB = line.split(separator: " ").compactMap({ Double($0) }).first else { return 0 }
        return kB / 1024
    }
}

/// Latencies in milliseconds and their percentiles.
struct LatencySample: CustomStringConvertible {
    private(set) var values: [Double] = []
    mutating func add(_ milliseconds: Double) { values.append(milliseconds) }

    func percentile(_ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[max(0, min(sorted.count - 1, rank))]
    }

    var p50: Double { percentile(50) }
    var p99: Double { percentile(99) }
    var description: String { String(format: "n=%d p50 %.1f ms, p99 %.1f ms, max %.1f ms", values.count, p50, p99, values.max() ?? .nan) }
}
