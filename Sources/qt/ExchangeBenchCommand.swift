import ArgumentParser
import Exchange
import ExchangeSimulator
import Foundation

/// Signed order round trips against the simulator on loopback: the client vs raw libcurl.
struct ExchangeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exchange",
        abstract: "Signed MARKET order round trips per second against the simulator: the client vs a raw libcurl loop.")

    @Option(help: "Orders per measurement.") var count = 2_000
    @Option(help: "Rounds; the median of the paired ratios is reported.") var rounds = 5
    @Option(help: "Concurrent orders for the client's parallel measurement.") var concurrency = 4

    func run() async throws {
        try await reportingErrors {
            let credentials = Credentials.generate()
            var config = SimulatorConfig(credentials: credentials)
            config.symbols = 5
            config.startingBalance = 10_000_000
            config.weightLimitPerMinute = Int.max / 2
            let server = try await SimulatorServer.start(config)
            var clientConfig = ExchangeConfig(baseURL: server.baseURL)
            clientConfig.connections = concurrency
            let client = BinanceFutures(config: clientConfig, credentials: credentials)
            let filters = try await client.symbolFilters()["ETHUSDT"]!
            let quantity = filters.roundQuantityDown(Decimal(50) / (try await client.premiumIndex(symbol: "ETHUSDT").markPrice)) + filters.stepSize
            _ = try await client.syncTime()
            printLine("exchange benchmark: \(count) signed MARKET orders × \(rounds) rounds on \(server.baseURL), ETHUSDT \(quantity.plainString)")

            var ratios: [Double] = [], rawRates: [Double] = [], clientRates: [Double] = [], parallelRates: [Double] = []
            for round in 0..<rounds {
                let raw = try RawCurlBaseline.signedOrders(baseURL: server.baseURL, credentials: credentials, symbol: "ETHUSDT",
                                                           quantity: quantity, count: count, idPrefix: "raw\(round)-")
                let sequential = try await timed {
                    for index in 0..<count {
                        _ = try await client.newOrder(NewOrder(symbol: "ETHUSDT", side: index % 2 == 0 ? .buy : .sell, quantity: quantity,
                                                               clientOrderId: "seq\(round)-\(index)"))
                    }
                }
                let parallel = try await timed {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for lane in 0..<concurrency {
                            group.addTask {
                                for index in stride(from: lane, to: count, by: concurrency) {
                                    _ = try await client.newOrder(NewOrder(symbol: "ETHUSDT", side: index % 2 == 0 ? .buy : .sell,
                                                                           quantity: quantity, clientOrderId: "par\(round)-\(index)"))
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                rawRates.append(Double(count) / raw)
                clientRates.append(Double(count) / sequential)
                parallelRates.append(Double(count) / parallel)
                ratios.append(raw / sequential)
                printLine(String(format: "round %d: raw %.0f orders/s, client %.0f orders/s (ratio %.2f), client × %d %.0f orders/s",
                                 round + 1, rawRates.last!, clientRates.last!, ratios.last!, concurrency, parallelRates.last!))
            }
            printLine("")
            printLine("| measurement | raw libcurl (orders/s, median) | client (orders/s, median) | client / raw (median) | range |")
            printLine("|---|---|---|---|---|")
            printLine(String(format: "| signed MARKET order round trip, one at a time | %.0f | %.0f | %.2f | %.2f–%.2f |",
                             BusBench.median(rawRates), BusBench.median(clientRates), BusBench.median(ratios), ratios.min()!, ratios.max()!))
            printLine(String(format: "| the same, %d in flight (client only) | — | %.0f | — | — |", concurrency, BusBench.median(parallelRates)))
            await server.stop()
        }
    }

    private func timed(_ body: () async throws -> Void) async throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try await body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
