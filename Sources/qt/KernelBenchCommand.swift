import ArgumentParser
import Exchange
import Foundation
import Kernels
import Plugins

/// The kernels of DESIGN.md §6 against the Python/numpy reference, run beside in the same command.
struct KernelBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Market state for N symbols × 301 closes and the harvest kernel for N positions, vs the numpy/scipy reference.")

    @Option(help: "Symbols (and positions).") var symbols = 566
    @Option(help: "Rounds; the median is reported.") var rounds = 5
    @Option(help: "Rounds of the steady state (one new close per symbol each).") var slideRounds = 50
    @Option(help: "The reference timing script (runs ../shared/reference/kernels.py).") var reference = "scripts/bench-reference.py"

    func run() async throws {
        try await reportingErrors {
            var random = SeededGenerator(seed: 7)
            let series: [[Double]] = (0..<symbols).map { _ in
                var price = Double.random(in: 0.01...60_000, using: &random)
                return (0..<301).map { _ in price *= exp(0.003 * random.gaussian()); return price }
            }
            let positions = (0..<symbols).map { index in
                HarvestKernel.Position(side: index % 2 == 0 ? .short : .long, entryPrice: 100,
                                       markPrice: 100 + Double.random(in: -5...5, using: &random), ageSec: Double.random(in: 0...90_000, using: &random))
            }
            let markets = (0..<symbols).map { _ in
                HarvestKernel.Market(sigma: Double.random(in: 0.001...0.02, using: &random), ts: Double.random(in: 0...1, using: &random),
                                     pTrend: 0.3, pMr: 0.3, pChop: 0.4)
            }
            var produced = 0
            let market = median(rounds) {
                produced = series.compactMap { MarketStateKernel.compute(closes: $0) }.count
            }
            guard produced == symbols else { throw ValidationError("market state produced \(produced) of \(symbols)") }
            // (b) steady state: every symbol's window slides by one new close.
            var streams = series.map { closes -> SlidingMarketState in
                var stream = SlidingMarketState()
                for close in closes { stream.append(close) }
                return stream
            }
            var lastCloses = series.map { $0.last! }
            let warmRebuilds = streams.reduce(0) { $0 + $1.rebuilds }
            let warmRecenters = streams.reduce(0) { $0 + $1.recenters }
            var slid = 0
            let steady = median(slideRounds) {
                for index in streams.indices {
                    lastCloses[index] *= exp(0.003 * random.gaussian())
                    if streams[index].append(lastCloses[index]) != nil { slid += 1 }
                }
            }
            guard slid == symbols * slideRounds else { throw ValidationError("sliding state produced \(slid) of \(symbols * slideRounds)") }
            let rebuildsPerRound = Double(streams.reduce(0) { $0 + $1.rebuilds } - warmRebuilds) / Double(slideRounds)
            let recentersPerRound = Double(streams.reduce(0) { $0 + $1.recenters } - warmRecenters) / Double(slideRounds)
            var closes = 0
            let harvest = median(rounds) {
                closes = zip(positions, markets).filter { HarvestKernel.propose($0, market: $1).action == .fullClose }.count
            }
            printLine(String(format: "swift: market state %.1f ms for %d symbols × 301 closes; harvest %.3f ms for %d positions (%d FULL_CLOSE)",
                             market * 1e3, symbols, harvest * 1e3, symbols, closes))
            printLine(String(format: "swift: steady state %.2f ms for one new close on each of %d symbols (median of %d rounds; per round %.1f slope bands moved, %.1f rebuilt by selection)",
                             steady * 1e3, symbols, slideRounds, recentersPerRound, rebuildsPerRound))
            let python = try runReference()
            let pythonMarket = python["market_state_s"] ?? .nan, pythonHarvest = python["harvest_s"] ?? .nan
            printLine(String(format: "python/numpy reference: market state %.1f ms, harvest %.3f ms", pythonMarket * 1e3, pythonHarvest * 1e3))
            printLine("")
            printLine("| measurement | numpy/scipy reference | Swift kernel | speed-up | target |")
            printLine("|---|---|---|---|---|")
            printLine(String(format: "| (a) market state, full recompute, %d × 301 closes | %.0f ms | %.1f ms | %.1f× | ≤ 300 ms |",
                             symbols, pythonMarket * 1e3, market * 1e3, pythonMarket / market))
            printLine(String(format: "| (b) market state, steady state: one new close × %d symbols (sliding windows) | %.0f ms (full recompute) | %.2f ms | %.0f× | ≤ 20 ms |",
                             symbols, pythonMarket * 1e3, steady * 1e3, pythonMarket / steady))
            printLine(String(format: "| (c) harvest kernel, %d positions | %.2f ms | %.3f ms | %.0f× | — |",
                             symbols, pythonHarvest * 1e3, harvest * 1e3, pythonHarvest / harvest))
        }
    }

    private func median(_ rounds: Int, _ body: () -> Void) -> Double {
        let times = (0..<max(1, rounds)).map { _ -> Double in
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }.sorted()
        return times[times.count / 2]
    }

    private func runReference() throws -> [String: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", reference, String(symbols), String(min(rounds, 3))]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationError("the reference (\(reference)) failed: it needs python3 with numpy and scipy (pip install numpy scipy)")
        }
        return json.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }
}
