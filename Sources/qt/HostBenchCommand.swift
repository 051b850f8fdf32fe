import ArgumentParser
import Bus
import Foundation
import Host
import Messages
import NatsServerKit

/// Host pass-through against the raw libnats loop doing the same work, in one run.
struct HostBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Host pass-through (consume → decode → handle → publish → ack, no-op plugin) vs raw libnats.")

    @Option(help: "Messages per measurement.") var count = 50_000
    @Option(help: "Rounds; the median of the paired ratios is reported.") var rounds = 5
    @Option(help: "Messages per fetch (both sides).") var batch = 256
    @Flag(help: "Run only the host side (for profiling it).") var hostOnly = false
    @Option(name: .customLong("c-library"), help: "Also pass through this C plugin library (examples/c-passthrough) and compare it with the Swift no-op.")
    var cLibrary: String?

    func run() async throws {
        try await reportingErrors {
            let server = try NatsServer()
            defer { server.stop() }
            var options = ConnectionOptions(servers: [server.url], name: "qt-bench-host")
            options.jetStreamWaitMs = 10_000
            // The baseline is libnats as it comes (buffered writes); the host's own connections
            // write at once (ConnectionOptions.sendAsap), which is part of what is measured.
            options.sendAsap = false
            let bus = try BusConnection(options)
            defer { bus.close() }
            _ = try await bus.provision()
            printLine("host benchmark: \(count) messages × \(rounds) rounds, fetch batches of \(batch), 200-byte klines")
            var ratios: [Double] = [], cRatios: [Double] = []
            var rates: [String: [Double]] = [:]
            for round in 0..<rounds {
                // Each side starts from an empty stream, and the order alternates, so neither
                // always runs on the bigger or the warmer store.
                var raw = 1.0, host = 1.0, rawCPU = 0.0, hostCPU = 0.0
                let sides = (round % 2 == 0 ? ["raw", "host"] : ["host", "raw"]) + (cLibrary == nil ? [] : ["c"])
                for side in sides {
                    try await bus.purge("QT_MARKET")
                    let cpu = Self.cpuSeconds()
                    if side == "raw" {
                        if !hostOnly { raw = try await measureRaw(bus, round: round) }
                        rawCPU = Self.cpuSeconds() - cpu
                    } else if side == "host" {
                        host = try await measureHost(bus, server: server, round: round)
                        hostCPU = Self.cpuSeconds() - cpu
                    } else if let cLibrary {
                        let seconds = try await measureLibrary(bus, server: server, library: cLibrary, round: round)
                        rates["c", default: []].append(Double(count) / seconds)
                        cRatios.append(host / seconds)
                        printLine(String(format: "round %d: C plugin %d msg/s (client CPU %.1f µs per message)", round + 1,
                                         Int(Double(count) / seconds), (Self.cpuSeconds() - cpu) / Double(count) * 1e6))
                    }
                }
                printLine(String(format: "client CPU per message (feed included): raw %.1f µs, host %.1f µs",
                                 rawCPU / Double(count) * 1e6, hostCPU / Double(count) * 1e6))
                rates["raw", default: []].append(Double(count) / raw)
                rates["host", default: []].append(Double(count) / host)
                ratios.append(raw / host)
                printLine("round \(round + 1): raw \(Int(Double(count) / raw)) msg/s, host \(Int(Double(count) / host)) msg/s, ratio "
                          + String(format: "%.2f", raw / host))
            }
            printLine("")
            printLine("| measurement | raw libnats (msg/s, median) | host (msg/s, median) | host / raw (median of rounds) | range | target |")
            printLine("|---|---|---|---|---|---|")
            printLine("| pass-through: fetch, decode, handle, publish, PubAck, ack | \(Int(BusBench.median(rates["raw"]!))) | "
                      + "\(Int(BusBench.median(rates["host"]!))) | "
                      + String(format: "%.2f | %.2f–%.2f", BusBench.median(ratios), ratios.min()!, ratios.max()!) + " | ≥ 0.60 |")
            if !cRatios.isEmpty {
                printLine("| pass-through through a C plugin (qt_plugin.h) vs the Swift no-op | \(Int(BusBench.median(rates["host"]!))) (Swift) | "
                          + "\(Int(BusBench.median(rates["c"]!))) (C) | "
                          + String(format: "C / Swift %.2f | %.2f–%.2f", BusBench.median(cRatios), cRatios.min()!, cRatios.max()!) + " | |")
            }
        }
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// `count` klines on `symbol`; the ids name the round, so a symbol fed again (the C side's fixed
    /// one) is not dropped as a duplicate within the stream's window.
    fileprivate func feed(_ bus: BusConnection, symbol: String, round: Int) async throws {
        for start in stride(from: 0, to: count, by: 1_000) {
            let messages = try (start..<min(count, start + 1_000)).map { index in
                try OutgoingMessage(BenchPayload.kline(symbol: symbol, index: index), subject: Subjects.kline(symbol),
                                    id: "\(symbol)-\(round)-\(index)", producer: "bench@qt")
            }
            _ = try await bus.publishBatch(messages)
        }
    }

    private func measureRaw(_ bus: BusConnection, round: Int) async throws -> Double {
        let input = "RAWIN\(round)"
        try await feed(bus, symbol: input, round: round)
        var spec = try ConsumerSpec(durable: "bench-raw__r\(round)", filterSubject: Subjects.kline(input))
        spec.maxAckPending = Int64(max(count, 10_000))
        try await bus.ensureConsumer(spec)
        return try await RawNatsBaseline.passThrough(bus, spec: spec, outputSubject: Subjects.kline("RAWOUT\(round)"),
                                                     count: count, batch: batch)
    }

    private func measureHost(_ bus: BusConnection, server: NatsServer, round: Int) async throws -> Double {
        let input = "HOSTIN\(round)"
        try await feed(bus, symbol: input, round: round)
        let registration = PassThrough.registration(input: Subjects.kline(input), output: Subjects.kline("HOSTOUT\(round)"),
                                                    name: "pass-\(round)", batch: batch)
        return try await passThrough(bus, server: server, plugin: "pass-\(round)", entry: "{}", registry: PluginRegistry([registration]))
    }

    /// Seconds from starting a host with `plugin` (its node config entry `entry`) until it has
    /// emitted `count` messages.
    fileprivate func passThrough(_ bus: BusConnection, server: NatsServer, plugin: String, entry: String,
                                 registry: PluginRegistry) async throws -> Double {
        let yaml = "host_id: bench\nnats: { servers: [\(server.url)] }\nhttp_port: 0\nplugins:\n  \(plugin): \(entry)\n"
        let config = try NodeConfig.parse(yaml, file: "bench.yaml", registry: registry)
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: [config], registry: registry)
        let host = PluginHost(config: config, registry: registry)
        let metrics = host.metrics.plugin(plugin)
        let start = DispatchTime.now().uptimeNanoseconds
        try await host.start()
        while metrics.messagesOut.value < Double(count) {
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        await host.shutdown()
        return seconds
    }
}

extension HostBench {
    /// The same pass-through by a C plugin loaded from `library` (fixed subjects CBENCHIN → CBENCHOUT).
    fileprivate func measureLibrary(_ bus: BusConnection, server: NatsServer, library: String, round: Int) async throws -> Double {
        try await feed(bus, symbol: "CBENCHIN", round: round)
        return try await passThrough(bus, server: server, plugin: "c-passthrough", entry: "{ library: \(library) }", registry: PluginRegistry())
    }
}

/// The no-op plugin: each kline is emitted unchanged on the output subject.
final class PassThrough: Plugin {
    static func registration(input: String, output: String, name: String, batch: Int) -> PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: name, version: "bench",
                inputs: [InputSpec("in", subject: input, type: Kline.self, fetchBatch: batch)],
                outputs: [OutputSpec("out", subject: output, type: Kline.self)]),
            make: { _ in PassThrough(output: output) })
    }

    let output: String
    init(output: String) { self.output = output }

    func handle(_ input: Input, context: HandlerContext) async throws {
        guard let bar = input.message(as: Kline.self) else { throw PluginError.permanent("not a kline") }
        try context.emit("out", bar, subject: output)
    }
}
