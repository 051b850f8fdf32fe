import ArgumentParser
import Exchange
import ExchangeSimulator
import Foundation
import Host

/// `qt sim`: the Binance-compatible exchange simulator on loopback, for paper trading and for
/// pointing any Binance client at.
struct Sim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Binance USDⓈ-M futures simulator on 127.0.0.1 and print its base URL.")

    @OptionGroup var market: SimulatorOptions
    @Option(help: "Port on 127.0.0.1 (0: a free one).") var port = 8081
    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).") var duration: Double?

    func run() async throws {
        try await reportingErrors {
            let server = try await market.startServer(port: port)
            printLine("try:        curl '\(server.baseURL)/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=3'")
            printLine(duration.map { "running for \($0) s; Ctrl-C stops earlier" } ?? "running; Ctrl-C stops")
            await HostRunner.waitForTermination(orAfter: duration)
            await server.stop()
            printLine("simulator stopped")
        }
    }
}

/// The simulator's market settings, shared by `qt sim` and `qt up`.
struct SimulatorOptions: ParsableArguments {
    @Option(help: "Symbols listed (BTCUSDT, ETHUSDT, … then synthetic ones; up to 600).") var symbols = 20
    @Option(name: .customLong("bar-ms"), help: "Wall milliseconds per simulated 1m bar.") var barMs = 250
    @Option(help: "Seed of the price processes: the same seed gives the same prices.") var seed: UInt64 = 1
    @Option(name: .customLong("latency-ms"), help: "Fault: added latency per request.") var latencyMs = 0
    @Option(name: .customLong("error-rate"), help: "Fault: fraction of requests answered HTTP 503.") var errorRate = 0.0
    @Option(name: .customLong("drop-rate"), help: "Fault: fraction of orders whose response is lost after the fill.") var dropRate = 0.0

    func config(credentials: Credentials) throws -> SimulatorConfig {
        guard (1...600).contains(symbols) else { throw ValidationError("--symbols must be 1 to 600, not \(symbols)") }
        guard barMs >= 1 else { throw ValidationError("--bar-ms must be at least 1") }
        for (name, rate) in [("--error-rate", errorRate), ("--drop-rate", dropRate)] where !(0...1).contains(rate) {
            throw ValidationError("\(name) must be between 0 and 1, not \(rate)")
        }
        var config = SimulatorConfig(credentials: credentials)
        config.symbols = symbols
        config.barMs = barMs
        config.seed = seed
        config.faults = SimulatorFaults(latencyMs: latencyMs, serverErrorRate: errorRate, dropResponseAfterFillRate: dropRate)
        return config
    }

    /// Starts the simulator with the pair the client reads (QT_API_KEY / QT_API_SECRET), or a
    /// generated pair when they are unset, and prints its URL and the pair (a generated secret
    /// in full: the user needs it to configure a client).
    func startServer(port: Int) async throws -> SimulatorServer {
        let environment = try? Credentials.fromEnvironment()
        let credentials = environment ?? Credentials.generate()
        let server = try await SimulatorServer.start(try config(credentials: credentials), port: port)
        printLine("simulator:  \(server.baseURL)   (\(symbols) symbols, a 1m bar every \(barMs) ms, seed \(seed))")
        if environment == nil {
            printLine("API key:    \(credentials.apiKey)")
            printLine("API secret: \(credentials.revealSecret())")
            printLine("            (generated: export QT_API_KEY and QT_API_SECRET to choose them)")
        } else {
            printLine("API key:    from QT_API_KEY (\(credentials.redactedKey)), secret from QT_API_SECRET")
        }
        return server
    }
}
