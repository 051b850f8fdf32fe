import ArgumentParser
import Bus
import Foundation
import Host
import Messages
import NatsServerKit

/// The latency of one stage at a low rate: the host with a no-op plugin against the raw libnats
/// loop doing the same work (fetch one, publish, PubAck, ack), measured by the same driver.
/// This is the cost of a hop in the pipeline when nothing else is going on.
struct HopBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hop",
        abstract: "Latency of one stage (publish → consume → publish → seen), host vs raw libnats, one message at a time.")

    @Option(help: "Messages per side and round.") var count = 200
    @Option(help: "Milliseconds between one message's output and the next input.") var intervalMs = 50
    @Option(help: "Rounds; the sides alternate which goes first.") var rounds = 3
    @Option(help: "Stages in a chain, each consuming the one before (the pipeline's entry path has four).") var stages = 1

    func run() async throws {
        try await reportingErrors {
            let server = try NatsServer()
            defer { server.stop() }
            var options = ConnectionOptions(servers: [server.url], name: "qt-bench-hop")
            options.jetStreamWaitMs = 10_000
            let bus = try BusConnection(options)
            defer { bus.close() }
            _ = try await bus.provision()
            printLine("hop benchmark: \(stages) stage(s), \(count) messages per side × \(rounds) rounds, one at a time, \(intervalMs) ms apart")
            var samples: [String: LatencySample] = ["raw": LatencySample(), "host": LatencySample()]
            for round in 0..<rounds {
                for side in round % 2 == 0 ? ["raw", "host"] : ["host", "raw"] {
                    let latencies = side == "raw" ? try await measureRaw(bus, round: round)
                                                  : try await measureHost(bus, server: server, round: round)
                    var roundSample = LatencySample()
                    for value in latencies {
                        roundSample.add(value)
                        samples[side]!.add(value)
                    }
                    printLine("round \(round + 1) \(side): \(roundSample)")
                }
            }
            let raw = samples["raw"]!, host = samples["host"]!
            printLine("")
            printLine("| \(stages) stage(s), publish → last output seen | raw libnats p50 / p99 | host p50 / p99 | host − raw at p50 / p99 |")
            printLine("|---|---|---|---|")
            printLine(String(format: "| %d messages, %d ms apart | %.2f / %.2f ms | %.2f / %.2f ms | %.2f / %.2f ms |",
                             raw.values.count, intervalMs, raw.p50, raw.p99, host.p50, host.p99,
                             host.p50 - raw.p50, host.p99 - raw.p99))
        }
    }

    private func inputs(subject: String) throws -> [OutgoingMessage] {
        let symbol = String(subject.split(separator: ".").last!)
        return try (0..<count).map { index in
            try OutgoingMessage(BenchPayload.kline(symbol: symbol, index: index), subject: subject,
                                id: "\(symbol)-\(index)", producer: "bench@qt")
        }
    }

    /// Stage `index` of a chain consumes `subject(index)` and emits on `subject(index + 1)`.
    private func subject(_ prefix: String, round: Int, _ index: Int) -> String { Subjects.kline("\(prefix)\(round)X\(index)") }

    private func measureRaw(_ bus: BusConnection, round: Int) async throws -> [Double] {
        let latencies = try await withThrowingTaskGroup(of: [Double]?.self) { group in
            for index in 0..<stages {
                let spec = try ConsumerSpec(durable: "bench-rawhop__r\(round)s\(index)", filterSubject: subject("RAWHOP", round: round, index))
                try await bus.ensureConsumer(spec)
                let output = subject("RAWHOP", round: round, index + 1)
                group.addTask { [count] in
                    _ = try await RawNatsBaseline.passThrough(bus, spec: spec, outputSubject: output, count: count, batch: 1,
                                                                 idPrefix: "raw-r\(round)s\(index)")
                    return nil
                }
            }
            group.addTask { [self] in
                try await RawNatsBaseline.hopLatencies(bus, inputs: try inputs(subject: subject("RAWHOP", round: round, 0)),
                                                       outputSubject: subject("RAWHOP", round: round, stages), intervalMs: intervalMs)
            }
            var measured: [Double] = []
            for try await result in group { if let result { measured = result } }
            return measured
        }
        return latencies
    }

    private func measureHost(_ bus: BusConnection, server: NatsServer, round: Int) async throws -> [Double] {
        let names = (0..<stages).map { "hop-\(round)-\($0)" }
        let registry = PluginRegistry(names.indices.map { index in
            PassThrough.registration(input: subject("HOSTHOP", round: round, index), output: subject("HOSTHOP", round: round, index + 1),
                                     name: names[index], batch: 64)
        })
        let yaml = "host_id: bench\nnats: { servers: [\(server.url)] }\nhttp_port: 0\nplugins:\n"
            + names.map { "  \($0): {}\n" }.joined()
        let config = try NodeConfig.parse(yaml, file: "bench.yaml", registry: registry)
        _ = try await DeploymentProvisioning.provision(bus, replicas: 1, configs: [config], registry: registry)
        let host = PluginHost(config: config, registry: registry)
        try await host.start()
        // The first input waits for the host's consumers to be pulling, as a pipeline's would.
        try await Task.sleep(nanoseconds: 500_000_000)
        let latencies = try await RawNatsBaseline.hopLatencies(bus, inputs: try inputs(subject: subject("HOSTHOP", round: round, 0)),
                                                               outputSubject: subject("HOSTHOP", round: round, stages),
                                                               intervalMs: intervalMs)
        await host.shutdown()
        return latencies
    }
}
