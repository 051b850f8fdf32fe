import ArgumentParser
import Bus
import Foundation
import Messages
import NatsServerKit

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that compare the product with a baseline in the same run.",
        subcommands: [BusBench.self, HostBench.self, HopBench.self, EndToEndBench.self, ExchangeBench.self, KernelBench.self, StopBench.self, WeightBench.self]
    )
}

/// Raw libnats against the Bus in one run: async publish (PubAck counted) and fetch + ack.
struct BusBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus",
        abstract: "Raw libnats vs the Bus: async publish and durable fetch+ack of 200-byte messages.")

    @Option(help: "Messages per measurement.") var count = 100_000
    @Option(help: "Rounds; the median of each side is reported.") var rounds = 3
    @Option(help: "Messages per async publish batch (both sides).") var chunk = 1_000
    @Option(help: "Messages per fetch (both sides).") var batch = 256
    @Option(help: "Sequential KV compare-and-set updates per round (both sides).") var kvCount = 2_000
    @Option(help: "NATS URL; without it a nats-server is started in a temporary directory.") var server: String?

    func run() async throws {
        try await reportingErrors {
            let ownServer = server == nil ? try NatsServer() : nil
            defer { ownServer?.stop() }
            var options = ConnectionOptions(servers: [server ?? ownServer!.url], name: "qt-bench")
            options.jetStreamWaitMs = 10_000
            let bus = try BusConnection(options)
            defer { bus.close() }
            _ = try await bus.provision()

            let sample = try OutgoingMessage(BenchPayload.kline(symbol: "RAW0", index: 0), subject: Subjects.kline("RAW0"),
                                             id: "raw-0-0", producer: "bench@qt")
            let sampleSize = sample.payload.count
            printLine("bus benchmark: \(count) messages × \(rounds) rounds, payload \(sampleSize) bytes + 5 headers, "
                      + "publish batches of \(chunk), fetch batches of \(batch), server \(server ?? "nats-server (temporary)")")

            var rates: [String: [Double]] = [:]
            var publishRatios: [Double] = []
            var consumeRatios: [Double] = []
            for round in 0..<rounds {
                let results = try await measureRound(bus, round: round)
                for (name, seconds) in results { rates[name, default: []].append(Double(count) / seconds) }
                // Paired per round: both sides ran back to back against the same server state.
                publishRatios.append(results["raw publish"]! / results["bus publish"]!)
                consumeRatios.append(results["raw consume"]! / results["bus consume"]!)
                printLine("round \(round + 1): " + results.sorted { $0.key < $1.key }
                    .map { "\($0.key) \(Int(Double(count) / $0.value)) msg/s" }.joined(separator: ", ")
                    + String(format: "; publish ratio %.2f, consume ratio %.2f", publishRatios.last!, consumeRatios.last!))
            }
            let median = rates.mapValues(Self.median)
            printLine("")
            printLine("| measurement | raw libnats (msg/s, median) | Bus (msg/s, median) | Bus / raw (median of rounds) | range of rounds | target |")
            printLine("|---|---|---|---|---|---|")
            printLine("| async publish, PubAck in | \(Int(median["raw publish"]!)) | \(Int(median["bus publish"]!)) | "
                      + String(format: "%.2f | %.2f–%.2f", Self.median(publishRatios), publishRatios.min()!, publishRatios.max()!) + " | ≥ 0.80 |")
            printLine("| durable fetch + ack | \(Int(median["raw consume"]!)) | \(Int(median["bus consume"]!)) | "
                      + String(format: "%.2f | %.2f–%.2f", Self.median(consumeRatios), consumeRatios.min()!, consumeRatios.max()!) + " | ≥ 0.60 |")

            // One KV compare-and-set after another, as a handler makes them: the raw loop stays on
            // one thread; each Bus call goes from the caller's task to a worker thread and back.
            var rawMicros: [Double] = [], busMicros: [Double] = []
            let bucket = try await bus.keyValue("qt_state")
            let value = Array(repeating: UInt8(ascii: "x"), count: 200)
            for round in 0..<rounds {
                rawMicros.append(try await RawNatsBaseline.sequentialUpdates(bus, bucket: "qt_state", key: "bench.kv-raw",
                                                                             value: value, count: kvCount) / Double(kvCount) * 1e6)
                var revision = try await bucket.put("bench.kv-bus", value)
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<kvCount { revision = try await bucket.update("bench.kv-bus", value, expectedRevision: revision) }
                busMicros.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3 / Double(kvCount))
                printLine(String(format: "round %d: KV update one after another: raw %.0f µs, Bus %.0f µs", round + 1, rawMicros.last!, busMicros.last!))
            }
            printLine(String(format: "| KV compare-and-set, one after another (µs each, median) | %.0f | %.0f | %.2f (time, Bus / raw) | | |",
                             Self.median(rawMicros), Self.median(busMicros), Self.median(busMicros) / Self.median(rawMicros)))
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    private func measureRound(_ bus: BusConnection, round: Int) async throws -> [String: Double] {
        let rawSymbol = "RAW\(round)"
        let busSymbol = "BUS\(round)"
        var results: [String: Double] = [:]
        // Alternate which side goes first, so neither always gets the warmer server.
        let rawFirst = round % 2 == 0
        for side in rawFirst ? ["raw", "bus"] : ["bus", "raw"] {
            if side == "raw" {
                let prepared = try (0..<count).map { index in
                    try OutgoingMessage(BenchPayload.kline(symbol: rawSymbol, index: index), subject: Subjects.kline(rawSymbol),
                                        id: "raw-\(round)-\(index)", producer: "bench@qt")
                }
                results["raw publish"] = try await RawNatsBaseline.publishAsync(bus, messages: prepared, chunk: chunk)
            } else {
                // The application's messages exist before it publishes; the Bus's work (type
                // check, Meta, encoding, headers, publish, PubAck) is what is timed.
                let bars = (0..<count).map { BenchPayload.kline(symbol: busSymbol, index: $0) }
                let subject = Subjects.kline(busSymbol)
                let start = DispatchTime.now().uptimeNanoseconds
                // Pipelined as a producer would: the next batch is stamped and encoded while the
                // previous one is on the wire.
                var inFlight: Task<[PublishAck], Error>?
                for chunkStart in stride(from: 0, to: count, by: chunk) {
                    let messages = try (chunkStart..<min(count, chunkStart + chunk)).map { index in
                        try OutgoingMessage(bars[index], subject: subject, id: "bus-\(round)-\(index)", producer: "bench@qt")
                    }
                    _ = try await inFlight?.value
                    inFlight = Task { try await bus.publishBatch(messages) }
                }
                _ = try await inFlight?.value
                results["bus publish"] = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
        }
        for side in rawFirst ? ["raw", "bus"] : ["bus", "raw"] {
            let symbol = side == "raw" ? rawSymbol : busSymbol
            var spec = try ConsumerSpec(plugin: "bench-\(side)", input: "r\(round)", filterSubject: Subjects.kline(symbol))
            spec.fetchBatch = batch
            spec.maxAckPending = Int64(max(count, 10_000))
            try await bus.ensureConsumer(spec)
            if side == "raw" {
                results["raw consume"] = try await RawNatsBaseline.fetchAndAck(bus, spec: spec, count: count, batch: batch)
            } else {
                let consumer = try bus.consume(Kline.self, spec: spec, producer: "bench@qt")
                let start = DispatchTime.now().uptimeNanoseconds
                var received = 0
                for try await delivery in consumer {
                    try delivery.ack()
                    received += 1
                    if received == count { break }
                }
                results["bus consume"] = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                consumer.stop()
                guard received == count else { throw BusError.timeout("bus consume: \(received) of \(count)") }
            }
        }
        return results
    }
}

enum BenchPayload {
    /// A realistic closed bar whose encoding is 200 bytes once the Bus has filled `meta`.
    static func kline(symbol: String, index: Int) -> Kline {
        var bar = Kline()
        bar.symbol = symbol
        bar.openTimeMs = 1_700_000_000_000 + Int64(index) * 60_000
        bar.closeTimeMs = bar.openTimeMs + 59_999
        bar.open = "67012.40"
        bar.high = "67120.00"
        bar.low = "66990.10"
        bar.close = "67100.30"
        bar.volume = "1234.567"
        bar.quoteVolume = "82812345.12345678"
        bar.trades = 4242
        bar.meta.eventTimeMs = bar.closeTimeMs
        bar.meta.traceID = "4f1c2a9e0b7d4c3a8e6f5d2c1b0a9f8e"
        bar.meta.causeID = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d"
        return bar
    }
}
